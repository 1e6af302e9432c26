"""Writing prompt files, and ``prepare``: load a data set and write it in one call."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textgym.data_sources.common import check_split, holds_one_split
from textgym.data_sources.imdb import load_imdb_prompts
from textgym.data_sources.rtp import load_rtp_prompts
from textgym.data_sources.tldr import load_tldr
from textgym.error import DataError, unknown_name
from textgym.files import atomic_write
from textgym.tasks.base import SPLITS, PromptItem

# -- writing and preparing ----------------------------------------------------------------------------------------

LOADERS: dict[str, Callable[..., list[PromptItem]]] = {
    "imdb": load_imdb_prompts,
    "rtp": load_rtp_prompts,
    "tldr": load_tldr,
}
"""Data set name -> loader, as :func:`prepare` and ``textgym data prepare NAME`` take them."""
DATASET_TASKS = {"imdb": "sentiment", "rtp": "detox", "tldr": "summarize"}
"""Data set name -> the textgym task whose ``prompts_path`` its prepared file feeds."""
RESERVED_KEYS = ("text", "post", "summary", "split")


def prompt_row(item: PromptItem) -> dict[str, Any]:
    """One line of textgym's prompt format: ``text`` (no reference) or ``post`` + ``summary``, then the meta."""
    row: dict[str, Any] = {"text": item.source} if item.reference is None else {"post": item.source}
    if item.reference is not None:
        row["summary"] = item.reference
    row.update({key: value for key, value in item.meta.items() if key not in RESERVED_KEYS})
    return row


def export_prompts(items: Sequence[PromptItem] | Mapping[str, Sequence[PromptItem]], path: str | Path) -> int:
    """Writes prompt items as the JSON-lines file that ``gym.make(..., prompts_path=path)`` reads.

    Items without a reference become ``{"text": ...}`` (sentiment, detox); items with one become
    ``{"post": ..., "summary": ...}`` (summarize). Their meta fields follow. The file is written atomically.

    Args:
        items: A list of items (no ``split`` field: every split of the env uses all of them), or a mapping from
            ``"train"`` / ``"eval"`` to items (each row gets its ``split``).
        path: The file to write; missing parent folders are created.

    Returns:
        The number of rows written.

    Raises:
        DataError: An unknown split, or items with and without references mixed.
    """
    groups = items.items() if isinstance(items, Mapping) else [(None, items)]
    rows = []
    for split, group in groups:
        if split is not None:
            check_split(split)
        rows += [{**prompt_row(item), **({"split": split} if split else {})} for item in group]
    if len({"text" in row for row in rows}) > 1:
        raise DataError("Cannot write items with and without references to one file: a task needs one kind.")
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    atomic_write(path, lambda temporary: temporary.write_text("".join(lines), encoding="utf-8"))
    return len(rows)


def loader_options(dataset_name: str) -> list[str]:
    """The keyword options a data set's loader takes besides ``source`` and ``split`` (for CLI flags)."""
    parameters = inspect.signature(_loader(dataset_name)).parameters
    return [name for name in parameters if name not in ("source", "split")]


def _loader(dataset_name: str) -> Callable[..., list[PromptItem]]:
    if dataset_name not in LOADERS:
        raise unknown_name("data set", dataset_name, LOADERS)
    return LOADERS[dataset_name]


def prepare(
    dataset_name: str,
    source: str | Path | Mapping[str, str | Path] | None = None,
    out_path: str | Path = "prompts.jsonl",
    splits: Sequence[str] = SPLITS,
    **options: Any,
) -> dict[str, int]:
    """Loads a paper data set and writes it as one prompt file with ``split`` fields.

    Args:
        dataset_name: ``"imdb"``, ``"rtp"`` or ``"tldr"``.
        source: The hub id or local copy (default: the data set's hub id), or a mapping from split to source for
            local files that each hold one split, e.g. ``{"train": "train.csv", "eval": "test.csv"}``.
        out_path: The JSON-lines file to write.
        splits: The splits to write.
        **options: Options of the loader (:func:`loader_options`), e.g. ``n_words=8`` or ``limit=2000``;
            ``limit`` applies to each split.

    Returns:
        The number of prompts written for each split.

    Raises:
        UnknownNameError: An unknown data set or option.
        DataError: A single-split local file asked for both splits of IMDB or TL;DR, or any loader error.
        MissingPackageError: ``datasets`` is not installed.
    """
    loader = _loader(dataset_name)
    valid = loader_options(dataset_name)
    for option in options:
        if option not in valid:
            raise unknown_name(f"{dataset_name} option", option, valid)
    sources = _split_sources(dataset_name, source, splits)
    items = {split: loader(sources[split], split, **options) for split in splits}
    export_prompts(items, out_path)
    return {split: len(group) for split, group in items.items()}


def _split_sources(
    dataset_name: str, source: str | Path | Mapping[str, str | Path] | None, splits: Sequence[str]
) -> dict[str, str | Path]:
    for split in splits:
        check_split(split)
    if isinstance(source, Mapping):
        missing = [split for split in splits if split not in source]
        if missing:
            raise DataError(f"No source given for split {missing[0]!r}; the mapping has {sorted(source)}.")
        return {split: source[split] for split in splits}
    source = source or inspect.signature(_loader(dataset_name)).parameters["source"].default
    if dataset_name != "rtp" and len(splits) > 1 and holds_one_split(source):
        raise DataError(
            f"{str(source)!r} holds one split of {dataset_name}, so it cannot give both train and eval prompts. "
            "Pass one source per split ({'train': ..., 'eval': ...}), a folder written by "
            "DatasetDict.save_to_disk, or ask for one split."
        )
    return dict.fromkeys(splits, source)
