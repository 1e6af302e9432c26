"""The ``*-critic-v0`` environments: the text environment (or its vector form) wrapped in the critic reward wrapper.

Keyword arguments of the wrapper (``critic``, ``mode``, ``critic_kwargs``, ``label_rewards``, ``default_reward``,
``span_weight``, ``extrinsic_weight``; see :class:`~textgym.wrappers.CriticRewardWrapper`) go to the wrapper,
all others to :class:`~textgym.envs.text_env.TextGenerationEnv`. The environment's ``device`` and ``dtype`` place
its scorer's model and the critic's (a critic that runs a local model, unless ``critic_kwargs`` sets its own).
"""

from __future__ import annotations

from typing import Any

from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv
from textgym.wrappers.critic_reward import CriticRewardWrapper
from textgym.wrappers.critic_reward_vector import CriticRewardVectorWrapper

WRAPPER_ARGS = ("critic", "mode", "critic_kwargs", "label_rewards", "default_reward", "span_weight", "extrinsic_weight")


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    wrapper = {key: value for key, value in kwargs.items() if key in WRAPPER_ARGS}
    return wrapper, {key: value for key, value in kwargs.items() if key not in WRAPPER_ARGS}


def make_critic_env(task: str, **kwargs: Any) -> CriticRewardWrapper:
    """Builds ``TextGenerationEnv(task, ...)`` wrapped in a :class:`CriticRewardWrapper`."""
    wrapper, env_kwargs = _split(kwargs)
    return CriticRewardWrapper(TextGenerationEnv(task=task, **env_kwargs), **wrapper)


def make_critic_vector_env(num_envs: int = 1, task: str = "sentiment", **kwargs: Any) -> CriticRewardVectorWrapper:
    """Builds ``TextGenerationVectorEnv(num_envs, task, ...)`` wrapped in a :class:`CriticRewardVectorWrapper`."""
    wrapper, env_kwargs = _split(kwargs)
    return CriticRewardVectorWrapper(TextGenerationVectorEnv(num_envs, task=task, **env_kwargs), **wrapper)
