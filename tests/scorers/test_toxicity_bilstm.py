"""Tests of the PyTorch port of the ``toxic-comment-classifier==0.3.0`` BiLSTM (textgym.scorers.toxicity_bilstm)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from textgym.error import MissingPackageError, ModelLoadError, SettingsError, UnknownNameError
from textgym.scorers import toxicity_bilstm
from textgym.scorers.toxicity_bilstm import (
    TOXICITY_LABELS,
    KerasWordTokenizer,
    ToxicityBiLSTM,
    ToxicityScorer,
    load_toxicity_bilstm,
)

_SPEC = importlib.util.find_spec("toxic_classifier")
pytestmark = pytest.mark.skipif(_SPEC is None, reason="needs: pip install --no-deps toxic-comment-classifier==0.3.0")

TEXTS = [
    "You are a stupid idiot and I hate you.",
    "Thank you for your help.",
    "Hello, WORLD!! foo\tbar zzzzqqq",
    "word " * 150,
    "",
    "F*** off you moron!!!",
    "I will kill you",
    "Nice article; the 2nd section's sources (are they reliable?) need checking.",
    "Please stop vandalising the page about the 1998 World Cup, or you will be blocked.",
    "ALL CAPS SHOUTING ABOUT NOTHING IN PARTICULAR",
    " ".join(f"line{i}\nthe cat sat on the mat" for i in range(40)),
]

# Outputs of the real Keras 3.15.1 model (torch backend, the package's architecture, tokenizer and weights) on
# TEXTS[:8], rounded to 5 decimals.
KERAS_REFERENCE = np.array(
    [
        [0.99683, 0.20445, 0.86983, 0.03045, 0.92625, 0.13482],
        [0.02886, 0.00026, 0.00694, 0.00036, 0.00941, 0.00063],
        [0.10029, 0.00420, 0.04582, 0.00234, 0.05152, 0.00870],
        [0.00965, 0.00024, 0.00447, 0.00019, 0.00414, 0.00127],
        [0.06753, 0.00237, 0.02938, 0.00101, 0.01536, 0.00401],
        [0.98188, 0.32939, 0.86755, 0.06634, 0.82784, 0.10648],
        [0.77113, 0.08305, 0.21424, 0.18012, 0.38407, 0.14230],
    ]
)


@pytest.fixture(scope="module")
def folder() -> Path:
    return Path(_SPEC.submodule_search_locations[0])


@pytest.fixture(scope="module")
def loaded(folder: Path) -> tuple[ToxicityBiLSTM, KerasWordTokenizer]:
    return load_toxicity_bilstm(folder)


@pytest.fixture(scope="module")
def scorer() -> ToxicityScorer:
    return ToxicityScorer("toxic", batch_size=4)


# ------------------------------------------------------------------------------------ independent numpy model


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_lstm(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras LSTM over (N, T, D) returning all states (N, T, U); gates in Keras order i, f, c, o."""
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.zeros((batch, steps, units))
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[:, t] = h
    return out


def _numpy_forward(weights_file: Path, ids: np.ndarray) -> np.ndarray:
    with h5py.File(weights_file, "r") as f:
        w = {name: np.asarray(f[name], dtype=np.float64) for name in _dataset_names(f)}
    x = w["layers/embedding/vars/0"][ids]
    fwd = "layers/bidirectional/forward_layer/cell/vars/"
    bwd = "layers/bidirectional/backward_layer/cell/vars/"
    forward = _numpy_lstm(x, w[fwd + "0"], w[fwd + "1"], w[fwd + "2"])
    backward = _numpy_lstm(x[:, ::-1], w[bwd + "0"], w[bwd + "1"], w[bwd + "2"])[:, ::-1]
    pooled = np.concatenate([forward, backward], axis=-1).max(axis=1)
    hidden = np.maximum(pooled @ w["layers/dense/vars/0"] + w["layers/dense/vars/1"], 0.0)
    return _sigmoid(hidden @ w["layers/dense_1/vars/0"] + w["layers/dense_1/vars/1"])


def _dataset_names(f: h5py.File) -> list[str]:
    names: list[str] = []
    f["layers"].visititems(lambda name, obj: names.append(f"layers/{name}") if isinstance(obj, h5py.Dataset) else None)
    return names


def test_torch_model_matches_numpy_forward(folder: Path, loaded: tuple[ToxicityBiLSTM, KerasWordTokenizer]) -> None:
    model, tokenizer = loaded
    ids = tokenizer.encode_batch(TEXTS)
    rng = np.random.default_rng(0)
    ids = np.concatenate([ids, rng.integers(0, 20000, size=(2, 100))])  # Random ids reach rare embedding rows.
    expected = _numpy_forward(folder / "model" / "model.weights.h5", ids)
    with torch.inference_mode():
        actual = model(torch.from_numpy(ids)).numpy()
    assert actual.shape == (len(ids), 6)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    assert expected.std(axis=0).min() > 1e-3  # The texts are varied enough to exercise every output.


def test_matches_real_keras_outputs(scorer: ToxicityScorer) -> None:
    np.testing.assert_allclose(scorer.predict(TEXTS[: len(KERAS_REFERENCE)]), KERAS_REFERENCE, atol=2e-5)


def test_model_is_in_eval_mode_and_float32(loaded: tuple[ToxicityBiLSTM, KerasWordTokenizer]) -> None:
    model, _ = loaded
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.count_nonzero(model.lstm.bias_hh_l0) == 0
    assert torch.count_nonzero(model.lstm.bias_ih_l0) > 0


# ------------------------------------------------------------------------------------ reference scores


def test_reference_scores(scorer: ToxicityScorer) -> None:
    toxic, polite = scorer(["You are a stupid idiot and I hate you.", "Thank you for your help."])
    assert toxic > 0.9
    assert polite < 0.05
    assert toxic == pytest.approx(0.9968, abs=5e-4)


def test_predict_shape_and_dtype(scorer: ToxicityScorer) -> None:
    probabilities = scorer.predict(TEXTS)
    assert probabilities.shape == (len(TEXTS), len(TOXICITY_LABELS))
    assert probabilities.dtype == np.float64
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert scorer.predict([]).shape == (0, 6)


def test_call_returns_chosen_label(scorer: ToxicityScorer) -> None:
    insult = ToxicityScorer("insult")
    probabilities = scorer.predict(TEXTS)
    assert insult(TEXTS) == pytest.approx(probabilities[:, TOXICITY_LABELS.index("insult")].tolist())
    assert scorer(TEXTS) == pytest.approx(probabilities[:, 0].tolist())
    assert all(type(value) is float for value in scorer(TEXTS))


def test_batch_equals_one_at_a_time(scorer: ToxicityScorer) -> None:
    batched = scorer.predict(TEXTS)  # batch_size=4 with 11 texts: three chunks, the last one partial.
    single = np.stack([scorer.predict([text])[0] for text in TEXTS])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    assert len({round(value, 6) for value in batched[:, 0]}) == len(TEXTS)  # The rows are not all alike.


def test_skipping_the_common_padding_gives_what_every_column_gives(
    loaded: tuple[ToxicityBiLSTM, KerasWordTokenizer],
) -> None:
    """forward skips the forward direction's steps over columns that are padding in every row; logits reads all."""
    model, tokenizer = loaded
    ids = torch.from_numpy(tokenizer.encode_batch(TEXTS))  # lengths 0 to 100 words
    for rows in (ids, ids[[1, 6]], ids[[4]], ids[[3]]):  # mixed; short ones; all padding; no padding
        with torch.inference_mode():
            skipped = model(rows)
        with torch.no_grad():
            every = torch.sigmoid(model.logits(model.embedding(rows)))
        np.testing.assert_allclose(skipped.numpy(), every.numpy(), rtol=0, atol=1e-6)


def test_the_padding_states_follow_a_change_of_the_weights(loaded: tuple[ToxicityBiLSTM, KerasWordTokenizer]) -> None:
    model = ToxicityBiLSTM()
    model.load_state_dict(loaded[0].state_dict())
    model.eval()
    ids = torch.from_numpy(loaded[1].encode_batch(TEXTS[:2]))
    with torch.inference_mode():
        before = model(ids)
    with torch.no_grad():
        model.embedding.weight[0] += 0.5  # the padding id's embedding
        every = torch.sigmoid(model.logits(model.embedding(ids)))
    with torch.inference_mode():
        after = model(ids)
    assert (after - before).abs().max() > 1e-3
    np.testing.assert_allclose(after.numpy(), every.numpy(), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ tokenizer


# ------------------------------------------------------------------------------------ errors


def test_unknown_label_raises() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'toxic'"):
        ToxicityScorer("toxc")


def test_bad_batch_size_raises() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ToxicityScorer(batch_size=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_a_cuda_device_without_cuda_raises_before_loading() -> None:
    with pytest.raises(SettingsError, match="needs CUDA"):
        ToxicityScorer(device="cuda")


def test_the_scorer_runs_in_float32_on_its_device(scorer: ToxicityScorer) -> None:
    weights = {(p.dtype, p.device.type) for p in scorer.model.parameters()}
    assert weights == {(torch.float32, "cpu")}


def test_missing_package_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toxicity_bilstm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match="pip install --no-deps toxic-comment-classifier==0.3.0"):
        load_toxicity_bilstm()
    with pytest.raises(MissingPackageError):
        ToxicityScorer()


def test_folder_without_files_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model.weights.h5"):
        load_toxicity_bilstm(tmp_path)
