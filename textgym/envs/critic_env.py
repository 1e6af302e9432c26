"""The ``*-critic-v0`` environments: a text environment wrapped in the CriticRewardWrapper."""

from __future__ import annotations

from typing import Any

from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv
from textgym.wrappers.critic_reward import CriticRewardWrapper
from textgym.wrappers.critic_reward_vector import CriticRewardVectorWrapper


def make_critic_env(
    task: str,
    critic: str | dict[str, Any] = "default",
    mode: str = "episode",
    critic_kwargs: dict[str, Any] | None = None,
    label_rewards: dict[str, float] | None = None,
    default_reward: float | None = None,
    span_weight: float = 1.0,
    extrinsic_weight: float = 1.0,
    **env_kwargs: Any,
) -> CriticRewardWrapper:
    """Builds ``TextGenerationEnv(task, **env_kwargs)`` wrapped in a :class:`CriticRewardWrapper`.

    Args:
        task: The task.
        critic: A critic spec: ``"default"``, ``"lm-judge"``, ``"attribution"``, ``"self"``, a model id, an
            ``http(s)://`` URL of an OpenAI-compatible server, or a config dict.
        mode: ``"episode"`` or ``"prefix"``.
        critic_kwargs: Arguments of the critic (e.g. ``{"model": "...", "threshold": 0.5}``).
        label_rewards: Per-token reward per span label.
        default_reward: Per-token reward of tokens no span covers.
        span_weight: Multiplies span rewards.
        extrinsic_weight: Multiplies the extrinsic reward.
        **env_kwargs: Arguments of :class:`TextGenerationEnv` (``model``, ``max_new_tokens``, ``split``, ...).
    """
    return CriticRewardWrapper(
        TextGenerationEnv(task=task, **env_kwargs),
        critic=critic,
        mode=mode,
        label_rewards=label_rewards,
        default_reward=default_reward,
        span_weight=span_weight,
        extrinsic_weight=extrinsic_weight,
        critic_kwargs=critic_kwargs,
    )


def make_critic_vector_env(
    num_envs: int = 1,
    task: str = "sentiment",
    critic: str | dict[str, Any] = "default",
    mode: str = "episode",
    critic_kwargs: dict[str, Any] | None = None,
    label_rewards: dict[str, float] | None = None,
    default_reward: float | None = None,
    span_weight: float = 1.0,
    extrinsic_weight: float = 1.0,
    **env_kwargs: Any,
) -> CriticRewardVectorWrapper:
    """The vector form: ``TextGenerationVectorEnv`` wrapped in a :class:`CriticRewardVectorWrapper`."""
    return CriticRewardVectorWrapper(
        TextGenerationVectorEnv(num_envs, task=task, **env_kwargs),
        critic=critic,
        mode=mode,
        label_rewards=label_rewards,
        default_reward=default_reward,
        span_weight=span_weight,
        extrinsic_weight=extrinsic_weight,
        critic_kwargs=critic_kwargs,
    )
