"""The development and test parts of the measurement sets: the critics' gold spans and the labelled sentences.

Choices (templates, thresholds, models, calibration) may look at ``dev`` only; ``test`` is what the project
reports. A row's part is a fixed function of its own text, so no result can move a row from one part to the other:

    u = int(sha256(SALT + key).hexdigest()[:8], 16) / 16**8
    split = "dev" if u < DEV_SHARE[source] else "test"

``key`` (:func:`split_key`) is a row's ``group`` where it has one (rows written as variations of each other, such as
a sentence and its mirror with the opposite label, share a group and so a part), else what a critic or scorer sees:
a labelled sentence's ``text``; a summary's ``post`` (every summary of one post falls in the same part); otherwise
``prompt`` + ``completion``. ``source`` says how a row was written: ``v1`` (the first gold sets and labelled
sentences, half in dev) or ``hard-v2`` (written later, by another procedure, to measure with: a third in dev, two
thirds in test). The rule gives about these shares, not exact counts (the key is hashed as UTF-8). Every packaged
row stores its ``split``, and the tests check that recomputing the rule gives it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from textgym.error import DataError

PARTS = ("dev", "test")
"""The parts a row belongs to."""
MEASURED_SPLITS = (*PARTS, "all")
"""What a measurement may read: one part, or every row."""
DEV_SHARE = {"v1": 1 / 2, "hard-v2": 1 / 3}
"""The share of each source's rows that the rule puts in ``dev``."""
SALT = "textgym-split-v1\n"
"""Prefixed to every key before hashing; changing it would reshuffle every set."""


def split_key(row: dict[str, Any]) -> str:
    """The text the rule hashes: ``group``, else ``text``, else ``post``, else ``prompt`` + ``completion``."""
    if "group" in row:
        return row["group"]
    if "text" in row:
        return row["text"]
    if "post" in row:
        return row["post"]
    return row.get("prompt", "") + row["completion"]


def split_of(row: dict[str, Any]) -> str:
    """The part the rule assigns to a row (``source`` defaults to ``v1``).

    Raises:
        DataError: The row's ``source`` has no dev share.
    """
    source = row.get("source", "v1")
    if source not in DEV_SHARE:
        raise DataError(f"Unknown source {source!r}: the split rule knows {sorted(DEV_SHARE)}; add it to DEV_SHARE.")
    digest = hashlib.sha256((SALT + split_key(row)).encode("utf-8")).hexdigest()
    return "dev" if int(digest[:8], 16) / 16**8 < DEV_SHARE[source] else "test"


def select(rows: Iterable[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The rows of one part (``dev`` or ``test``), or every row (``all``).

    Rows without a ``split`` field belong to every part, as in the prompt files, so a user's own set needs none.

    Raises:
        DataError: An unknown split, or a row whose ``split`` is neither ``dev`` nor ``test``.
    """
    if split not in MEASURED_SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {MEASURED_SPLITS}.")
    chosen = []
    for row in rows:
        part = row.get("split", split)
        if part not in PARTS and "split" in row:
            raise DataError(f"A row has split {part!r}; a measurement row's split is one of {PARTS}: {row}")
        if split == "all" or part == split:
            chosen.append(row)
    return chosen
