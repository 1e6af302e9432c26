"""Tests of the few-shot LM sentiment scorer (textgym.scorers.sentiment_lm) with its default model (Gemma 3 270M).

The model is slow on CPU, so the default scorer is built once per module and the tests share its outputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from textgym.error import UnknownNameError
from textgym.scorers.sentiment_lm import (
    CALIBRATION_SET,
    FEW_SHOT_EXAMPLES,
    FEW_SHOT_EXAMPLES_V1,
    PREFIX,
    LMSentimentScorer,
)
from textgym.tasks.base import embedded_data

# Written for these tests; none is in the data files, the few-shot prompt or the calibration set.
POSITIVE = [
    "An absolute delight from start to finish, funny, warm and beautifully acted.",
    "I loved every minute of this wonderful film and will recommend it to all my friends.",
    "A brilliant, uplifting story with a superb cast and a gorgeous score.",
    "Easily the best movie I have seen this year; it left me smiling for days.",
    "Charming, clever and heartfelt, a true masterpiece.",
]
NEGATIVE = [
    "A boring, ugly mess with terrible acting and a story that makes no sense.",
    "I hated every minute of this awful film and want my money back.",
    "The worst movie I have seen in years, dull, stupid and painfully long.",
    "Lazy writing, awful dialogue and a cast that clearly did not care.",
    "A tedious, miserable disaster that I would not wish on anyone.",
]
TEXTS = POSITIVE + NEGATIVE


@pytest.fixture(scope="module")
def scorer() -> LMSentimentScorer:
    return LMSentimentScorer()


@pytest.fixture(scope="module")
def calibrated() -> LMSentimentScorer:
    return LMSentimentScorer(calibrate=True)


@pytest.fixture(scope="module")
def scores(scorer: LMSentimentScorer) -> np.ndarray:
    return np.asarray(scorer(TEXTS))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_test_sentences_are_not_in_prompt_calibration_or_data() -> None:
    prompt_texts = {text for text, _ in FEW_SHOT_EXAMPLES + FEW_SHOT_EXAMPLES_V1 + CALIBRATION_SET}
    data_texts = set()
    for name in ("sentiment_labelled.jsonl", "sentiment_labelled_hard.jsonl", "sentiment_prompts.jsonl"):
        with open(embedded_data(name), encoding="utf-8") as handle:
            data_texts |= {json.loads(line)["text"] for line in handle if line.strip()}
    assert not set(TEXTS) & (prompt_texts | data_texts)
    assert not prompt_texts & data_texts  # no shot or calibration sentence is one the scorer is measured on


def test_the_default_prompt_is_the_v2_shots_and_the_v1_shots_are_one_argument_away(scorer) -> None:
    assert scorer.shots == FEW_SHOT_EXAMPLES and len(FEW_SHOT_EXAMPLES) == 10
    assert scorer.prefix == PREFIX and all(f"Review: {text}\n" in PREFIX for text, _ in FEW_SHOT_EXAMPLES)
    assert scorer.bias == 0.0  # uncalibrated by default
    old = LMSentimentScorer(shots="v1")
    assert old.shots == FEW_SHOT_EXAMPLES_V1 and "Review: " + FEW_SHOT_EXAMPLES_V1[0][0] in old.prefix
    mine = LMSentimentScorer(shots=[("a delight", "positive"), ("a bore", "negative")])
    assert mine.prefix == "Review: a delight\nSentiment: positive\n\nReview: a bore\nSentiment: negative\n\n"
    with pytest.raises(UnknownNameError, match="v2"):
        LMSentimentScorer(shots="v3")
    with pytest.raises(ValueError, match="neutral"):
        LMSentimentScorer(shots=[("fine", "neutral")])


def test_positive_scores_above_negative(scores: np.ndarray) -> None:
    positive, negative = scores[: len(POSITIVE)], scores[len(POSITIVE) :]
    assert positive.mean() - negative.mean() > 0.5
    assert (positive > 0.5).all()
    assert (negative < 0.5).all()


def test_outputs_are_probabilities(scorer: LMSentimentScorer, scores: np.ndarray) -> None:
    assert scores.shape == (len(TEXTS),)
    assert ((scores >= 0) & (scores <= 1)).all()
    odd = scorer(["", "   ", "🙂🙂🙂 ¡Qué película! 映画", "ok"])
    assert len(odd) == 4
    assert all(type(value) is float and 0.0 <= value <= 1.0 for value in odd)
    assert scorer([]) == []


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def test_calibration_shifts_the_margin_by_the_bias(
    scorer: LMSentimentScorer, calibrated: LMSentimentScorer, scores: np.ndarray
) -> None:
    assert scorer.bias == 0.0
    assert calibrated.bias != 0.0
    np.testing.assert_allclose(scores[:3], _sigmoid(scorer.margins(TEXTS[:3])), rtol=0, atol=1e-6)
    shifted = np.asarray(calibrated(TEXTS[:3]))
    np.testing.assert_allclose(_logit(shifted), _logit(scores[:3]) - calibrated.bias, rtol=0, atol=1e-3)


def test_batch_equals_one_at_a_time(scorer: LMSentimentScorer, scores: np.ndarray) -> None:
    # TEXTS differ in length, so the batch is left-padded; one at a time nothing is.
    assert len({len(scorer.judge.query_ids(text)) for text in TEXTS}) > 3
    single = np.array([scorer([text])[0] for text in TEXTS])
    np.testing.assert_allclose(scores, single, rtol=0, atol=1e-4)
    assert np.ptp(scores) > 0.5  # The texts differ, so a batch that mixed rows up would show.


def test_long_text_is_cut_to_its_last_tokens(scorer: LMSentimentScorer) -> None:
    tokenizer = scorer.judge.tokenizer
    tail = "A warm, wonderful film that I loved."
    tail_ids = tokenizer(" " + tail, add_special_tokens=False).input_ids
    long = "Terrible, boring, awful mess of a film. " * 4 + tail
    cut = LMSentimentScorer(max_text_tokens=len(tail_ids))
    assert len(tokenizer(long, add_special_tokens=False).input_ids) > 2 * cut.max_text_tokens
    # The cut keeps exactly the tail's tokens after "Review:".
    assert cut.judge.query_ids(long) == cut.judge.query_ids(tail)
    head = tokenizer("Review:", add_special_tokens=False).input_ids
    assert cut.judge.query_ids(long)[len(head) : len(head) + len(tail_ids)] == tail_ids
    long_score, tail_score = cut([long]), cut([tail])
    assert long_score == pytest.approx(tail_score, abs=1e-6)
    # Without the cut the negative opening counts, so the cut made a difference.
    assert abs(scorer([long])[0] - tail_score[0]) > 1e-3


def test_query_is_bounded_for_very_long_text(scorer: LMSentimentScorer) -> None:
    tokenizer = scorer.judge.tokenizer
    extra = len(tokenizer("Review:", add_special_tokens=False).input_ids)
    extra += len(tokenizer("\nSentiment:", add_special_tokens=False).input_ids)
    ids = scorer.judge.query_ids("word " * 5000)
    assert len(ids) == scorer.max_text_tokens + extra


@pytest.mark.slow
def test_accuracy_on_labelled_set(scorer: LMSentimentScorer) -> None:
    with open(embedded_data("sentiment_labelled.jsonl"), encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    assert len(rows) >= 200
    predicted = np.asarray(scorer([row["text"] for row in rows])) > 0.5
    truth = np.array([row["label"] == "positive" for row in rows])
    assert (predicted == truth).mean() >= 0.9


@pytest.mark.slow
def test_bias_is_mean_margin_of_calibration_set(calibrated: LMSentimentScorer) -> None:
    expected = calibrated.margins([text for text, _ in CALIBRATION_SET]).mean()
    assert calibrated.bias == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_bfloat16_weights_give_the_float32_probabilities_within_0_05(scores: np.ndarray) -> None:
    half = LMSentimentScorer(dtype="bfloat16")
    assert next(half.judge.model.parameters()).dtype == torch.bfloat16
    got = np.asarray(half(TEXTS))
    assert np.abs(got - scores).max() < 0.05  # measured: 0.01
    assert ((got > 0.5) == (scores > 0.5)).all()
