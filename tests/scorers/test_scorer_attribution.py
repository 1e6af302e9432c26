"""Tests of the scorers' ``attribution`` methods (per-character weights for the attention-based credit).

Real models: the default SmolLM2 sentiment scorer, the toxicity BiLSTM, the MiniLM summary scorer, and two
classifiers saved once per module (a tiny config-built Llama, which pools its last token, and MiniLM's real BERT
body with a fresh head, which pools [CLS]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaForSequenceClassification

from tests.tiny_model import tiny_llama_config
from textgym.models import load_tokenizer, package_folder
from textgym.scorers.attribution import eager_attention, spread_over_characters
from textgym.scorers.hf_classifier import ClassifierScorer
from textgym.scorers.sentiment_lm import LMSentimentScorer
from textgym.scorers.summary_quality import SummaryQualityScorer
from textgym.scorers.toxicity_bilstm import ToxicityScorer

PROMPT = "Write a short review: "
COMPLETIONS = [
    "The food was terrible.",
    "  I   loved this   wonderful film, truly!  ",
    "You are an idiot and I hate this weather.",
    "Ünïcödé and emoji 🙂 work too",
    "Dull.",
]
TEXTS = [PROMPT + completion for completion in COMPLETIONS]
RANGES = [(len(PROMPT), len(text)) for text in TEXTS]
"""Each text is a prompt and its completion; the attributed range is the completion's part."""


def _mass(text: str, weights: np.ndarray, word: str, start: int = 0) -> float:
    """Total weight on the first occurrence of ``word`` at or after ``start`` (text positions)."""
    first = text.index(word, start) - start
    return float(weights[first : first + len(word)].sum())


def _check_contract(scorer, texts: list[str], ranges: list[tuple[int, int]]) -> list[np.ndarray]:
    """Length, sign, sum, empty and whitespace ranges, and batched == one by one; returns the batched weights."""
    weights = scorer.attribution(texts, ranges)
    assert len(weights) == len(texts)
    for text, (start, end), row in zip(texts, ranges, weights, strict=True):
        assert row.dtype == np.float64 and row.shape == (end - start,)
        assert (row >= 0).all()
        assert np.isclose(row.sum(), 1.0), text
        assert not row[[i for i in range(end - start) if text[start + i].isspace()]].any()  # spaces get nothing
    empty = scorer.attribution(texts, [(start, start) for start, _ in ranges])
    assert all(row.shape == (0,) for row in empty)
    spaces = [text for text in texts if "   " in text]
    blank = scorer.attribution(spaces, [(text.index("   "), text.index("   ") + 3) for text in spaces])
    assert all(row.shape == (3,) and not row.any() for row in blank)
    for text, (start, end), row in zip(texts, ranges, weights, strict=True):
        np.testing.assert_allclose(scorer.attribution([text], [(start, end)])[0], row, atol=1e-5)
    return weights


def test_spread_over_characters_trims_spaces_renormalises_and_spreads() -> None:
    text = "ab cd ef"
    spans = [(0, 0), (0, 2), (2, 5), (5, 8)]  # a special token, "ab", " cd", " ef"
    weights = spread_over_characters(text, spans, [9.0, 1.0, 2.0, 1.0], 1, 7)  # range "b cd e"
    np.testing.assert_allclose(weights, [1 / 4, 0, 1 / 4, 1 / 4, 0, 1 / 4])
    assert not spread_over_characters(text, spans, [1.0, 1.0, 1.0, 1.0], 2, 3).any()  # a lone space
    assert not spread_over_characters(text, spans, [1.0, 0.0, 0.0, 0.0], 0, 8).any()  # no weight on the range


@pytest.mark.parametrize(
    ("texts", "ranges", "message"),
    [
        (["You idiot.", "Hi."], [(0, 3)], "one .start, end. range per text"),
        (["You idiot."], [(3, 1)], r"Range 0 is \(3, 1\), outside its text of 10 characters"),
        (["You idiot."], [(-1, 2)], "0 <= start <= end <= len"),
        (["You idiot."], [(0, 30)], "outside its text"),
    ],
)
def test_bad_ranges_are_refused(toxicity: ToxicityScorer, texts, ranges, message) -> None:
    with pytest.raises(ValueError, match=message):
        toxicity.attribution(texts, ranges)


# --------------------------------------------------------------------------------------------------- sentiment


@pytest.fixture(scope="module")
def sentiment() -> LMSentimentScorer:
    return LMSentimentScorer()


def test_sentiment_attribution_contract(sentiment: LMSentimentScorer) -> None:
    _check_contract(sentiment, TEXTS, RANGES)


def test_sentiment_query_spans_are_the_query_ids_and_point_at_the_text(sentiment: LMSentimentScorer) -> None:
    judge = sentiment.judge
    for text in TEXTS:
        ids, spans = judge.query_spans(text)
        assert ids == judge.query_ids(text)
        spans = [(first, last) for first, last in spans if first < last]  # the text's tokens, in order
        assert spans == sorted(spans)
        covered = {i for first, last in spans for i in range(first, last) if not text[i].isspace()}
        assert covered == {i for i, character in enumerate(text) if not character.isspace()}


def test_sentiment_attends_to_the_sentiment_word(sentiment: LMSentimentScorer) -> None:
    text = "The food was terrible."
    (weights,) = sentiment.attribution([text], [(0, len(text))])
    assert _mass(text, weights, "terrible") > _mass(text, weights, "The")


def test_sentiment_scores_and_attention_implementation_unchanged(sentiment: LMSentimentScorer) -> None:
    implementation = sentiment.judge.model.config._attn_implementation
    before = sentiment(TEXTS)
    sentiment.attribution(TEXTS, RANGES)
    assert sentiment(TEXTS) == before
    assert sentiment.judge.model.config._attn_implementation == implementation


# --------------------------------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module", params=["llama", "bert"])
def classifier(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ClassifierScorer:
    folder = tmp_path_factory.mktemp(request.param)
    labels = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    torch.manual_seed(0)
    if request.param == "llama":  # pools the last non-pad token
        tokenizer = load_tokenizer()
        config = tiny_llama_config(tokenizer, initializer_range=0.5, bos_token_id=tokenizer.bos_token_id, **labels)
        model = LlamaForSequenceClassification(config)
    else:  # a real BERT body, pooling [CLS]; the head is new, which the attention does not depend on
        source = Path(package_folder("minilm-l6-v2")) / "model"
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2, **labels)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return ClassifierScorer(str(folder), "POSITIVE", batch_size=2)


def test_classifier_attribution_contract(classifier: ClassifierScorer) -> None:
    _check_contract(classifier, TEXTS, RANGES)


def test_classifier_reads_the_pooled_position(classifier: ClassifierScorer) -> None:
    """The weights are the head-mean last-layer row of the pooled token (last for Llama, [CLS] for BERT)."""
    text = TEXTS[2]
    encoded = classifier.tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    spans = encoded.pop("offset_mapping")[0].tolist()
    with torch.no_grad(), eager_attention(classifier.model):
        attention = classifier.model(**encoded, output_attentions=True).attentions[-1][0].mean(0)
    pooled = -1 if isinstance(classifier.model, LlamaForSequenceClassification) else 0
    expected = spread_over_characters(text, spans, attention[pooled].double().numpy(), *RANGES[2])
    np.testing.assert_allclose(classifier.attribution([text], [RANGES[2]])[0], expected, atol=1e-6)


def test_classifier_scores_unchanged(classifier: ClassifierScorer) -> None:
    before = classifier(TEXTS)
    classifier.attribution(TEXTS, RANGES)
    assert classifier(TEXTS) == before
    assert classifier.model.config._attn_implementation == "sdpa"


# --------------------------------------------------------------------------------------------------- toxicity


@pytest.fixture(scope="module")
def toxicity() -> ToxicityScorer:
    return ToxicityScorer("toxic", batch_size=2)


def test_toxicity_attribution_contract(toxicity: ToxicityScorer) -> None:
    _check_contract(toxicity, TEXTS, RANGES)


def test_toxicity_spans_match_encode_and_truncation_drops_early_words(toxicity: ToxicityScorer) -> None:
    for text in TEXTS:
        ids, spans = toxicity.tokenizer.encode_with_spans(text)
        assert ids == toxicity.tokenizer.encode(text)
        assert [toxicity.tokenizer.word_index[text[a:b].lower()] for a, b in spans] == ids
    words = [word for word in toxicity.tokenizer.word_index if word.isalpha()][:150]
    long = " ".join(words)  # 150 known words: only the last 100 are read
    (weights,) = toxicity.attribution([long], [(0, len(long))])
    cut = long.index(words[50])
    assert not weights[:cut].any() and np.isclose(weights[cut:].sum(), 1.0)


def test_toxicity_saliency_is_on_the_insult(toxicity: ToxicityScorer) -> None:
    text = "You are an idiot and I hate this weather."
    (weights,) = toxicity.attribution([text], [(0, len(text))])
    assert _mass(text, weights, "idiot") > _mass(text, weights, "weather")


def test_toxicity_scores_model_and_gradients_unchanged(toxicity: ToxicityScorer) -> None:
    before = toxicity(TEXTS)
    toxicity.attribution(TEXTS, RANGES)
    assert toxicity(TEXTS) == before
    assert not toxicity.model.training
    assert all(parameter.grad is None for parameter in toxicity.model.parameters())


# --------------------------------------------------------------------------------------------------- summary


@pytest.fixture(scope="module")
def summary() -> SummaryQualityScorer:
    return SummaryQualityScorer()


def test_summary_attribution_contract(summary: SummaryQualityScorer) -> None:
    _check_contract(summary, TEXTS, RANGES)


def test_summary_attends_to_content_words(summary: SummaryQualityScorer) -> None:
    text = "The cat sat on the mat."
    (weights,) = summary.attribution([text], [(0, len(text))])
    assert _mass(text, weights, "cat") > _mass(text, weights, "the")
    assert _mass(text, weights, "mat") > _mass(text, weights, "on")


def test_summary_scores_unchanged(summary: SummaryQualityScorer) -> None:
    posts = ["I reviewed a restaurant and a film, and wrote about the weather."] * len(TEXTS)
    before = summary(TEXTS, posts, [None] * len(TEXTS))
    summary.attribution(TEXTS, RANGES)
    assert summary(TEXTS, posts, [None] * len(TEXTS)) == before
    assert summary.embedder[0].auto_model.config._attn_implementation == "sdpa"
