"""The three tasks: sentiment control, detoxification and summarization.

Looking a task up imports nothing heavy; models load when a scorer is first built, once per process.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from textgym.error import unknown_name
from textgym.tasks.base import PromptItem, Scorer, Task, embedded_data, load_items

TASK_MODULES = {
    "sentiment": "textgym.tasks.sentiment",
    "detox": "textgym.tasks.detox",
    "summarize": "textgym.tasks.summarize",
}

__all__ = ["PromptItem", "Scorer", "Task", "TASK_MODULES", "get_task", "get_items", "get_scorer"]


def _module(name: str) -> ModuleType:
    if name not in TASK_MODULES:
        raise unknown_name("task", name, TASK_MODULES)
    return importlib.import_module(TASK_MODULES[name])


def get_task(name: str) -> Task:
    """Returns the task called ``name`` ("sentiment", "detox" or "summarize")."""
    return _module(name).TASK


@functools.cache
def get_items(name: str, split: str = "train", path: str | None = None) -> tuple[PromptItem, ...]:
    """Returns a task's prompt items for one split, from the embedded data or a user's JSON-lines file.

    A user's file needs the field ``text`` (sentiment, detox) or ``post`` and ``summary`` (summarize); a ``split``
    field is optional.
    """
    module = _module(name)
    source_key, reference_key = ("post", "summary") if name == "summarize" else ("text", None)
    file = Path(path) if path else embedded_data(module.DATA_FILE)
    return tuple(load_items(file, split, source_key, reference_key))


@functools.cache
def _cached_scorer(name: str, scorer: str, frozen_kwargs: str) -> Scorer:
    return _module(name).build_scorer(scorer, **json.loads(frozen_kwargs))


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
