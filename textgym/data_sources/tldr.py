"""Reddit TL;DR: posts and their reference summaries, from the CarperAI or TRL layouts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textgym.data_sources.common import TLDR_ID, check_positive, check_split, field, finish, load_rows
from textgym.error import DataError
from textgym.tasks.base import PromptItem

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
    parts = parse_tldr_prompt(str(field(row, "prompt", source)))
    summary_key = "label" if "label" in row else "completion"
    summary = str(field(row, summary_key, source)).strip()
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
    check_split(split)
    check_positive("max_words", max_words)
    check_positive("limit", limit)
    names = [source_split] if source_split else (["train"] if split == "train" else ["valid", "validation"])
    items = []
    for row in load_rows(source, names):
        post, summary, meta = tldr_pair(row, source)
        if post and summary and (max_words is None or len(post.split()) <= max_words):
            items.append(PromptItem(post, summary, meta))
    return finish(items, limit, seed, source)
