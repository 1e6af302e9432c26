"""The vector form of the CriticRewardWrapper: one batched critique per step for every sub-environment due one."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from textgym.wrappers.dense_reward_vector import DenseRewardVectorWrapper


class CriticRewardVectorWrapper(DenseRewardVectorWrapper):
    """Per-token critic rewards for a vector of text environments, with the critic called once per step.

    ``DenseRewardVectorWrapper(envs, "critic", ...)`` under its own name: the rules, modes, faults and infos are
    those of :class:`~textgym.wrappers.CriticRewardWrapper`, and the rewards equal what ``SyncVectorEnv`` of
    ``CriticRewardWrapper`` environments gives on the same seeds.

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
        super().__init__(
            env, "critic", mode, critic=critic, label_rewards=label_rewards, default_reward=default_reward,
            span_weight=span_weight, extrinsic_weight=extrinsic_weight, critic_kwargs=critic_kwargs,
        )  # fmt: skip

    @property
    def critic(self):
        """The (cached) critic."""
        return self.reward.critic
