"""The CriticRewardWrapper: RELC's span rewards, the critic member of the dense reward wrappers."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from textgym.wrappers.dense_reward import DenseRewardWrapper


class CriticRewardWrapper(DenseRewardWrapper):
    """Adds a critic's per-token span rewards to a text environment's sparse extrinsic reward.

    ``DenseRewardWrapper(env, "critic", ...)`` under its own name; the reward rules, modes and faults are those of
    :class:`textgym.rewards.critic.CriticReward`. The last step's info has the dense wrappers' keys
    (``token_rewards``, ``dense_reward``, ``reward_fallback``, ``reward_error``, ``reward_stats``) and the
    critic's: ``critic_reward`` (the span part of the return), ``critic_spans`` (``(start, end, label)`` into
    the completion), ``critic_fallback``, ``critic_error``, ``critic_stats`` (calls, cache hits, hit rate,
    failures, dropped spans).

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
        super().__init__(
            env, "critic", mode, critic=critic, label_rewards=label_rewards, default_reward=default_reward,
            span_weight=span_weight, extrinsic_weight=extrinsic_weight, critic_kwargs=critic_kwargs,
        )  # fmt: skip

    @property
    def critic(self):
        """The (cached) critic."""
        return self.reward.critic
