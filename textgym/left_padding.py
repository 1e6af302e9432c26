"""Batches of token-id lists for causal LMs: left-padded so that every row ends at the last column.

:func:`length_batches` groups rows of similar length, so that little is padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of ``rows``, each padded on the left with ``pad_id`` to the longest row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch (padding gets position 0)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def length_batches(lengths: Sequence[int], most: int, pass_cost: int = 40) -> list[range]:
    """Splits rows sorted by length into consecutive batches of at most ``most`` rows with little padding.

    A batch costs its rows times its longest row's length (the positions it pads to) plus ``pass_cost``, what one
    forward pass costs beyond its positions: a pass of a few short rows runs its matrix products far below the
    speed of a long one (SmolLM2-135M's on one CPU core: about 40 tokens' worth). The split minimises the total,
    exactly (dynamic programming over the lengths).

    Args:
        lengths: The rows' lengths, ascending.
        most: The most rows a batch holds.
        pass_cost: The cost of a pass, in positions.

    Returns:
        The batches, as ranges of row indices, in order.
    """
    cost, cut = [0.0] + [float("inf")] * len(lengths), [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        for start in range(max(0, end - most), end):
            total = cost[start] + (end - start) * lengths[end - 1] + pass_cost
            if total < cost[end]:
                cost[end], cut[end] = total, start
    batches, end = [], len(lengths)
    while end:
        batches.append(range(cut[end], end))
        end = cut[end]
    return batches[::-1]


def shared_rows(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The distinct rows of a left-padded batch (ids and mask alike), when some repeat.

    Returns:
        ``(first, inverse)``: the index of each distinct row's first occurrence (in order of first occurrence) and,
        for every row, the position of its distinct row in ``first``, so that ``x[first][inverse]`` is ``x`` for
        rows that depend only on their ids and mask; or None when every row is distinct.
    """
    keys: dict[tuple[int, ...], int] = {}
    inverse = [keys.setdefault(tuple(row), len(keys)) for row in torch.cat([ids, mask], dim=1).tolist()]
    if len(keys) == len(inverse):
        return None
    first = [inverse.index(k) for k in range(len(keys))]
    return torch.tensor(first, device=ids.device), torch.tensor(inverse, device=ids.device)
