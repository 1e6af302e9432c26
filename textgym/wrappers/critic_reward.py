"""The CriticRewardWrapper: dense per-token rewards from a critic's spans, added to the sparse extrinsic reward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from textgym.wrappers.span_rewards import EpisodeSpanRewards, RewardRules, resolve_critic


class CriticRewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds a critic's per-token span rewards to a text environment's sparse extrinsic reward.

    ## Reward rules
    Let the critic mark spans of the completion. Token ``t`` gets ``span_weight * sum of label_rewards[label]``
    over the labels of the spans its characters overlap (a token is covered when its characters overlap the span,
    and only then), or ``span_weight * default_reward`` when no span covers it. The last token also gets
    ``extrinsic_weight * extrinsic score``. Defaults (RELC): sentiment +0.5 positive / -0.5 negative; detox -0.5
    toxic; summaries -0.5 for each flagged token, +0.5 elsewhere.

    ## Modes
    - ``episode``: one critique when the text is finished. Steps before the last give 0; the last gives the
      total of all token rewards, and ``info["token_rewards"]`` holds each token's share, so agents that credit
      tokens retroactively can.
    - ``prefix``: the critic judges the prefix at clause boundaries (a token ending in ``. ! ? ; : ,`` or a line
      break) and at the end; each such step's reward is the change of the critique's total over the prefix, so
      every agent gets dense rewards online. The return equals the ``episode`` mode's total for the same text.

    ## Faults
    A critic that fails (timeout, error, garbage, down) gives no span reward: in ``episode`` mode that episode's
    reward is the extrinsic one alone; in ``prefix`` mode a failed prefix pays nothing and a failed final critique
    takes back the span rewards already paid, so the return is again the extrinsic reward alone. Each failure sets
    ``info["critic_fallback"]``, is counted in ``info["critic_stats"]["failures"]`` and is logged.

    ## Info (last step)
    ``token_rewards`` (a tuple of floats, one per generated token; a tuple because lengths differ between
    episodes, which vector infos can only hold as objects), ``critic_reward`` (the span part of the return),
    ``critic_spans`` (``(start, end, label)`` into the completion), ``critic_fallback``, ``critic_error``,
    ``critic_stats`` (calls, cache hits, hit rate, failures, dropped spans).

    Args:
        env: A textgym environment (``TextGenerationEnv``, possibly wrapped).
        critic: A critic spec (see :func:`textgym.critics.registry.critic_config`) or a critic object.
        mode: ``"episode"`` or ``"prefix"``.
        label_rewards: Per-token reward per label (task default when None).
        default_reward: Per-token reward of uncovered tokens (task default when None).
        span_weight: Multiplies every span reward.
        extrinsic_weight: Multiplies the extrinsic reward.
        critic_kwargs: Arguments of the critic. A critic that runs a local model gets the environment's
            ``device`` and ``dtype`` unless these set their own.
    """

    def __init__(
        self,
        env: gym.Env,
        critic: Any = "default",
        mode: str = "episode",
        label_rewards: dict[str, float] | None = None,
        default_reward: float | None = None,
        span_weight: float = 1.0,
        extrinsic_weight: float = 1.0,
        critic_kwargs: dict[str, Any] | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            critic=critic if isinstance(critic, (str, dict)) else repr(critic),
            mode=mode,
            label_rewards=label_rewards,
            default_reward=default_reward,
            span_weight=span_weight,
            extrinsic_weight=extrinsic_weight,
            critic_kwargs=critic_kwargs,
        )
        super().__init__(env)
        base = env.unwrapped
        self.task = base.task.name
        self.tokenizer = base.tokenizer
        self.rules = RewardRules.for_task(self.task, mode, label_rewards, default_reward, span_weight, extrinsic_weight)
        self.mode = mode
        self.critic = resolve_critic(self.task, critic, critic_kwargs, base.model_name, base.device, base.dtype)
        self.episode = EpisodeSpanRewards(self.rules, self.tokenizer)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Resets the environment and the episode's critic state."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.episode.start(self.env.unwrapped.item.source)
        return obs, info

    def step(self, action: Any):
        """Steps the environment and adds the span rewards due at this step (see the class docstring)."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        text = self.episode.due(int(np.asarray(action).reshape(())), done, info.get("completion"))
        if text is None:
            return obs, reward, terminated, truncated, info
        extrinsic = float(info["extrinsic_score"]) if done else 0.0
        critique = self.critic.critique([self.episode.source], [text], [extrinsic] if done else None)[0]
        span_reward, extra = self.episode.settle(critique, done, extrinsic)
        if done:  # the env's reward is the extrinsic score; reweight it
            reward = self.rules.extrinsic_weight * extrinsic
            info = {**info, **extra, "critic_stats": self.critic.stats.as_dict()}
        return obs, float(reward) + span_reward, terminated, truncated, info
