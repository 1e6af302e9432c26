"""Shared parts of the scorers' ``attribution`` methods: per-token weights -> per-character weights of a range.

A scorer's ``attribution(texts, ranges)`` says how much each character of ``text[start:end]`` (the completion's part
of what the scorer reads) counted for the scorer, as the weights of the attention-based credit (Chan et al., 2024,
arXiv 2402.00782). Each scorer computes a weight per token of its own tokenizer, with the token's character span;
:func:`spread_over_characters` turns those into characters the same way for every scorer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from textgym.error import ModelLoadError


def check_ranges(texts: Sequence[str], ranges: Sequence[tuple[int, int]]) -> None:
    """Raises ValueError unless there is one range per text and each is ``0 <= start <= end <= len(text)``."""
    if len(texts) != len(ranges):
        raise ValueError(f"Need one (start, end) range per text, got {len(ranges)} ranges for {len(texts)} texts.")
    for index, (text, (start, end)) in enumerate(zip(texts, ranges, strict=True)):
        if not 0 <= start <= end <= len(text):
            raise ValueError(
                f"Range {index} is ({start}, {end}), outside its text of {len(text)} characters; "
                "pass 0 <= start <= end <= len(text)."
            )


def spread_over_characters(
    text: str, spans: Sequence[tuple[int, int]], weights: Sequence[float], start: int, end: int
) -> np.ndarray:
    """Per-character weights of ``text[start:end]`` from per-token weights.

    Each token's span is first trimmed of whitespace (byte-level BPE tokens carry their leading space), so spaces get
    no weight with any tokenizer and a whitespace-only range has no token. The tokens whose trimmed span overlaps
    ``[start, end)`` are kept, their weights renormalised to sum to 1, and each token's weight is spread evenly over
    its characters inside the range.

    Args:
        text: The text the spans index into.
        spans: ``(first, past_last)`` character span of each token; empty spans (special tokens) are ignored.
        weights: A nonnegative weight per token.
        start: First character of the range.
        end: One past its last character.

    Returns:
        A float64 array of length ``end - start`` summing to 1, or all zeros when no kept token has weight.
    """
    out = np.zeros(end - start, dtype=np.float64)
    kept = []
    for (first, last), weight in zip(spans, weights, strict=True):
        while first < last and text[first].isspace():
            first += 1
        while last > first and text[last - 1].isspace():
            last -= 1
        low, high = max(first, start), min(last, end)
        if low < high:
            kept.append((low, high, float(weight)))
    total = sum(weight for _, _, weight in kept)
    if total <= 0 or not np.isfinite(total):
        return out
    for low, high, weight in kept:
        out[low - start : high - start] += weight / total / (high - low)
    return out


@contextlib.contextmanager
def eager_attention(model) -> Iterator[None]:
    """Runs a transformers model with eager attention inside the block, and with its own implementation after.

    sdpa and flash attention return no attention weights (transformers 5 only warns), so the
    attribution forwards switch to eager attention for their call only. The scores the model gives elsewhere keep
    its own implementation. Not thread-safe: the model is switched in place.
    """
    previous = model.config._attn_implementation
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if previous != "eager":
            model.set_attn_implementation(previous)


def head_mean_of_last_layer(attentions):
    """The last layer's attention weights averaged over heads, shape ``(batch, queries, keys)``, in float64.

    Args:
        attentions: The ``attentions`` of a transformers forward with ``output_attentions=True``.

    Raises:
        ModelLoadError: The model returned no attention weights (an attention implementation that cannot give them
            and that could not be switched to eager).
    """
    if not attentions or attentions[-1] is None:
        raise ModelLoadError(
            "The model returned no attention weights, which the attribution needs; load it with "
            "attn_implementation='eager' or use a model whose attention implementation can be switched."
        )
    return attentions[-1].double().mean(1)
