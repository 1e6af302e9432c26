"""Tests of ClassifierScorer (textgym.scorers.hf_classifier) with a tiny random Llama classifier saved to disk.

The model is built from a config (no download) and uses the real default tokenizer, so the tests cover loading,
padding and batching as a real classifier would go through them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, LlamaForSequenceClassification

from tests.tiny_model import tiny_llama_config
from textgym.error import ModelLoadError, UnknownNameError
from textgym.models import load_tokenizer
from textgym.scorers.hf_classifier import ClassifierScorer
from textgym.tasks import PromptItem, get_scorer

TEXTS = [
    "What a wonderful film.",
    "Terrible.",
    "The plot drags on and on, and by the end I no longer cared about any of the characters at all.",
    "",
    "Ünïcödé and emoji 🙂 work too",
]


def _save_classifier(folder: Path, tokenizer, problem_type: str | None = None) -> Path:
    torch.manual_seed(0)
    config = tiny_llama_config(
        tokenizer,
        initializer_range=0.5,  # Large random weights, so the probabilities differ clearly between texts.
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        bos_token_id=tokenizer.bos_token_id,
        problem_type=problem_type,
    )
    model = LlamaForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_classifier(tmp_path_factory.mktemp("classifier"), load_tokenizer())


@pytest.fixture(scope="module")
def multi_label_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_classifier(tmp_path_factory.mktemp("multi"), load_tokenizer(), "multi_label_classification")


def _direct_logits(folder: Path, texts: list[str]) -> torch.Tensor:
    """Logits of each text on its own (no padding), from a separately loaded copy of the model."""
    tokenizer = load_tokenizer()
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")
            if ids.input_ids.shape[1] == 0:  # The classifier needs one token; the scorer's batch has padding.
                ids = tokenizer(tokenizer.pad_token, return_tensors="pt")
            rows.append(model(**ids).logits[0].double())
    return torch.stack(rows)


def test_single_label_is_softmax(folder: Path) -> None:
    scorer = ClassifierScorer(str(folder), label="positive", batch_size=2)  # Chunks of 2, 2 and 1.
    assert scorer.label_index == 1
    assert not scorer.multi_label
    values = scorer(TEXTS)
    assert len(values) == len(TEXTS)
    assert all(type(value) is float and 0.0 <= value <= 1.0 for value in values)
    logits = _direct_logits(folder, TEXTS[:3] + TEXTS[4:])
    expected = logits.softmax(-1)[:, 1].numpy()
    np.testing.assert_allclose(values[:3] + values[4:], expected, rtol=0, atol=1e-5)
    assert np.ptp(values) > 0.05  # The texts give different probabilities, so a row mix-up would show.


def test_other_label_is_complement(folder: Path) -> None:
    positive = ClassifierScorer(str(folder), label="POSITIVE")(TEXTS)
    negative = ClassifierScorer(str(folder), label="Negative")(TEXTS)
    np.testing.assert_allclose(np.add(positive, negative), 1.0, rtol=0, atol=1e-9)


def test_batch_equals_one_at_a_time(folder: Path) -> None:
    scorer = ClassifierScorer(str(folder), label="positive", batch_size=8)
    texts = TEXTS[:3] + TEXTS[4:]  # An empty text alone has no token at all (see the report).
    single = [scorer([text])[0] for text in texts]
    np.testing.assert_allclose(scorer(texts), single, rtol=0, atol=1e-5)
    assert scorer([]) == []


def test_multi_label_is_sigmoid(multi_label_folder: Path) -> None:
    scorer = ClassifierScorer(str(multi_label_folder), label="positive", batch_size=2)
    assert scorer.multi_label
    texts = TEXTS[:3]
    values = scorer(texts)
    logits = _direct_logits(multi_label_folder, texts)
    np.testing.assert_allclose(values, logits.sigmoid()[:, 1].numpy(), rtol=0, atol=1e-5)
    # Softmax would make the two labels sum to 1; sigmoid per label does not.
    negative = ClassifierScorer(str(multi_label_folder), label="negative")(texts)
    assert np.abs(np.add(values, negative) - 1.0).max() > 0.01


def test_tokenizer_without_pad_token(tmp_path: Path) -> None:
    tokenizer = copy.deepcopy(load_tokenizer())  # The shared tokenizer must not be modified.
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    folder = _save_classifier(tmp_path, tokenizer)
    assert AutoModelForSequenceClassification.from_pretrained(folder).config.pad_token_id is None
    scorer = ClassifierScorer(str(folder), label="positive")
    assert scorer.tokenizer.pad_token == tokenizer.eos_token
    assert scorer.model.config.pad_token_id == scorer.tokenizer.pad_token_id
    assert load_tokenizer().pad_token is not None
    values = scorer(TEXTS[:3])
    expected = _direct_logits(folder, TEXTS[:3]).softmax(-1)[:, 1].numpy()
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)


def test_unknown_label_lists_valid_labels(folder: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown label 'POSITIV'\. Did you mean 'POSITIVE'\?") as info:
        ClassifierScorer(str(folder), label="POSITIV")
    assert "Valid labels: NEGATIVE, POSITIVE." in str(info.value)
    with pytest.raises(UnknownNameError, match="Valid labels: NEGATIVE, POSITIVE"):
        ClassifierScorer(str(folder), label="toxic")


def test_missing_path_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # Read at import, so patch it too.
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match=r"Could not load the classifier '.*no-such-model'"):
        ClassifierScorer(str(missing), label="positive")
    with pytest.raises(ModelLoadError, match="Could not load the classifier 'nobody/no-such-model'"):
        ClassifierScorer("nobody/no-such-model", label="positive")


def test_folder_without_model_raises(tmp_path: Path) -> None:
    load_tokenizer().save_pretrained(tmp_path)  # A tokenizer but no model.
    with pytest.raises(ModelLoadError, match="sequence-classification model"):
        ClassifierScorer(str(tmp_path), label="positive")


# ------------------------------------------------------------------------------------ through the tasks


def test_sentiment_task_scores_review_with_classifier(folder: Path) -> None:
    items = [PromptItem("The film was"), PromptItem("I left the cinema"), PromptItem("")]
    completions = [" a joy.", " feeling cheated and bored.", "Fine."]
    score = get_scorer("sentiment", str(folder), {"label": "POSITIVE"})
    reviews = [item.source + text for item, text in zip(items, completions, strict=True)]
    expected = ClassifierScorer(str(folder), label="positive")(reviews)
    values = score(items, completions)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9)
    assert get_scorer("sentiment", str(folder), {"label": "POSITIVE"}) is score  # Built once.


def test_detox_task_scores_one_minus_label_of_completion(folder: Path) -> None:
    items = [PromptItem("You are such a"), PromptItem("Stop posting, you")]
    completions = [" kind person.", " absolute idiot."]
    score = get_scorer("detox", str(folder), {"label": "POSITIVE"})
    expected = 1.0 - np.asarray(ClassifierScorer(str(folder), label="positive")(completions))
    np.testing.assert_allclose(score(items, completions), expected, rtol=0, atol=1e-9)
    # The opening is not scored: other openings give the same scores.
    other = [PromptItem("Hello"), PromptItem("Good morning")]
    np.testing.assert_allclose(score(other, completions), expected, rtol=0, atol=1e-9)


def test_task_default_label_must_exist(folder: Path) -> None:
    # detox defaults to the label "toxic", which this classifier does not have.
    with pytest.raises(UnknownNameError, match="Valid labels: NEGATIVE, POSITIVE"):
        get_scorer("detox", str(folder))


def test_bfloat16_weights_give_the_float32_probabilities_within_0_05(folder: Path) -> None:
    full = ClassifierScorer(str(folder), label="positive")
    half = ClassifierScorer(str(folder), label="positive", dtype="bfloat16", batch_size=2)
    assert half.model.dtype == torch.bfloat16 and half.model.device.type == "cpu"
    expected, got = np.asarray(full(TEXTS)), np.asarray(half(TEXTS))
    assert got.dtype == np.float64 and np.abs(got - expected).max() < 0.05
    assert not np.array_equal(got, expected)


def test_the_task_scorer_takes_device_and_dtype_and_scorer_kwargs_win(folder: Path) -> None:
    items, reviews = [PromptItem("")] * len(TEXTS), list(TEXTS)
    half = get_scorer("sentiment", str(folder), {"label": "positive"}, dtype="bfloat16")
    expected = ClassifierScorer(str(folder), label="positive", dtype="bfloat16")(reviews)
    assert half(items, reviews) == expected
    kept = get_scorer("sentiment", str(folder), {"label": "positive", "dtype": "float32"}, dtype="bfloat16")
    assert kept(items, reviews) == ClassifierScorer(str(folder), label="positive")(reviews)
    detox = get_scorer("detox", str(folder), {"label": "positive"}, dtype="bfloat16")
    assert detox(items, reviews) == [1.0 - value for value in expected]
