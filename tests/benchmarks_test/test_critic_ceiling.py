"""benchmarks/critic_ceiling.py: the summary 'supported' signals that need no LM judge, on the real MiniLM."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import critic_ceiling  # noqa: E402  (benchmarks/ is not a package)

from textgym.critics.evaluation import GoldExample  # noqa: E402

POST = "My sister lent me her car for the weekend. I scratched the door while parking at the mall."


def test_a_clause_copied_from_the_post_is_nearer_and_newer_words_count():
    completion = " I scratched the door while parking at the mall. My brother sold my bike to a stranger."
    gold = [GoldExample(POST, completion, ())]
    first_end = completion.index(".") + 1
    units = [(0, 1, first_end), (0, first_end + 1, len(completion))]
    distance, novelty = critic_ceiling.support_distances(gold, units).values()
    assert distance[0] == pytest.approx(0.0, abs=1e-5)  # the post's own sentence
    assert distance[1] > 0.3
    assert novelty[0] == 0.0
    # content words of "My brother sold my bike to a stranger.": brother, sold, bike, stranger; none in the post
    assert novelty[1] == 1.0


def test_the_stem_drops_possessives_and_plurals_only_past_four_letters():
    assert [critic_ceiling._stem(w) for w in ("Grandmother's", "tomatoes", "bus", "Cars")] == [
        "grandmother",
        "tomatoe",
        "bus",
        "cars",
    ]
