"""Tests of the summary reward (textgym.scorers.summary_quality): ROUGE, MiniLM similarity and length terms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from textgym.scorers.summary_quality import SummaryQualityScorer
from textgym.tasks.base import embedded_data

UNRELATED = "A recipe for tomato soup: roast the tomatoes, add garlic and basil, then blend it until smooth."


@pytest.fixture(scope="module")
def scorer() -> SummaryQualityScorer:
    return SummaryQualityScorer()


@pytest.fixture(scope="module")
def posts() -> list[dict]:
    with open(embedded_data("summarize_posts.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()][:3]


def _f1(overlap: int, summary_count: int, reference_count: int) -> float:
    precision, recall = overlap / summary_count, overlap / reference_count
    return 2 * precision * recall / (precision + recall)


# ------------------------------------------------------------------------------------ ROUGE term


def test_rouge_term_hand_computed(scorer: SummaryQualityScorer) -> None:
    # Every word has at most three letters, so the stemmer leaves them alone.
    reference = "the cat sat on the mat"
    summary = "the cat ran on a mat"
    # Unigrams: reference {the: 2, cat, sat, on, mat}, summary {the, cat, ran, on, a, mat}; clipped overlap
    # the, cat, on, mat = 4 of 6 and 6.
    rouge1 = _f1(4, 6, 6)
    # Bigrams: reference the-cat cat-sat sat-on on-the the-mat; summary the-cat cat-ran ran-on on-a a-mat: 1 shared.
    rouge2 = _f1(1, 5, 5)
    # Longest common subsequence: the cat on mat = 4.
    rouge_l = _f1(4, 6, 6)
    assert scorer.rouge.score(reference, summary)["rouge1"].fmeasure == pytest.approx(rouge1)
    assert scorer.rouge_term(summary, reference) == pytest.approx((rouge1 + rouge2 + rouge_l) / 3)
    assert scorer.rouge_term(summary, reference) == pytest.approx((2 / 3 + 1 / 5 + 2 / 3) / 3)


def test_rouge_term_hand_computed_unequal_lengths(scorer: SummaryQualityScorer) -> None:
    reference = "the cat sat on the mat"
    summary = "the cat sat"
    # Unigrams 3 shared (P 3/3, R 3/6); bigrams the-cat cat-sat shared (P 2/2, R 2/5); LCS 3 (P 3/3, R 3/6).
    expected = (_f1(3, 3, 6) + _f1(2, 2, 5) + _f1(3, 3, 6)) / 3
    assert scorer.rouge_term(summary, reference) == pytest.approx(expected)
    assert scorer.rouge_term(summary, reference) == pytest.approx((2 / 3 + 4 / 7 + 2 / 3) / 3)


def test_rouge_term_extremes(scorer: SummaryQualityScorer) -> None:
    assert scorer.rouge_term("The cat sat on the mat.", "the cat sat on the mat") == pytest.approx(1.0)
    assert scorer.rouge_term("dog ran far", "the cat sat on the mat") == 0.0
    assert scorer.rouge_term("", "the cat sat on the mat") == 0.0


# ------------------------------------------------------------------------------------ length term


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (0, 0.0),
        (1, 1 / 8),
        (7, 7 / 8),  # min_words - 1
        (8, 1.0),  # min_words
        (20, 1.0),
        (30, 1.0),  # max_words
        (31, 1 - 1 / 30),  # max_words + 1
        (45, 0.5),
        (59, 1 / 30),
        (60, 0.0),  # 2 * max_words
        (61, 0.0),
        (200, 0.0),
    ],
)
def test_length_term_default_bounds(scorer: SummaryQualityScorer, words: int, expected: float) -> None:
    assert (scorer.min_words, scorer.max_words) == (8, 30)
    assert scorer.length_term(" ".join(["word"] * words)) == pytest.approx(expected)


def test_length_term_counts_whitespace_separated_words(scorer: SummaryQualityScorer) -> None:
    assert scorer.length_term("   \n\t ") == 0.0
    assert scorer.length_term("  one\ttwo\nthree  four ") == pytest.approx(4 / 8)


def test_length_term_custom_bounds() -> None:
    custom = SummaryQualityScorer(min_words=5, max_words=5)
    values = [custom.length_term(" ".join(["w"] * n)) for n in (0, 4, 5, 6, 9, 10, 11)]
    assert values == pytest.approx([0.0, 0.8, 1.0, 0.8, 0.2, 0.0, 0.0])


# ------------------------------------------------------------------------------------ similarity and score


def test_faithful_summary_beats_unrelated(scorer: SummaryQualityScorer, posts: list[dict]) -> None:
    for row in posts:
        faithful, unrelated = scorer([row["summary"], UNRELATED], [row["post"]] * 2, [row["summary"]] * 2)
        assert faithful - unrelated > 0.3
        # Without the reference the similarity term alone still tells them apart.
        faithful, unrelated = scorer([row["summary"], UNRELATED], [row["post"]] * 2, [None, None])
        assert faithful - unrelated > 0.2


def test_similarity_terms(scorer: SummaryQualityScorer, posts: list[dict]) -> None:
    post = posts[0]["post"]
    similarity = scorer.similarity_terms([post, posts[0]["summary"], UNRELATED], [post] * 3)
    assert similarity.shape == (3,)
    assert similarity.dtype == np.float64
    assert ((similarity >= 0) & (similarity <= 1)).all()
    assert similarity[0] == pytest.approx(1.0, abs=1e-4)
    assert similarity[1] > similarity[2] + 0.3


def test_bfloat16_embeddings_give_the_float32_similarities_within_0_02(
    scorer: SummaryQualityScorer, posts: list[dict]
) -> None:
    half = SummaryQualityScorer(dtype="bfloat16")
    assert {p.dtype for p in half.embedder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in scorer.embedder.parameters()} == {torch.float32}  # the shared float32 model is untouched
    summaries = [post["summary"] for post in posts] + [UNRELATED]
    sources = [post["post"] for post in posts] + [posts[0]["post"]]
    expected, got = scorer.similarity_terms(summaries, sources), half.similarity_terms(summaries, sources)
    assert got.dtype == np.float64 and np.abs(got - expected).max() < 0.02
    assert not np.array_equal(got, expected)


def test_score_is_weighted_mean_of_terms(posts: list[dict]) -> None:
    weights = np.array([0.2, 0.5, 0.3])
    custom = SummaryQualityScorer(*weights, min_words=4, max_words=12)
    summaries = [posts[0]["summary"], "too short", UNRELATED, posts[1]["summary"]]
    sources = [posts[0]["post"], posts[0]["post"], posts[1]["post"], posts[1]["post"]]
    references = [posts[0]["summary"], posts[0]["summary"], posts[1]["summary"], posts[1]["summary"]]
    terms = custom.terms(summaries, sources, references)
    assert terms.shape == (4, 3)
    assert ((terms >= 0) & (terms <= 1)).all()
    assert terms[:, 0] == pytest.approx([custom.rouge_term(s, r) for s, r in zip(summaries, references, strict=True)])
    assert terms[:, 2] == pytest.approx([custom.length_term(s) for s in summaries])
    expected = [(row * weights).sum() / weights.sum() for row in terms]
    scores = custom(summaries, sources, references)
    assert scores == pytest.approx(expected, abs=1e-9)
    assert all(type(value) is float for value in scores)
    assert len({round(value, 6) for value in scores}) == 4


def test_missing_reference_drops_rouge_term(scorer: SummaryQualityScorer, posts: list[dict]) -> None:
    row = posts[0]
    summaries = [row["summary"], UNRELATED]
    terms = scorer.terms(summaries, [row["post"]] * 2, [None, row["summary"]])
    assert np.isnan(terms[0, 0])
    assert not np.isnan(terms[1]).any()
    assert not np.isnan(terms[:, 1:]).any()
    w_rouge, w_similarity, w_length = scorer.weights
    scores = scorer(summaries, [row["post"]] * 2, [None, row["summary"]])
    assert scores[0] == pytest.approx((w_similarity * terms[0, 1] + w_length * terms[0, 2]) / (w_similarity + w_length))
    assert scores[1] == pytest.approx((terms[1] * scorer.weights).sum() / scorer.weights.sum())


def test_rouge_only_weights_without_reference_raise(posts: list[dict]) -> None:
    rouge_only = SummaryQualityScorer(w_rouge=1.0, w_similarity=0.0, w_length=0.0)
    row = posts[0]
    assert rouge_only([UNRELATED], [row["post"]], [row["summary"]]) == pytest.approx(
        [rouge_only.rouge_term(UNRELATED, row["summary"])]
    )
    with pytest.raises(ValueError, match="without a reference"):
        rouge_only([UNRELATED], [row["post"]], [None])


# ------------------------------------------------------------------------------------ invalid arguments


@pytest.mark.parametrize(
    "weights",
    [(-0.1, 0.3, 0.2), (0.5, -1.0, 0.2), (0.5, 0.3, -0.01), (0.0, 0.0, 0.0)],
)
def test_invalid_weights_raise(weights: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        SummaryQualityScorer(*weights)


@pytest.mark.parametrize(("min_words", "max_words"), [(0, 30), (-3, 30), (31, 30), (10, 5)])
def test_invalid_bounds_raise(min_words: int, max_words: int) -> None:
    with pytest.raises(ValueError, match=rf"0 < min_words <= max_words, got {min_words} and {max_words}"):
        SummaryQualityScorer(min_words=min_words, max_words=max_words)


def test_empty_batch_gives_empty_list(scorer: SummaryQualityScorer) -> None:
    assert scorer([], [], []) == []
