"""The task registry: sentiment control, detoxification and summarization, and any task a user registers.

A task is one module that declares a :class:`~textgym.tasks.base.Task` (prompts and data keys, scorer, labels and
their span rewards, default critic, eval metrics). :func:`register_task` adds it here and registers an env id for
each reward kind, ``Text{title}-{reward}-v0`` (see :mod:`textgym.envs.registration`). Looking a task up imports
nothing heavy; models load when a scorer is first built, once per process.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any

from textgym.error import unknown_name
from textgym.tasks.base import PromptItem, Scorer, Task, embedded_data, load_items

BUILTIN_TASKS = ("textgym.tasks.sentiment", "textgym.tasks.detox", "textgym.tasks.summarize")
"""The modules of the built-in tasks, each declaring ``TASK``."""
TASKS: dict[str, Task] = {}
"""Every registered task by name, in registration order."""

__all__ = [
    "PromptItem", "Scorer", "Task", "TASKS", "register_task", "task_names", "get_task", "get_items", "get_scorer",
    "embedded_data",
]  # fmt: skip


def register_task(task: Task) -> Task:
    """Registers a task and its env ids (one per reward kind); registering the same task again changes nothing.

    Raises:
        ValueError: Another task of the same name or title is registered already.
    """
    existing = TASKS.get(task.name)
    if existing is task:
        return task
    if existing is not None or any(other.title == task.title for other in TASKS.values()):
        raise ValueError(f"A task named {task.name!r} or titled {task.title!r} is registered already.")
    TASKS[task.name] = task
    from textgym.envs.registration import register_task_ids

    register_task_ids(task)
    return task


def _load_builtins() -> None:
    for module in BUILTIN_TASKS:
        register_task(importlib.import_module(module).TASK)


def task_names() -> list[str]:
    """The registered tasks' names."""
    _load_builtins()
    return list(TASKS)


def get_task(name: str, module: str | None = None) -> Task:
    """Returns the task called ``name``; ``module``, its declaring module, is imported first if the name is unknown."""
    if name not in TASKS:
        _load_builtins()
        if name not in TASKS and module:
            importlib.import_module(module)
    if name not in TASKS:
        raise unknown_name("task", name, TASKS, hint="A new task is registered with textgym.tasks.register_task.")
    return TASKS[name]


@functools.cache
def get_items(name: str, split: str = "train", path: str | None = None) -> tuple[PromptItem, ...]:
    """Returns a task's prompt items for one split, from the task's data or a user's JSON-lines file.

    A user's file needs the task's source field (``text`` for sentiment and detox; ``post`` and ``summary`` for
    summarize); a ``split`` field is optional.
    """
    task = get_task(name)
    file = Path(path) if path else task.data_path()
    return tuple(load_items(file, split, task.source_key, task.reference_key))


@functools.cache
def _cached_scorer(name: str, scorer: str, frozen_kwargs: str) -> Scorer:
    return get_task(name).build_scorer(scorer, **json.loads(frozen_kwargs))


def get_scorer(
    name: str,
    scorer: str | None = None,
    scorer_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> Scorer:
    """Returns a task's extrinsic scorer, built once per process for each (task, scorer, kwargs, device, dtype).

    Args:
        name: The task.
        scorer: A scorer name of the task, or a transformers classifier id; ``None`` for the task's default.
        scorer_kwargs: Keyword arguments of the scorer (JSON-serialisable); a ``device`` or ``dtype`` here wins
            over the arguments.
        device: Where the scorer's model runs (see :mod:`textgym.devices`); scores come back to the CPU.
        dtype: The model's weights, ``"float32"`` or ``"bfloat16"`` (where the scorer's model takes it).
    """
    task = get_task(name)
    kwargs = {"device": device, "dtype": dtype, **(scorer_kwargs or {})}
    return _cached_scorer(name, scorer or task.default_scorer, json.dumps(kwargs, sort_keys=True))
