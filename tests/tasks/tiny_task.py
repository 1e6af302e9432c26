"""A fourth task declared outside textgym, as a user would: shouting (upper-case letters) is what scores.

A test fixture: importing this module registers the task and its six ids, ``TextShout-{reward}-v0``. Nothing in
textgym names it; a spawned worker finds it through the ``task_module`` that each id's spec records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textgym.tasks import PromptItem, Task, register_task

DATA_FILE = Path(__file__).with_name("tiny_task_prompts.jsonl")


def loudness(text: str) -> float:
    """The share of upper-case letters among the letters of ``text`` (0 for a text without letters)."""
    letters = [char for char in text if char.isalpha()]
    return sum(char.isupper() for char in letters) / len(letters) if letters else 0.0


class ShoutScore:
    """The loudness of the completion alone, with the upper-case letters as its attribution."""

    def __call__(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        """One score per (item, completion)."""
        return [loudness(text) for text in completions]

    def attribution(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[np.ndarray]:
        """Per-character weights over each completion: its upper-case letters, evenly (all 0 when it has none)."""
        weights = []
        for text in completions:
            upper = np.array([char.isupper() for char in text], dtype=np.float64)
            weights.append(upper / upper.sum() if upper.sum() else upper)
        return weights


def build_scorer(name: str, device: str = "cpu", dtype: str = "float32", **kwargs: Any) -> ShoutScore:
    """The one scorer, ``"loudness"``; it runs no model, so ``device`` and ``dtype`` change nothing."""
    if name != "loudness" or kwargs:
        raise ValueError(f"The shout task has one scorer, 'loudness', without arguments; got {name!r}, {kwargs}.")
    return ShoutScore()


def metrics(scores: np.ndarray, texts: Sequence[str], items: Sequence[PromptItem]) -> dict[str, float]:
    """The share of completions that are mostly upper case."""
    return {"loud_share": float(np.mean(scores > 0.5))}


TASK = register_task(
    Task(
        name="shout",
        title="Shout",
        description="Continue an opening; reward = share of upper-case letters in the completion.",
        prompt_template="{source}",
        default_max_new_tokens=6,
        default_prompt_budget=16,
        default_scorer="loudness",
        build_scorer=build_scorer,
        data_file=str(DATA_FILE),
        scorers=("loudness",),
        labels=("loud", "quiet"),
        label_rewards={"loud": 0.5, "quiet": -0.5},
        default_reward=0.0,
        critic_labels=("quiet", "loud"),
        default_critic={"type": "attribution", "method": "occlusion"},
        metrics=metrics,
        module=__name__,
    )
)
