"""Splitting a completion into clauses with character offsets: the units that segment-level critics judge.

Boundaries fall after sentence and clause punctuation (``. ! ? ; : ,`` and line breaks) and before the
conjunctions that usually start a new clause ("but", "and", "although", ...). Each clause is trimmed of
surrounding whitespace; its trailing punctuation stays with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

CONJUNCTIONS = ("but", "and", "although", "though", "because", "while", "yet", "so", "or", "however", "whereas")
_BREAK = re.compile(r"(?<=[.!?;:,\n])\s+|\n+|\s+(?=(?:" + "|".join(CONJUNCTIONS) + r")\b)", re.IGNORECASE)
_WORD = re.compile(r"\w")


def clauses(text: str) -> list[tuple[int, int]]:
    """Character ranges of the clauses of ``text``, in order; pieces without a word character are skipped."""
    ranges, start = [], 0
    for match in _BREAK.finditer(text):
        ranges.append((start, match.start()))
        start = match.end()
    ranges.append((start, len(text)))
    out = []
    for begin, end in ranges:
        piece = text[begin:end]
        stripped = piece.strip()
        if not _WORD.search(stripped):
            continue
        offset = begin + len(piece) - len(piece.lstrip())
        out.append((offset, offset + len(stripped)))
    return out


def is_boundary(text: str) -> bool:
    """Whether ``text`` (a prefix of a completion) ends at a clause boundary: after clause punctuation."""
    return bool(re.search(r"[.!?;:,\n]\s*$", text))


Flag = tuple[int, int, int, str, float]
"""A flagged piece: (row, start, end, label, effect)."""


def trim_spans(
    flagged: list[Flag],
    completions: Sequence[str],
    effects: Callable[[list[tuple[int, int, int]]], Sequence[float]],
    label_of: Callable[[float], str | None],
    keep: float = 0.9,
) -> list[Flag]:
    """Narrows flagged pieces word by word from either end while they keep their label and ``keep`` of their effect.

    Each round tries dropping the first or the last word of every piece still shrinking, scores all candidates in
    one ``effects`` call, and keeps the stronger candidate that still qualifies.

    Args:
        flagged: The pieces to narrow.
        completions: The texts the rows index.
        effects: Signed effect of each ``(row, start, end)``, batched.
        label_of: The label an effect gives, or None.
        keep: Fraction of the original effect a narrowed piece must keep.
    """
    current, active = list(flagged), list(range(len(flagged)))
    while active:
        candidates = []
        for index in active:
            row, start, end, _, _ = current[index]
            words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", completions[row][start:end])]
            if len(words) > 1:
                candidates += [(index, words[1][0], end), (index, start, words[-2][1])]
        if not candidates:
            break
        scores = effects([(current[index][0], start, end) for index, start, end in candidates])
        best: dict[int, tuple[float, int, int]] = {}
        for (index, start, end), effect in zip(candidates, scores, strict=True):
            _, _, _, label, original = current[index]
            qualifies = label_of(float(effect)) == label and abs(effect) >= keep * abs(original)
            if qualifies and (index not in best or abs(effect) > abs(best[index][0])):
                best[index] = (float(effect), start, end)
        active = list(best)
        for index, (_, start, end) in best.items():
            row, _, _, label, original = current[index]
            current[index] = (row, start, end, label, original)
    return current
