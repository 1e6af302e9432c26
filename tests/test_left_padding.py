"""textgym.left_padding: left-padded batches and batches of similar length."""

from __future__ import annotations

import itertools
import random

import pytest

from textgym.left_padding import left_pad, length_batches


def test_left_pad_ends_every_row_at_the_last_column():
    ids, mask = left_pad([[1, 2, 3], [4], []], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]


def cost(lengths, batches, pass_cost):
    return sum(len(batch) * lengths[batch[-1]] + pass_cost for batch in batches)


@pytest.mark.parametrize("seed", range(20))
def test_length_batches_cover_the_rows_in_order_at_the_least_cost(seed):
    rng = random.Random(seed)
    lengths = sorted(rng.randint(1, 30) for _ in range(rng.randint(1, 9)))
    most, pass_cost = rng.randint(1, 5), rng.choice([0, 10, 40])
    batches = length_batches(lengths, most, pass_cost)
    assert [row for batch in batches for row in batch] == list(range(len(lengths)))
    assert all(1 <= len(batch) <= most for batch in batches)
    splits = (
        [range(a, b) for a, b in itertools.pairwise((0, *cuts, len(lengths)))]
        for k in range(len(lengths))
        for cuts in itertools.combinations(range(1, len(lengths)), k)
    )
    least = min(cost(lengths, split, pass_cost) for split in splits if all(len(b) <= most for b in split))
    assert cost(lengths, batches, pass_cost) == least


def test_length_batches_split_short_rows_from_long_ones_and_keep_alike_rows_together():
    assert length_batches([2, 2, 2, 2, 50, 50], most=32, pass_cost=10) == [range(0, 4), range(4, 6)]
    assert length_batches([8] * 6, most=32, pass_cost=10) == [range(0, 6)]
    assert length_batches([], most=4) == []
