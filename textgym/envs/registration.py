"""Registration of textgym's environment ids with Gymnasium, and the only place that spells an id.

Every registered task gets one id per reward kind (:data:`textgym.rewards.REWARD_KINDS`):
``Text{task.title}-{reward}-v0``. The reward kind and the task sit in the spec's kwargs (``reward``, ``task``), so
code reads them from there (:func:`reward_of`, :func:`task_of`), never from the id's spelling. String entry points:
nothing heavy loads until an id is made.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.registration import register

from textgym.rewards import REWARD_KINDS
from textgym.tasks import Task, get_task, task_names

ENTRY_POINT = "textgym.envs.factory:make_env"
VECTOR_ENTRY_POINT = "textgym.envs.factory:make_vector_env"
VERSION = 0


def env_id(task: str | Task, reward: str = "sparse") -> str:
    """The id of a task's env with one reward kind: ``env_id("detox", "critic") == "TextDetox-critic-v0"``."""
    task = get_task(task) if isinstance(task, str) else task
    return f"Text{task.title}-{reward}-v{VERSION}"


def register_task_ids(task: Task) -> None:
    """Registers ``Text{title}-{reward}-v0`` for every reward kind (called by ``textgym.tasks.register_task``)."""
    for reward in REWARD_KINDS:
        kwargs = {"task": task.name, "reward": reward}
        if task.module:
            kwargs["task_module"] = task.module  # a spawned worker imports it to find the task
        register(id=env_id(task, reward), entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT, kwargs=kwargs)


def registered_ids() -> list[str]:
    """Returns every textgym environment id, in registration order."""
    return [name for name, spec in gym.registry.items() if spec.entry_point == ENTRY_POINT]


def _spec_kwargs(env_id_: str) -> dict:
    try:
        spec = gym.spec(env_id_)
    except gym.error.Error as error:  # NameNotFound, VersionNotFound, ... : say which ids there are
        from textgym.error import unknown_name

        raise unknown_name("environment id", env_id_, registered_ids()) from error
    if spec.entry_point != ENTRY_POINT:
        from textgym.error import SettingsError

        raise SettingsError(f"{env_id_!r} is not a textgym id; `textgym list` shows them.")
    return spec.kwargs


def check_ids(env_ids) -> None:
    """Raises the error :func:`task_of` gives for the first of ``env_ids`` that is not a registered textgym id.

    Commands that run several ids check them all first, so a typo in the last one costs no run of the others.
    """
    for env_id_ in env_ids:
        _spec_kwargs(env_id_)


def reward_of(env_id_: str) -> str:
    """The reward kind of a registered textgym id (``"sparse"``, ``"critic"``, ...), from its spec."""
    return _spec_kwargs(env_id_)["reward"]


def task_of(env_id_: str) -> str:
    """The task name of a registered textgym id, from its spec."""
    return _spec_kwargs(env_id_)["task"]


def with_reward(env_id_: str, reward: str) -> str:
    """The id of the same task with another reward kind: ``with_reward("TextDetox-critic-v0", "sparse")``."""
    if reward not in REWARD_KINDS:
        from textgym.error import unknown_name

        raise unknown_name("reward", reward, REWARD_KINDS)
    kwargs = _spec_kwargs(env_id_)
    return env_id(get_task(kwargs["task"], kwargs.get("task_module")), reward)


def family_of(env_id_: str) -> str:
    """The id without its reward kind, naming the task's family of ids: ``"TextDetox-v0"``."""
    kwargs = _spec_kwargs(env_id_)
    return f"Text{get_task(kwargs['task'], kwargs.get('task_module')).title}-v{VERSION}"


def has_critic(env_id_: str) -> bool:
    """Whether the registered id's env pays a critic's rewards."""
    return reward_of(env_id_) == "critic"


task_names()  # registers the built-in tasks, and so their ids
