"""The vector form of the CriticRewardWrapper: one batched critique per step for every sub-environment due one."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from textgym.wrappers.span_rewards import EpisodeSpanRewards, RewardRules, resolve_critic


class CriticRewardVectorWrapper(gym.vector.VectorWrapper):
    """Per-token critic rewards for a vector of text environments, with the critic called once per step.

    The rules, modes, fault handling and infos are those of :class:`~textgym.wrappers.CriticRewardWrapper`;
    the rewards equal what ``SyncVectorEnv`` of ``CriticRewardWrapper`` environments gives on the same seeds.
    Every sub-environment whose episode ends (or, in ``prefix`` mode, reaches a clause boundary) on a step is
    critiqued in the same batched call. The wrapped vector env must autoreset on the next step (Gymnasium's
    default) or not at all (``autoreset_mode="disabled"``: ended rows idle until reset) and offer ``get_attr``
    (``TextGenerationVectorEnv`` and ``SyncVectorEnv`` of textgym envs do).

    Args:
        env: A vector of textgym environments.
        critic, mode, label_rewards, default_reward, span_weight, extrinsic_weight, critic_kwargs: As for
            ``CriticRewardWrapper``.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        critic: Any = "default",
        mode: str = "episode",
        label_rewards: dict[str, float] | None = None,
        default_reward: float | None = None,
        span_weight: float = 1.0,
        extrinsic_weight: float = 1.0,
        critic_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(env)
        modes = (gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.DISABLED)
        if env.metadata.get("autoreset_mode") not in modes:
            raise ValueError("CriticRewardVectorWrapper needs a vector env with next-step or disabled autoreset.")
        self._idle_when_done = env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.DISABLED
        self.task = env.get_attr("task")[0].name
        self.tokenizer = env.get_attr("tokenizer")[0]
        self.rules = RewardRules.for_task(self.task, mode, label_rewards, default_reward, span_weight, extrinsic_weight)
        model_name, device, dtype = (env.get_attr(name)[0] for name in ("model_name", "device", "dtype"))
        self.critic = resolve_critic(self.task, critic, critic_kwargs, model_name, device, dtype)
        self.episodes = [EpisodeSpanRewards(self.rules, self.tokenizer) for _ in range(self.num_envs)]
        self._restart = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Resets the sub-environments (all, or those in ``options["reset_mask"]``) and their critic state."""
        mask = (options or {}).get("reset_mask")
        mask = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()
        obs, infos = self.env.reset(seed=seed, options=options)
        self._restart[mask] = False
        self._start(np.flatnonzero(mask))
        return obs, infos

    def step(self, actions: Any):
        """Steps every sub-environment and adds the span rewards due, critiquing all due texts in one call."""
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64).copy()
        restarted = np.flatnonzero(self._restart) if not self._idle_when_done else np.zeros(0, dtype=int)
        done = np.logical_or(terminations, truncations)
        due: list[tuple[int, str, float | None]] = []
        for i in range(self.num_envs):
            if self._restart[i]:
                continue
            completion = infos["completion"][i] if done[i] else None
            text = self.episodes[i].due(int(np.asarray(actions[i]).reshape(())), bool(done[i]), completion)
            if text is not None:
                due.append((i, text, float(infos["extrinsic_score"][i]) if done[i] else None))
        self._start(restarted)  # this step reset them: new episodes start now
        if due:
            critiques = self.critic.critique(
                [self.episodes[i].source for i, _, _ in due],
                [text for _, text, _ in due],
                [score for _, _, score in due],  # None for prefixes; the cache groups them apart
            )
            for (i, _, score), critique in zip(due, critiques, strict=True):
                span_reward, extra = self.episodes[i].settle(critique, bool(done[i]), score or 0.0)
                if done[i]:
                    rewards[i] = self.rules.extrinsic_weight * score
                    extra["critic_stats"] = self.critic.stats.as_dict()
                    infos = gym.vector.VectorEnv._add_info(self.env, infos, extra, i)
                rewards[i] += span_reward
        self._restart = done | self._restart if self._idle_when_done else done.copy()
        return obs, rewards, terminations, truncations, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-environment (from the wrapped vector env)."""
        return self.env.get_attr(name)

    def _start(self, indices) -> None:
        if len(indices) == 0:
            return
        items = self.env.get_attr("item")
        for i in indices:
            self.episodes[i].start(items[i].source)
