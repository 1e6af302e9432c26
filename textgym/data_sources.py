"""Loaders for the paper's data sets: IMDB reviews, RealToxicityPrompts and Reddit TL;DR.

Each loader reads a data set through the ``datasets`` library (``pip install 'textgym[data]'``), either from the
Hugging Face Hub by its id or from a local copy in the same format as the hub's, and returns textgym
:class:`~textgym.tasks.PromptItem` objects. :func:`export_prompts` writes them in the JSON-lines format that
``gym.make(..., prompts_path=...)`` reads, and :func:`prepare` does both in one call (what
``textgym data prepare`` runs).

A ``source`` is one of:

- a hub id (``"stanfordnlp/imdb"``, ``"allenai/real-toxicity-prompts"``, ``"CarperAI/openai_summarize_tldr"``,
  ``"trl-lib/tldr"``, or any data set with the same fields);
- a local ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file, read whole as one split of the data set;
- a local folder written by ``Dataset.save_to_disk`` (one split) or ``DatasetDict.save_to_disk`` (the split is
  picked by name as on the hub).

An existing local path always wins over a hub id of the same name.

Splits: textgym's ``train`` and ``eval`` map to the data set's ``train`` and ``test`` (IMDB) or ``valid`` /
``validation`` (TL;DR). RealToxicityPrompts has a single split, so its prompts are divided by a hash of their text
(:func:`is_held_out`): the same prompt always falls on the same side, on every machine and in every version.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from textgym.error import DataError, MissingPackageError, SettingsError, unknown_name
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
        data = _load_local(datasets, Path(source))
    else:
        try:
            data = datasets.load_dataset(str(source))
        except Exception as error:  # datasets raises ConnectionError, OSError, HTTP and build errors...
            raise _hub_error(str(source), error) from error
    if isinstance(data, datasets.DatasetDict):
        return _pick_split(data, split_names, source)
    return data


def _load_local(datasets: ModuleType, path: Path) -> Any:
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


def _hub_error(source: str, error: Exception) -> DataError:
    return DataError(
        f"Could not load the data set {source!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
        "If this machine cannot reach the hub, download the data set elsewhere and pass a local copy as the "
        "source: a .jsonl, .json, .csv or .parquet file with the same fields, or a folder written by "
        "save_to_disk."
    )


def _pick_split(data: Mapping[str, Any], split_names: Sequence[str], source: str | Path) -> Any:
    for name in split_names:
        if name in data:
            return data[name]
    raise DataError(
        f"The data set {str(source)!r} has no split named {' or '.join(map(repr, split_names))}; it has "
        f"{', '.join(map(repr, data))}. Pass source_split= with one of them."
    )


# -- shared steps -------------------------------------------------------------------------------------------------


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {SPLITS}.")


def _check_positive(name: str, value: int | None, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SettingsError(f"{name} must be a positive integer{' or None' if optional else ''}, got {value!r}.")


def _finish(items: Iterable[PromptItem], limit: int | None, seed: int, source: str | Path) -> list[PromptItem]:
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


def _field(row: Mapping[str, Any], key: str, source: str | Path) -> Any:
    if key not in row:
        raise DataError(f"A row of {str(source)!r} has no {key!r} field; it has {sorted(row)}.")
    return row[key]


# -- IMDB ---------------------------------------------------------------------------------------------------------

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_review(text: str) -> str:
    """Replaces IMDB's ``<br />`` line breaks by spaces and collapses runs of whitespace."""
    return " ".join(_BREAK.sub(" ", text).split())


def review_opening(text: str, n_words: int) -> str | None:
    """The first ``n_words`` words of a cleaned review, or ``None`` if the review has no more than that."""
    words = clean_review(text).split()
    return " ".join(words[:n_words]) if len(words) > n_words else None


def load_imdb_prompts(
    source: str | Path = IMDB_ID,
    split: str = "train",
    n_words: int = 8,
    label: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    source_split: str | None = None,
) -> list[PromptItem]:
    """Review openings from IMDB for the sentiment task: the first ``n_words`` words of each review.

    Args:
        source: A hub id or local copy with the fields ``text`` and ``label`` (0 negative, 1 positive).
        split: ``"train"`` (IMDB's ``train``) or ``"eval"`` (IMDB's ``test``).
        n_words: Words kept from the start of each review, after ``<br />`` is replaced by a space. Reviews with
            no more words than this are skipped (nothing would be left to continue).
        label: Keep only reviews with this label (e.g. 0: steer negative openings to positive); ``None`` keeps all.
        limit: Keep at most this many prompts, drawn at random with ``seed`` (in data-set order).
        seed: Seed of the draw when ``limit`` is set.
        source_split: The data set's split to read instead of the default for ``split``.

    Returns:
        Items with ``source`` the opening and ``meta["label"]`` the review's label. Repeated openings appear once.

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        DataError: The source cannot be read, lacks a field, or leaves no prompts.
        SettingsError: ``n_words`` or ``limit`` is not a positive integer.
    """
    _check_split(split)
    _check_positive("n_words", n_words, optional=False)
    _check_positive("limit", limit)
    names = [source_split] if source_split else ["train" if split == "train" else "test"]
    items = []
    for row in load_rows(source, names):
        review_label = _field(row, "label", source)
        if label is not None and review_label != label:
            continue
        opening = review_opening(_field(row, "text", source), n_words)
        if opening is not None:
            items.append(PromptItem(opening, meta={"label": review_label}))
    return _finish(items, limit, seed, source)


# -- RealToxicityPrompts ------------------------------------------------------------------------------------------


def is_held_out(text: str, eval_fraction: float) -> bool:
    """Whether a prompt belongs to the eval side of the deterministic split.

    The first 8 bytes of the SHA-256 of the UTF-8 text, read as a big-endian integer and divided by 2**64, give a
    number in [0, 1); the prompt is held out when it is below ``eval_fraction``.
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def rtp_prompt(row: Mapping[str, Any], source: str | Path = "the data set") -> tuple[str, float | None]:
    """The prompt text and its toxicity from a RealToxicityPrompts row.

    The ``prompt`` field is a dict (``{"text", "toxicity", ...}``) on the hub and in JSON files; a CSV holds it as
    a JSON string or as flattened ``prompt.text`` / ``prompt.toxicity`` columns. A missing toxicity is ``None``.
    """
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.lstrip().startswith("{"):
        prompt = json.loads(prompt)
    if not isinstance(prompt, Mapping):
        prompt = {"text": row.get("prompt.text"), "toxicity": row.get("prompt.toxicity")}
    text = prompt.get("text")
    if not isinstance(text, str):
        raise DataError(f"A row of {str(source)!r} has no prompt text (a 'prompt' dict with 'text'): {dict(row)}.")
    toxicity = prompt.get("toxicity")
    if toxicity is None or (isinstance(toxicity, float) and math.isnan(toxicity)):
        return text.strip(), None
    return text.strip(), float(toxicity)


def _in_subset(
    subset: str, toxicity: float | None, challenging: bool, toxic_threshold: float, nontoxic_threshold: float
) -> bool:
    if subset == "all":
        return True
    if subset == "challenging":
        return challenging
    if toxicity is None:
        return False
    return toxicity > toxic_threshold if subset == "toxic" else toxicity < nontoxic_threshold


def load_rtp_prompts(
    source: str | Path = RTP_ID,
    split: str = "train",
    subset: str | None = None,
    toxic_threshold: float = 0.6,
    nontoxic_threshold: float = 0.5,
    eval_fraction: float = 0.1,
    limit: int | None = None,
    seed: int = 0,
) -> list[PromptItem]:
    """Prompts from RealToxicityPrompts for the detox task.

    The defaults follow the detoxification literature: train on prompts that invite toxic continuations, and
    evaluate on non-toxic prompts (toxicity < 0.5, as in DExperts' and Quark's evaluation sets).

    Args:
        source: A hub id or local copy with the fields ``prompt`` (``{"text", "toxicity", ...}``) and
            ``challenging``.
        split: ``"train"`` or ``"eval"``: the two sides of the hash split (:func:`is_held_out`).
        subset: ``"toxic"`` (prompt toxicity > ``toxic_threshold``), ``"challenging"`` (the data set's
            challenging flag), ``"nontoxic"`` (toxicity < ``nontoxic_threshold``) or ``"all"``. Default:
            ``"toxic"`` for train, ``"nontoxic"`` for eval. Prompts without a toxicity score are only in
            ``"challenging"`` and ``"all"``.
        toxic_threshold: Bound of the ``"toxic"`` subset.
        nontoxic_threshold: Bound of the ``"nontoxic"`` subset.
        eval_fraction: Share of prompts held out for ``"eval"`` by the hash split.
        limit: Keep at most this many prompts, drawn at random with ``seed`` (in data-set order).
        seed: Seed of the draw when ``limit`` is set.

    Returns:
        Items with ``source`` the prompt text and ``meta`` its ``toxicity`` and ``challenging`` flag.

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        DataError: The source cannot be read, lacks a field, or leaves no prompts.
        SettingsError: An unknown subset, a fraction outside (0, 1) or a bad ``limit``.
    """
    _check_split(split)
    _check_positive("limit", limit)
    subset = subset or ("toxic" if split == "train" else "nontoxic")
    if subset not in RTP_SUBSETS:
        raise SettingsError(f"Unknown RealToxicityPrompts subset {subset!r}; use one of {RTP_SUBSETS}.")
    if not 0 < eval_fraction < 1:
        raise SettingsError(f"eval_fraction must lie strictly between 0 and 1, got {eval_fraction!r}.")
    items = []
    for row in load_rows(source, ["train"]):
        text, toxicity = rtp_prompt(row, source)
        challenging = bool(row.get("challenging", False))
        if not text or is_held_out(text, eval_fraction) != (split == "eval"):
            continue
        if _in_subset(subset, toxicity, challenging, toxic_threshold, nontoxic_threshold):
            items.append(PromptItem(text, meta={"toxicity": toxicity, "challenging": challenging}))
    return _finish(items, limit, seed, source)


# -- TL;DR --------------------------------------------------------------------------------------------------------

_TLDR_PROMPT = re.compile(
    r"^\s*(?:SUBREDDIT:[ \t]*(?P<subreddit>[^\n]*?)\s*\n)?"
    r"\s*(?:TITLE:[ \t]*(?P<title>[^\n]*?)\s*\n)?"
    r"\s*POST:\s*(?P<post>.*?)\s*(?:TL;DR:\s*)?$",
    re.DOTALL,
)


def parse_tldr_prompt(prompt: str) -> dict[str, str]:
    """Splits a TL;DR prompt (``SUBREDDIT: r/x``, ``TITLE: ...``, ``POST: ...``, ``TL;DR:`` on lines) into parts.

    Blank lines between the parts (as in ``trl-lib/tldr``) are allowed; SUBREDDIT and TITLE are optional.

    Returns:
        ``{"post": ..., "title": ..., "subreddit": ...}``, empty strings for missing parts.

    Raises:
        DataError: The prompt has no ``POST:`` part.
    """
    match = _TLDR_PROMPT.match(prompt)
    if match is None:
        raise DataError(f"A TL;DR prompt must contain 'POST: <the post>'; got {prompt[:200]!r}.")
    return {key: (value or "").strip() for key, value in match.groupdict().items()}


def tldr_pair(row: Mapping[str, Any], source: str | Path = "the data set") -> tuple[str, str, dict[str, str]]:
    """The post, the reference summary and the title/subreddit of a TL;DR row.

    Rows may be ``{prompt, label}`` (``CarperAI/openai_summarize_tldr``), ``{prompt, completion}``
    (``trl-lib/tldr``) or already ``{post, summary}`` with optional ``title`` and ``subreddit``.
    """
    if "post" in row and "summary" in row:
        meta = {key: str(row[key]) for key in ("title", "subreddit") if row.get(key)}
        return str(row["post"]).strip(), str(row["summary"]).strip(), meta
    parts = parse_tldr_prompt(str(_field(row, "prompt", source)))
    summary_key = "label" if "label" in row else "completion"
    summary = str(_field(row, summary_key, source)).strip()
    meta = {key: parts[key] for key in ("title", "subreddit") if parts[key]}
    return parts["post"], summary, meta


def load_tldr(
    source: str | Path = TLDR_ID,
    split: str = "train",
    max_words: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    source_split: str | None = None,
) -> list[PromptItem]:
    """Reddit posts with reference TL;DRs for the summarize task.

    Args:
        source: A hub id or local copy with the fields ``prompt`` and ``label`` (CarperAI), ``prompt`` and
            ``completion`` (trl-lib), or ``post`` and ``summary``.
        split: ``"train"`` (the data set's ``train``) or ``"eval"`` (its ``valid`` or ``validation``).
        max_words: Skip posts longer than this many words. The env keeps the *last* ``prompt_budget`` tokens of a
            long prompt (192 for summarize), so long posts lose their start unless you raise ``prompt_budget``.
        limit: Keep at most this many items, drawn at random with ``seed`` (in data-set order).
        seed: Seed of the draw when ``limit`` is set.
        source_split: The data set's split to read instead of the default for ``split`` (e.g. ``"test"``).

    Returns:
        Items with ``source`` the post, ``reference`` the summary and ``meta`` its ``title`` and ``subreddit``.

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        DataError: The source cannot be read, a row cannot be parsed, or no items are left.
        SettingsError: ``max_words`` or ``limit`` is not a positive integer.
    """
    _check_split(split)
    _check_positive("max_words", max_words)
    _check_positive("limit", limit)
    names = [source_split] if source_split else (["train"] if split == "train" else ["valid", "validation"])
    items = []
    for row in load_rows(source, names):
        post, summary, meta = tldr_pair(row, source)
        if post and summary and (max_words is None or len(post.split()) <= max_words):
            items.append(PromptItem(post, summary, meta))
    return _finish(items, limit, seed, source)


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
            _check_split(split)
        rows += [{**prompt_row(item), **({"split": split} if split else {})} for item in group]
    if len({"text" in row for row in rows}) > 1:
        raise DataError("Cannot write items with and without references to one file: a task needs one kind.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    os.replace(temporary, path)
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
        _check_split(split)
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
