"""From character spans to tokens: which generated tokens a span covers, and the per-token span rewards.

A token is covered by a span when its characters overlap the span's characters, and only then. Token character
ranges come from decoding the generated ids one prefix at a time, so they index exactly the completion text the
critic read (``tokenizer.decode(ids, skip_special_tokens=True)``), special tokens and all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from textgym.critics.base import Span


def token_char_ranges(tokenizer, token_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Character range of each generated token in the decoded completion.

    A token that adds no characters (a special token, or the first bytes of a character that the next token
    completes) gets an empty range at its position.

    Args:
        tokenizer: The environment's tokenizer.
        token_ids: The generated ids, in order.

    Returns:
        ``(start, end)`` per token, non-decreasing, with ``end`` of the last token equal to the text's length.
    """
    text = tokenizer.decode(list(token_ids), skip_special_tokens=True)
    ranges, previous = [], 0
    for index in range(len(token_ids)):
        prefix = tokenizer.decode(list(token_ids[: index + 1]), skip_special_tokens=True)
        common = _common_prefix_length(prefix, text)  # a partial character decodes as U+FFFD: not yet shared
        end = max(previous, common)
        ranges.append((previous, end))
        previous = end
    return ranges


def _common_prefix_length(a: str, b: str) -> int:
    length = min(len(a), len(b))
    for index in range(length):
        if a[index] != b[index]:
            return index
    return length


def covered_tokens(ranges: Sequence[tuple[int, int]], span: Span) -> np.ndarray:
    """Boolean mask of the tokens whose characters overlap ``span`` (a token with no characters overlaps nothing)."""
    return np.array([start < end and start < span.end and span.start < end for start, end in ranges], dtype=bool)


def span_token_rewards(
    ranges: Sequence[tuple[int, int]],
    spans: Sequence[Span],
    label_rewards: Mapping[str, float],
    default_reward: float = 0.0,
) -> np.ndarray:
    """Per-token span rewards.

    Each token gets the reward of every differently labelled span it overlaps (a token under a "positive" and a
    "negative" span gets both); tokens under no span get ``default_reward`` (``+0.5`` for summaries, else 0).
    Overlapping spans of the same label count once.

    Args:
        ranges: Character range of each token (see :func:`token_char_ranges`).
        spans: The critique's spans.
        label_rewards: Reward per token for each label, e.g. ``{"toxic": -0.5}``.
        default_reward: Reward of tokens that no span covers.
    """
    rewards = np.zeros(len(ranges), dtype=np.float64)
    any_span = np.zeros(len(ranges), dtype=bool)
    for label in {span.label for span in spans}:
        mask = np.zeros(len(ranges), dtype=bool)
        for span in spans:
            if span.label == label:
                mask |= covered_tokens(ranges, span)
        rewards[mask] += label_rewards.get(label, 0.0)
        any_span |= mask
    visible = np.array([end > start for start, end in ranges], dtype=bool)
    rewards[~any_span & visible] += default_reward
    return rewards
