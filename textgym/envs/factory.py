"""The entry points of every textgym id: a text environment (or its vector form) with its reward kind's wrapper.

``reward="sparse"`` is the environment alone; any other kind wraps it in
:class:`~textgym.wrappers.DenseRewardWrapper` (or the vector form) with that member of
:data:`textgym.rewards.REWARDS`. The keyword arguments that the member takes (``mode`` and its own: ``critic``,
``gamma``, ``beta``, ``unit``, ...) go to the wrapper, all others to
:class:`~textgym.envs.text_env.TextGenerationEnv`. The environment's ``device`` and ``dtype`` place its scorer's
model and the member's (a critic that runs a local model, unless its ``critic_kwargs`` set their own).
"""

from __future__ import annotations

import inspect
from typing import Any

from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv
from textgym.error import SettingsError
from textgym.rewards import reward_class
from textgym.tasks import get_task


def _split(
    task: str, reward: str, kwargs: dict[str, Any], vector: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    if reward == "sparse":
        if "mode" in kwargs:
            raise SettingsError("A sparse env pays one reward at the end: it takes no mode= (use a dense reward id).")
        return {}, kwargs
    member = set(inspect.signature(reward_class(reward).__init__).parameters) - {"self", "settings"}
    env_args = set(inspect.signature(TextGenerationEnv.__init__).parameters) - {"self"}
    if vector:
        env_args.add("autoreset_mode")
    unknown = set(kwargs) - member - env_args
    if unknown:
        raise SettingsError(
            f"Unknown argument(s) {sorted(unknown)} for a {task} env with the {reward!r} reward: the env takes "
            f"{sorted(env_args)}, the reward {sorted(member)}."
        )
    wrapper = {key: value for key, value in kwargs.items() if key in member}
    return wrapper, {key: value for key, value in kwargs.items() if key not in member}


def make_env(task: str, reward: str = "sparse", task_module: str | None = None, **kwargs: Any):
    """Builds ``TextGenerationEnv(task, ...)``, wrapped in the reward kind's ``DenseRewardWrapper`` unless sparse."""
    get_task(task, task_module)
    wrapper, env_kwargs = _split(task, reward, kwargs)
    env = TextGenerationEnv(task=task, **env_kwargs)
    if reward == "sparse":
        return env
    from textgym.wrappers import CriticRewardWrapper, DenseRewardWrapper

    return CriticRewardWrapper(env, **wrapper) if reward == "critic" else DenseRewardWrapper(env, reward, **wrapper)


def make_vector_env(
    num_envs: int = 1, task: str = "sentiment", reward: str = "sparse", task_module: str | None = None, **kwargs: Any
):
    """Builds ``TextGenerationVectorEnv(num_envs, task, ...)``, wrapped in the vector reward wrapper unless sparse."""
    get_task(task, task_module)
    wrapper, env_kwargs = _split(task, reward, kwargs, vector=True)
    envs = TextGenerationVectorEnv(num_envs, task=task, **env_kwargs)
    if reward == "sparse":
        return envs
    from textgym.wrappers import CriticRewardVectorWrapper, DenseRewardVectorWrapper

    if reward == "critic":
        return CriticRewardVectorWrapper(envs, **wrapper)
    return DenseRewardVectorWrapper(envs, reward, **wrapper)
