"""What every loader shares: reading a hub id or local copy through ``datasets``, and the checks."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from textgym.error import DataError, MissingPackageError, SettingsError
from textgym.tasks.base import SPLITS, PromptItem

IMDB_ID = "stanfordnlp/imdb"
RTP_ID = "allenai/real-toxicity-prompts"
TLDR_ID = "CarperAI/openai_summarize_tldr"
INSTALL_COMMAND = "pip install 'datasets>=2.18'"
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
"""File suffix -> the ``datasets`` builder that reads it."""
RTP_SUBSETS = ("toxic", "challenging", "nontoxic", "all")

# -- reading a source -------------------------------------------------------------------------------------------


def import_datasets() -> ModuleType:
    """Imports the optional ``datasets`` package.

    Raises:
        MissingPackageError: It is not installed; the message gives the pip command.
    """
    try:
        import datasets
    except ImportError as error:
        raise MissingPackageError(
            "Loading IMDB, RealToxicityPrompts or TL;DR needs the 'datasets' package, which is not installed. "
            f"Install it with: {INSTALL_COMMAND} (or pip install 'textgym[data]')."
        ) from error
    return datasets


def is_local(source: str | Path) -> bool:
    """Whether ``source`` names a local file or folder rather than a hub id.

    An existing path is local; so is a missing path with a data-file suffix, so that a typo in a file name gives
    "file not found" instead of a hub error.
    """
    path = Path(source)
    return path.exists() or path.suffix.lower() in LOCAL_BUILDERS


def holds_one_split(source: str | Path) -> bool:
    """Whether a local ``source`` holds a single split (a data file or a saved ``Dataset``, not a ``DatasetDict``)."""
    return is_local(source) and not (Path(source) / "dataset_dict.json").exists()


def load_rows(source: str | Path, split_names: Sequence[str]) -> Iterable[dict[str, Any]]:
    """Reads the rows of one split of a data set, from the hub or a local copy.

    Args:
        source: A hub id, a local data file, or a folder written by ``save_to_disk``.
        split_names: Names the wanted split may have in a source with several splits, tried in order
            (e.g. ``("valid", "validation")``). A source with one split is read whole.

    Returns:
        The rows as dicts (a ``datasets.Dataset``, iterated lazily).

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        DataError: The source cannot be read or reached, or has none of ``split_names``.
    """
    datasets = import_datasets()
    if is_local(source):
        data = load_local(datasets, Path(source))
    else:
        try:
            data = datasets.load_dataset(str(source))
        except Exception as error:  # datasets raises ConnectionError, OSError, HTTP and build errors...
            raise hub_error(str(source), error) from error
    if isinstance(data, datasets.DatasetDict):
        return pick_split(data, split_names, source)
    return data


def load_local(datasets: ModuleType, path: Path) -> Any:
    """Reads a local file or ``save_to_disk`` folder with ``datasets``."""
    if not path.exists():
        raise DataError(f"Data file {str(path)!r} does not exist; check the path.")
    builder = LOCAL_BUILDERS.get(path.suffix.lower())
    if builder is None and not path.is_dir():
        raise DataError(
            f"Cannot read {str(path)!r}: the file type is not one of {', '.join(LOCAL_BUILDERS)}. "
            "Convert it, or save the data set with Dataset.save_to_disk and pass the folder."
        )
    try:
        if path.is_dir():
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as error:  # malformed files raise DatasetGenerationError, ArrowInvalid, ...
        raise DataError(f"Could not read the data set at {str(path)!r}: {error}") from error


def hub_error(source: str, error: Exception) -> DataError:
    """The clear error for a hub id that could not be loaded."""
    return DataError(
        f"Could not load the data set {source!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
        "If this machine cannot reach the hub, download the data set elsewhere and pass a local copy as the "
        "source: a .jsonl, .json, .csv or .parquet file with the same fields, or a folder written by "
        "save_to_disk."
    )


def pick_split(data: Mapping[str, Any], split_names: Sequence[str], source: str | Path) -> Any:
    """The first of ``split_names`` that a loaded DatasetDict holds."""
    for name in split_names:
        if name in data:
            return data[name]
    raise DataError(
        f"The data set {str(source)!r} has no split named {' or '.join(map(repr, split_names))}; it has "
        f"{', '.join(map(repr, data))}. Pass source_split= with one of them."
    )


# -- shared steps -------------------------------------------------------------------------------------------------


def check_split(split: str) -> None:
    """Raises DataError for a split other than train / eval."""
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {SPLITS}.")


def check_positive(name: str, value: int | None, optional: bool = True) -> None:
    """Raises SettingsError unless ``value`` is a positive integer (or None when optional)."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SettingsError(f"{name} must be a positive integer{' or None' if optional else ''}, got {value!r}.")


def finish(items: Iterable[PromptItem], limit: int | None, seed: int, source: str | Path) -> list[PromptItem]:
    """Drops repeated sources (the first one stays), then keeps ``limit`` items drawn with ``seed``, in order."""
    by_source: dict[str, PromptItem] = {}
    for item in items:
        by_source.setdefault(item.source, item)
    unique = list(by_source.values())
    if not unique:
        raise DataError(f"No prompts left from {str(source)!r} after filtering; loosen the filters.")
    if limit is None or limit >= len(unique):
        return unique
    keep = sorted(random.Random(seed).sample(range(len(unique)), limit))
    return [unique[index] for index in keep]


def field(row: Mapping[str, Any], key: str, source: str | Path) -> Any:
    """A row's field, or DataError naming the source and the fields it has."""
    if key not in row:
        raise DataError(f"A row of {str(source)!r} has no {key!r} field; it has {sorted(row)}.")
    return row[key]
