"""The CriticRewardWrapper: dense per-token rewards from a critic's spans, added to the sparse extrinsic reward."""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.critics.alignment import span_token_rewards, token_char_ranges
from textgym.critics.base import Critique
from textgym.critics.cache import CachedCritic
from textgym.critics.registry import build_critic
from textgym.critics.segmentation import is_boundary
from textgym.error import unknown_name

log = logging.getLogger("textgym.critics")

MODES = ("episode", "prefix")
LABEL_REWARDS: dict[str, dict[str, float]] = {
    "sentiment": {"positive": 0.5, "negative": -0.5},
    "detox": {"toxic": -0.5},
    "summarize": {"incorrect": -0.5, "irrelevant": -0.5, "incoherent": -0.5},
}
"""Per-token reward of each span label (the RELC paper's values)."""
DEFAULT_REWARDS = {"sentiment": 0.0, "detox": 0.0, "summarize": 0.5}
"""Per-token reward of tokens that no span covers (+0.5 for summaries, as in the paper)."""

_CACHED: dict[int, CachedCritic] = {}


def cached(critic) -> CachedCritic:
    """One cache per critic object per process, shared by every environment that uses the critic."""
    if isinstance(critic, CachedCritic):
        return critic
    if id(critic) not in _CACHED:
        _CACHED[id(critic)] = CachedCritic(critic)
    return _CACHED[id(critic)]


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
    ``token_rewards``, ``critic_reward`` (the span part of the return), ``critic_spans`` (``(start, end, label)``
    into the completion), ``critic_fallback``, ``critic_error``, ``critic_stats`` (calls, cache hits, hit rate,
    failures, dropped spans).

    Args:
        env: A textgym environment (``TextGenerationEnv``, possibly wrapped).
        critic: A critic spec (see :func:`textgym.critics.registry.critic_config`) or a critic object.
        mode: ``"episode"`` or ``"prefix"``.
        label_rewards: Per-token reward per label (task default when None).
        default_reward: Per-token reward of uncovered tokens (task default when None).
        span_weight: Multiplies every span reward.
        extrinsic_weight: Multiplies the extrinsic reward.
        critic_kwargs: Arguments of the critic.
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
        if mode not in MODES:
            raise unknown_name("mode", mode, MODES)
        base = env.unwrapped
        self.task = base.task.name
        self.tokenizer = base.tokenizer
        self.mode = mode
        self.label_rewards = dict(LABEL_REWARDS[self.task] if label_rewards is None else label_rewards)
        self.default_reward = DEFAULT_REWARDS[self.task] if default_reward is None else default_reward
        self.span_weight, self.extrinsic_weight = span_weight, extrinsic_weight
        critic_kwargs = dict(critic_kwargs or {})
        if critic == "self" and "model" not in critic_kwargs:
            critic_kwargs["model"] = base.model_name
        self.critic = cached(
            build_critic(self.task, critic, **critic_kwargs) if isinstance(critic, (str, dict)) else critic
        )
        self._tokens: list[int] = []
        self._paid = 0.0
        self._fallback = False
        self._source = ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Resets the environment and the episode's critic state."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._tokens, self._paid, self._fallback = [], 0.0, False
        self._source = self.env.unwrapped.item.source
        return obs, info

    def step(self, action: Any):
        """Steps the environment and adds the span rewards due at this step (see the class docstring)."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._tokens.append(int(np.asarray(action).reshape(())))
        done = terminated or truncated
        if not done:
            if self.mode == "episode":
                return obs, reward, terminated, truncated, info
            text = self.tokenizer.decode(self._tokens, skip_special_tokens=True)
            if not is_boundary(text):
                return obs, reward, terminated, truncated, info
            critique = self.critic.critique([self._source], [text])[0]
            step_reward = self._prefix_reward(critique)
            return obs, float(reward) + step_reward, terminated, truncated, info
        extrinsic = float(info["extrinsic_score"])
        critique = self.critic.critique([self._source], [info["completion"]], [extrinsic])[0]
        reward, info = self._final(critique, extrinsic, info)
        return obs, reward, terminated, truncated, info

    def span_rewards(self, critique: Critique) -> np.ndarray:
        """Per-token span rewards of the tokens so far for a critique (zeros for a failed one)."""
        if not critique.ok:
            return np.zeros(len(self._tokens))
        ranges = token_char_ranges(self.tokenizer, self._tokens)
        return self.span_weight * span_token_rewards(ranges, critique.spans, self.label_rewards, self.default_reward)

    def _prefix_reward(self, critique: Critique) -> float:
        if not critique.ok:
            self._note_failure(critique)
            return 0.0
        step_reward = float(self.span_rewards(critique).sum()) - self._paid
        self._paid += step_reward
        return step_reward

    def _final(self, critique: Critique, extrinsic: float, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        if not critique.ok:
            self._note_failure(critique)
        token_rewards = self.span_rewards(critique)
        critic_total = float(token_rewards.sum())
        token_rewards[-1] += self.extrinsic_weight * extrinsic
        reward = self.extrinsic_weight * extrinsic + critic_total - self._paid
        info = {
            **info,
            "token_rewards": token_rewards,
            "critic_reward": critic_total,
            "critic_spans": [(span.start, span.end, span.label) for span in critique.spans],
            "critic_fallback": self._fallback,
            "critic_error": critique.error,
            "critic_stats": self.critic.stats.as_dict(),
        }
        return reward, info

    def _note_failure(self, critique: Critique) -> None:
        self._fallback = True
        log.warning("Critic failed (%s); this episode falls back to the extrinsic reward.", critique.error)
