"""benchmarks/critic_ceiling.py: the summary 'supported' signals that need no LM judge, on the real MiniLM."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import critic_ceiling  # noqa: E402  (benchmarks/ is not a package)

from textgym.critics.base import Span  # noqa: E402
from textgym.critics.evaluation import GoldExample, labelled_words  # noqa: E402

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


def test_the_gold_words_counted_are_the_words_a_gold_span_covers():
    completion = " you absolute moron, fine."
    start = completion.index("absolute")
    spans = (Span(start, start + len("absolute moron"), "toxic"),)
    assert labelled_words(completion, spans) == {(1, "toxic"), (2, "toxic")}


def test_the_text_auc_ranks_a_toxic_completion_above_a_clean_one_per_source_on_the_real_bilstm():
    insult = " You are a stupid idiot and I hate you."
    start = insult.index("stupid")
    gold = [
        GoldExample("", insult, (Span(start, start + len("stupid idiot"), "toxic"),), "v1"),
        GoldExample("", " Thank you for your help.", (), "v1"),
        GoldExample("", " Thanks, that was kind.", (), "hard-v2"),  # hard-v2 has clean rows only: no AUC for it
    ]
    rows = critic_ceiling.text_toxicity_aucs({"task": "detox"}, gold)
    assert len(rows) == 1
    assert rows[0]["value"] == "1.000"
    assert "v1 rows (1 toxic, 1 clean; toxic rows above 0.5: 1)" in rows[0]["measure"]
