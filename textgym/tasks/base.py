"""What a task is: a prompt source, a batched extrinsic scorer and a description.

A task knows nothing of environments or agents. Its scorer is a plain batched callable
``(items, completions) -> list[float]``, one sparse score per finished text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from textgym.error import DataError

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class PromptItem:
    """One task input.

    Attributes:
        source: The task input as written: a review opening, a hostile opening, a post.
        reference: A reference output where the task has one (a summary), else ``None``.
        meta: Any other fields of the data row (title, topic, ...).
    """

    source: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


Scorer = Callable[[Sequence[PromptItem], Sequence[str]], list[float]]
"""A batched extrinsic scorer: one score per (item, completion) pair."""


Metrics = Callable[[np.ndarray, Sequence[str], Sequence[PromptItem]], dict[str, float]]
"""A task's eval metrics: ``(scores, texts, items) -> {name: value}``, where ``scores`` is a (prompts x samples)
array of the task's scores and ``texts``/``items`` are the completions and their items in row order."""


@dataclass(frozen=True, eq=False)
class Task:
    """A text-generation task, and everything textgym knows about it.

    One task module declares one ``TASK``; :func:`textgym.tasks.register_task` registers it and an env id for every
    reward kind (``Text{title}-{reward}-v0``). Nothing else in textgym names a task's particulars.

    Attributes:
        name: Short name, e.g. ``"sentiment"``.
        title: The name part of the env ids (``"Sentiment"`` -> ``TextSentiment-sparse-v0``).
        description: One line for listings.
        prompt_template: How an item becomes the policy's prompt; ``{source}`` is replaced by the item's source.
        default_max_new_tokens: Episode length limit unless the user sets one.
        default_prompt_budget: Observation tokens reserved for the prompt; longer prompts are cut at the left.
        default_scorer: Name of the default scorer.
        build_scorer: ``(name, device=..., dtype=..., **kwargs) -> Scorer``; the scorer may also offer
            ``attribution(items, completions)`` (per-character weights over each completion, summing to 1) for
            the attention reward.
        data_file: The prompts: a file name in the package's ``data`` folder, or a path (JSON lines).
        source_key: The data field holding the task input.
        reference_key: The data field holding the reference output, if the task has one.
        scorers: Built-in scorer names (listed in errors and help).
        labels: The span labels a critic marks (RELC's).
        label_rewards: Per-token reward of each label (RELC's values).
        default_reward: Per-token reward of tokens no span covers.
        critic_labels: For critics that read the scorer (attribution): the label of a clause that lowers the score
            and of one that raises it (``None`` for no label).
        clause_scorable: Whether a clause alone has a meaningful score (the attribution critic's ``segment``
            method); summaries do not.
        default_critic: The offline default critic's config (see :mod:`textgym.critics.registry`).
        critic_templates: The task's own critic templates by kind (``"judge"``: the clause judge's JSON,
            ``"list"``: the listing critics' prompt), as paths; a kind not given is the packaged
            ``textgym/critics/templates/{name}_{kind}.*`` (the built-in tasks have all of them there).
        metrics: The task's own eval metrics beside the reward (see :data:`Metrics`).
        module: The module that declares the task; a spawned worker process imports it to find the task.
    """

    name: str
    title: str
    description: str
    prompt_template: str
    default_max_new_tokens: int
    default_prompt_budget: int
    default_scorer: str
    build_scorer: Callable[..., Scorer]
    data_file: str
    source_key: str = "text"
    reference_key: str | None = None
    scorers: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    label_rewards: Mapping[str, float] = field(default_factory=dict)
    default_reward: float = 0.0
    critic_labels: tuple[str | None, str | None] = (None, None)
    clause_scorable: bool = True
    default_critic: Mapping[str, Any] = field(default_factory=lambda: {"type": "attribution", "method": "occlusion"})
    critic_templates: Mapping[str, str] = field(default_factory=dict)
    metrics: Metrics | None = None
    module: str | None = None

    def format_prompt(self, item: PromptItem) -> str:
        """Returns the text the policy sees before it writes."""
        return self.prompt_template.format(source=item.source)

    def data_path(self) -> Path:
        """The prompts file: an embedded one by name, or the path as given."""
        path = Path(self.data_file)
        return path if path.is_absolute() or path.exists() else embedded_data(self.data_file)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Reads a JSON-lines file of objects; blank lines are skipped.

    Raises:
        DataError: A line that is not a JSON object, named by file and line number.
    """
    return [row for _, row in read_jsonl_lines(path)]


def read_jsonl_lines(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Reads a JSON-lines file of objects as (line number, object) pairs; blank lines are skipped.

    Raises:
        DataError: No file at ``path``, or a line that is not a JSON object.
    """
    if not Path(path).is_file():
        raise DataError(f"No file at {str(path)!r}: expected a JSON-lines file, one object a line.")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                message = f"{path}:{number} is not valid JSON ({error.msg}); each line must be one object."
                raise DataError(message) from error
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number} is a JSON {type(row).__name__}; each line must be one object.")
            rows.append((number, row))
    return rows


def embedded_data(name: str) -> Path:
    """Returns the path of one of the package's embedded data files, e.g. ``"detox_prompts.jsonl"``."""
    return Path(str(resources.files("textgym") / "data" / name))


def load_items(path: str | Path, split: str, source_key: str, reference_key: str | None = None) -> list[PromptItem]:
    """Loads the items of one split from a JSON-lines file.

    Rows without a ``split`` field belong to every split, so a user's own file of prompts needs no split.

    Args:
        path: The file.
        split: ``"train"`` or ``"eval"``.
        source_key: The field holding the task input.
        reference_key: The field holding the reference output, if the task has one.

    Raises:
        DataError: An unknown split, a missing field, or no rows for the split.
    """
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {SPLITS}.")
    items = []
    for number, row in read_jsonl_lines(path):
        if row.get("split", split) != split:
            continue
        missing = [key for key in (source_key, reference_key) if key and key not in row]
        if missing:
            raise DataError(f"{path}:{number} has no {missing[0]!r} field; every row needs one.")
        wrong = [key for key in (source_key, reference_key) if key and not isinstance(row[key], str)]
        if wrong:
            raise DataError(f"{path}:{number}: the {wrong[0]!r} field must be a string, got {row[wrong[0]]!r}.")
        reference = row[reference_key] if reference_key else None
        meta = {key: value for key, value in row.items() if key not in (source_key, reference_key, "split")}
        items.append(PromptItem(row[source_key], reference, meta))
    if not items:
        raise DataError(f"{path} has no rows for split {split!r}.")
    return items
