"""IMDB: prompts cut from the openings of movie reviews (the RL4LMs / RELC sentiment setting)."""

from __future__ import annotations

import re
from pathlib import Path

from textgym.data_sources.common import IMDB_ID, check_positive, check_split, field, finish, load_rows
from textgym.tasks.base import PromptItem

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
    check_split(split)
    check_positive("n_words", n_words, optional=False)
    check_positive("limit", limit)
    names = [source_split] if source_split else ["train" if split == "train" else "test"]
    items = []
    for row in load_rows(source, names):
        review_label = field(row, "label", source)
        if label is not None and review_label != label:
            continue
        opening = review_opening(field(row, "text", source), n_words)
        if opening is not None:
            items.append(PromptItem(opening, meta={"label": review_label}))
    return finish(items, limit, seed, source)
