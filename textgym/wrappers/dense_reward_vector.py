"""The vector form of the dense reward wrapper: one batched evaluation per step for every sub-environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from textgym.rewards import DenseReward, build_reward
from textgym.rewards.base import DenseRewardBook, EnvSettings, RewardViews


class DenseRewardVectorWrapper(RewardViews, gym.vector.VectorWrapper):
    """A dense reward for a vector of text environments, with the member asked once per step.

    The rewards, modes, faults and infos are those of :class:`~textgym.wrappers.DenseRewardWrapper`, and equal
    what ``SyncVectorEnv`` of ``DenseRewardWrapper`` environments gives on the same seeds (up to the batching
    arithmetic of the scorer or critic). The wrapped vector env must autoreset on the next step (Gymnasium's
    default) or not at all (``autoreset_mode="disabled"``: ended rows idle until reset) and offer ``get_attr``
    (``TextGenerationVectorEnv`` and ``SyncVectorEnv`` of textgym envs do).

    Args:
        env: A vector of textgym environments.
        reward, mode, reward_kwargs: As for ``DenseRewardWrapper``.
    """

    def __init__(
        self, env: gym.vector.VectorEnv, reward: str | DenseReward = "uniform", mode: str = "episode", **reward_kwargs
    ) -> None:
        super().__init__(env)
        modes = (gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.DISABLED)
        if env.metadata.get("autoreset_mode") not in modes:
            raise ValueError(f"{type(self).__name__} needs a vector env with next-step or disabled autoreset.")
        self._idle_when_done = env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.DISABLED
        self.reward = build_reward(reward, EnvSettings.of_vector_env(env), mode, **reward_kwargs)
        self.book = DenseRewardBook(self.reward, self.num_envs)
        self._restart = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Resets the sub-environments (all, or those in ``options["reset_mask"]``) and their bookkeeping."""
        mask = (options or {}).get("reset_mask")
        mask = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()
        obs, infos = self.env.reset(seed=seed, options=options)
        self._restart[mask] = False
        self._start(np.flatnonzero(mask))
        return obs, infos

    def step(self, actions: Any):
        """Steps every sub-environment and pays the dense rewards due, with one batched evaluation."""
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64).copy()
        restarted = np.flatnonzero(self._restart) if not self._idle_when_done else np.zeros(0, dtype=int)
        done = np.logical_or(terminations, truncations)
        steps = [
            (i, int(np.asarray(actions[i]).reshape(())), bool(done[i]),
             float(infos["extrinsic_score"][i]) if done[i] else 0.0)
            for i in range(self.num_envs) if not self._restart[i]
        ]  # fmt: skip
        self._start(restarted)  # this step reset them: new episodes start now
        for (i, *_), result in zip(steps, self.book.step(steps), strict=True):
            rewards[i] = result.reward
            if result.info:
                infos = gym.vector.VectorEnv._add_info(self.env, infos, result.info, i)
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
            self.book.start(int(i), items[i])
