"""A PyTorch port of the Jigsaw toxic-comment BiLSTM shipped in ``toxic-comment-classifier==0.3.0``.

The PyPI package ``toxic-comment-classifier`` ships a small Keras model trained on the Jigsaw toxic-comment data
set together with its Keras ``Tokenizer``. Its Python module imports TensorFlow, so this module never imports it:
it only locates the package's folder and reads two files from it,

* ``model/model.weights.h5``: the Keras 3 weights, read with h5py;
* ``model/tokenizer.pickle``: a pickled ``keras.preprocessing.text.Tokenizer``, read by
  :class:`~textgym.scorers.keras_tokenizer.KerasWordTokenizer` without Keras.

The network is::

    Input(100) -> Embedding(20000, 50) -> Bidirectional(LSTM(50, return_sequences=True))
    -> GlobalMaxPooling1D -> Dense(50, relu) -> Dropout(0.1) -> Dense(6, sigmoid)

and its six sigmoid outputs are the probabilities of :data:`TOXICITY_LABELS`. Texts are turned into word ids
exactly as Keras' ``Tokenizer.texts_to_sequences`` does, then padded and truncated at the front to 100 ids, as
Keras' ``pad_sequences`` does by default.

Install the weights with ``pip install --no-deps toxic-comment-classifier==0.3.0`` (``--no-deps`` keeps
TensorFlow out).

Example:
    >>> scorer = ToxicityScorer("toxic")
    >>> scorer(["You are a stupid idiot and I hate you.", "Thank you for your help."])  # doctest: +SKIP
    [0.997..., 0.004...]
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from textgym.devices import resolve_device
from textgym.error import MissingPackageError, ModelLoadError, unknown_name
from textgym.scorers.attribution import check_ranges, spread_over_characters
from textgym.scorers.keras_tokenizer import MAXLEN, KerasWordTokenizer

__all__ = [
    "INSTALL_COMMAND",
    "MAXLEN",
    "TOXICITY_LABELS",
    "KerasWordTokenizer",
    "ToxicityBiLSTM",
    "ToxicityScorer",
    "find_toxicity_model_folder",
    "load_toxicity_bilstm",
]

TOXICITY_LABELS: tuple[str, ...] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
"""The six Jigsaw labels, in the order of the model's outputs."""

VOCAB_SIZE = 20000
EMBEDDING_DIM = 50
LSTM_UNITS = 50
DENSE_UNITS = 50

PACKAGE = "toxic-comment-classifier==0.3.0"
MODULE = "toxic_classifier"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}"
"""The command that installs the weights without pulling in TensorFlow."""

WEIGHTS_FILE = Path("model") / "model.weights.h5"
TOKENIZER_FILE = Path("model") / "tokenizer.pickle"


# --------------------------------------------------------------------------------------------------- model


class ToxicityBiLSTM(nn.Module):
    """The Keras toxic-comment BiLSTM, in PyTorch.

    Args:
        vocab_size: Rows of the embedding table.
        embedding_dim: Width of the word embeddings.
        lstm_units: Units of each LSTM direction.
        dense_units: Units of the hidden dense layer.
        num_labels: Number of sigmoid outputs.
    """

    def __init__(
        self,
        vocab_size: int = VOCAB_SIZE,
        embedding_dim: int = EMBEDDING_DIM,
        lstm_units: int = LSTM_UNITS,
        dense_units: int = DENSE_UNITS,
        num_labels: int = len(TOXICITY_LABELS),
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, lstm_units, batch_first=True, bidirectional=True)
        self.hidden = nn.Linear(2 * lstm_units, dense_units)
        self.output = nn.Linear(dense_units, num_labels)
        self._padding: tuple | None = None  # (weights key, states over padding) of the forward direction

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Score padded word ids.

        On the CPU without gradients, the forward direction skips the columns that are padding in every row: its
        states there are the same for every text and computed once (the backward direction reads every column, as
        its states over the padding depend on the text). The result is that of :meth:`logits` on all columns.

        Args:
            ids: Long tensor of shape ``(N, T)`` (``T`` is 100 for the trained model), front-padded with 0.

        Returns:
            Probabilities of shape ``(N, num_labels)``.
        """
        if ids.device.type != "cpu" or torch.is_grad_enabled():
            return torch.sigmoid(self.logits(self.embedding(ids)))
        columns = torch.nonzero((ids != 0).any(dim=0))
        first = int(columns[0]) if len(columns) else ids.shape[1]  # columns before it are padding in every row
        hidden, cell, running_max = self._padding_states(ids.shape[1])
        embedded = self.embedding(ids)
        forward_max = running_max[first].expand(len(ids), -1)
        if first < ids.shape[1]:
            start = (
                hidden[first].expand(1, len(ids), -1).contiguous(),
                cell[first].expand(1, len(ids), -1).contiguous(),
            )
            states = self._direction(embedded[:, first:], start, "")[0]
            forward_max = torch.maximum(forward_max, states.max(dim=1).values)
        zeros = torch.zeros(1, len(ids), self.lstm.hidden_size, dtype=embedded.dtype)
        backward = self._direction(embedded.flip(1), (zeros, zeros), "_reverse")[0]
        pooled = torch.cat([forward_max, backward.max(dim=1).values], dim=1)
        return torch.sigmoid(self.output(torch.relu(self.hidden(pooled))))

    def _direction(
        self, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], suffix: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One direction of the LSTM (``""`` forward, ``"_reverse"`` backward) over ``inputs`` (N, T, E) from ``state``.

        Returns:
            Its outputs (N, T, units) and its last hidden and cell states (1, N, units).
        """
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        return torch.lstm(inputs, state, self._weights(suffix), True, 1, 0.0, False, False, True)

    def _weights(self, suffix: str) -> list[torch.Tensor]:
        """One direction's LSTM weights (``""`` forward, ``"_reverse"`` backward), in ``torch.lstm``'s order."""
        return [getattr(self.lstm, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def _padding_states(self, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forward direction's states over ``steps`` padding ids, kept until a weight changes.

        Returns:
            Its hidden and cell states after 0, 1, ..., ``steps`` padding ids, and the running max of the hidden
            states (-inf after none), each of shape ``(steps + 1, units)``.
        """
        weights = [self.embedding.weight, *self._weights("")]
        key = (steps, *((weight.data_ptr(), weight._version) for weight in weights))
        if self._padding is None or self._padding[0] != key:
            with torch.no_grad():
                pad = self.embedding.weight[:1].view(1, 1, -1)
                hidden = cell = torch.zeros(1, 1, self.lstm.hidden_size, dtype=pad.dtype)
                hiddens, cells = [hidden], [cell]
                for _ in range(steps):
                    _, hidden, cell = self._direction(pad, (hidden, cell), "")
                    hiddens.append(hidden)
                    cells.append(cell)
                hiddens, cells = torch.cat(hiddens).flatten(1), torch.cat(cells).flatten(1)
                running_max = torch.cat([torch.full_like(hiddens[:1], -torch.inf), hiddens[1:].cummax(dim=0).values])
            self._padding = (key, hiddens, cells, running_max)
        return self._padding[1:]

    def logits(self, embedded: torch.Tensor) -> torch.Tensor:
        """The pre-sigmoid outputs of embedded word ids.

        Args:
            embedded: The ``embedding`` of the ids, shape ``(N, T, embedding_dim)``.

        Returns:
            Logits of shape ``(N, num_labels)``.
        """
        states, _ = self.lstm(embedded)  # (N, T, 2 * units), padding included as Keras does.
        pooled = states.max(dim=1).values
        return self.output(torch.relu(self.hidden(pooled)))

    def load_keras_weights(self, path: str | Path) -> None:
        """Copy the weights of the Keras 3 ``model.weights.h5`` file into this module.

        Keras kernels are ``(input, output)`` and are transposed; the LSTM gate order (i, f, c, o) is torch's
        (i, f, g, o); Keras' single LSTM bias goes to ``bias_ih`` and ``bias_hh`` is zeroed.

        Args:
            path: The h5 file.

        Raises:
            ModelLoadError: The file cannot be read or lacks a weight, or a weight has the wrong shape.
        """
        import h5py

        def load(handle: h5py.File, name: str) -> torch.Tensor:
            if name not in handle:
                raise ModelLoadError(f"{str(path)!r} has no dataset {name!r}; is it the toxic-comment model?")
            return torch.from_numpy(np.asarray(handle[name], dtype=np.float32))

        def put(parameter: torch.Tensor, value: torch.Tensor, name: str) -> None:
            if parameter.shape != value.shape:
                raise ModelLoadError(
                    f"{str(path)!r}: {name!r} has shape {tuple(value.shape)}, expected {tuple(parameter.shape)}."
                )
            parameter.copy_(value)

        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise ModelLoadError(f"Could not read the Keras weights {str(path)!r}: {error}") from error
        with handle, torch.no_grad():
            put(self.embedding.weight, load(handle, "layers/embedding/vars/0"), "embedding")
            for suffix, direction in (("", "forward_layer"), ("_reverse", "backward_layer")):
                prefix = f"layers/bidirectional/{direction}/cell/vars"
                put(getattr(self.lstm, f"weight_ih_l0{suffix}"), load(handle, f"{prefix}/0").T, f"{prefix}/0")
                put(getattr(self.lstm, f"weight_hh_l0{suffix}"), load(handle, f"{prefix}/1").T, f"{prefix}/1")
                put(getattr(self.lstm, f"bias_ih_l0{suffix}"), load(handle, f"{prefix}/2"), f"{prefix}/2")
                getattr(self.lstm, f"bias_hh_l0{suffix}").zero_()
            for layer, group in ((self.hidden, "dense"), (self.output, "dense_1")):
                put(layer.weight, load(handle, f"layers/{group}/vars/0").T, f"layers/{group}/vars/0")
                put(layer.bias, load(handle, f"layers/{group}/vars/1"), f"layers/{group}/vars/1")


def find_toxicity_model_folder() -> Path:
    """Find the folder of the installed ``toxic_classifier`` package without importing it (it needs TensorFlow).

    Returns:
        The package's folder.

    Raises:
        MissingPackageError: The package is not installed.
    """
    spec = importlib.util.find_spec(MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingPackageError(
            f"The toxicity BiLSTM needs the weights of the {PACKAGE!r} package, which is not installed. "
            f"Install them with: {INSTALL_COMMAND} (--no-deps keeps TensorFlow out; it is not needed)."
        )
    return Path(locations[0])


def load_toxicity_bilstm(folder: str | Path | None = None) -> tuple[ToxicityBiLSTM, KerasWordTokenizer]:
    """Load the toxic-comment BiLSTM and its tokenizer.

    Args:
        folder: The ``toxic_classifier`` package folder (holding ``model/model.weights.h5`` and
            ``model/tokenizer.pickle``); defaults to the installed package's folder.

    Returns:
        The model, in eval mode with float32 weights on the CPU, and its tokenizer.

    Raises:
        MissingPackageError: ``folder`` is None and ``toxic-comment-classifier`` is not installed.
        ModelLoadError: The folder lacks the files, or they cannot be read.
    """
    folder = find_toxicity_model_folder() if folder is None else Path(folder)
    weights, tokenizer_file = folder / WEIGHTS_FILE, folder / TOKENIZER_FILE
    missing = [str(path) for path in (weights, tokenizer_file) if not path.is_file()]
    if missing:
        raise ModelLoadError(
            f"Missing toxicity model file(s): {', '.join(missing)}. Reinstall the package with: {INSTALL_COMMAND}"
        )
    tokenizer = KerasWordTokenizer.from_pickle(tokenizer_file)
    model = ToxicityBiLSTM()
    model.load_keras_weights(weights)
    model.to(torch.float32).eval()
    return model, tokenizer


# --------------------------------------------------------------------------------------------------- scorer


class ToxicityScorer:
    """Scores texts with the toxic-comment BiLSTM.

    Args:
        label: Which of :data:`TOXICITY_LABELS` :meth:`__call__` returns.
        batch_size: How many texts go through the model at once.
        device: Where the model runs (see :mod:`textgym.devices`). It runs in float32 on every device: it has
            1M weights, and a bfloat16 LSTM would round its 100 recurrent steps for no gain.

    Raises:
        UnknownNameError: ``label`` is not one of :data:`TOXICITY_LABELS`.
        ValueError: ``batch_size`` is below 1.
        MissingPackageError: ``toxic-comment-classifier`` is not installed.
        SettingsError: A device that this machine does not have.
    """

    def __init__(self, label: str = "toxic", batch_size: int = 64, device: str = "cpu") -> None:
        if label not in TOXICITY_LABELS:
            raise unknown_name("toxicity label", label, TOXICITY_LABELS)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.label = label
        self.label_index = TOXICITY_LABELS.index(label)
        self.batch_size = batch_size
        target = resolve_device(device)
        self.model, self.tokenizer = load_toxicity_bilstm()
        self.model.to(target)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of all six labels.

        Args:
            texts: The texts.

        Returns:
            A float64 array of shape ``(len(texts), 6)``, columns in the order of :data:`TOXICITY_LABELS`.
        """
        ids = self.tokenizer.encode_batch(texts)
        order = np.argsort((ids != 0).sum(axis=1), kind="stable")  # batches of similar length: less padding read
        device = self.model.embedding.weight.device
        probabilities = np.empty((len(ids), len(TOXICITY_LABELS)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(ids), self.batch_size):
                rows = order[start : start + self.batch_size]
                probabilities[rows] = self.model(torch.from_numpy(ids[rows]).to(device)).double().cpu().numpy()
        return probabilities

    def __call__(self, texts: Sequence[str]) -> list[float]:
        """Probability of the chosen label for each text.

        Args:
            texts: The texts.

        Returns:
            One probability per text.
        """
        return self.predict(texts)[:, self.label_index].tolist()

    def attribution(self, texts: Sequence[str], ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Per-character weights over ``text[start:end]`` of each text: gradient x input saliency of the label.

        The weight for the attention-based credit (Chan et al., 2024, arXiv 2402.00782). The BiLSTM has no
        attention, so the documented stand-in is gradient x input: for each word the model reads,
        ``|sum over embedding dims of d logit / d embedding * embedding|``, where ``logit`` is the pre-sigmoid
        output of :attr:`label`. The logit's gradient is the probability's divided by ``p (1 - p)``, one factor per
        text that the renormalisation cancels, and it does not vanish when ``p`` rounds to 1 in float32. Words that
        overlap the range are kept, renormalised, and spread evenly over their characters in the range (see
        :func:`~textgym.scorers.attribution.spread_over_characters`); filtered characters (spaces, punctuation),
        unknown words and words before the last :data:`MAXLEN` get 0. Gradients are enabled for this call only,
        taken with respect to the embeddings alone (no parameter's ``.grad`` changes), and the model stays in eval
        mode (cuDNN is off for the call: its LSTM backward runs only in training mode).

        Args:
            texts: The texts as given to :meth:`__call__`.
            ranges: ``(start, end)`` character range of each text to attribute (its completion's part).

        Returns:
            For each text a float64 array of length ``end - start``, nonnegative and summing to 1; all zeros when
            the range holds no known word.

        Raises:
            ValueError: Not one range per text, or a range outside its text.
        """
        check_ranges(texts, ranges)
        maxlen = self.tokenizer.maxlen
        encoded = [self.tokenizer.encode_with_spans(text) for text in texts]
        encoded = [(ids[-maxlen:], spans[-maxlen:]) for ids, spans in encoded]
        batch_ids = self.tokenizer.encode_batch(texts)
        device = self.model.embedding.weight.device
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = torch.from_numpy(batch_ids[start : start + self.batch_size]).to(device)
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                embedded = self.model.embedding(batch).detach().requires_grad_(True)
                logits = self.model.logits(embedded)[:, self.label_index]
                (gradient,) = torch.autograd.grad(logits.sum(), embedded)  # rows are independent: one pass
            saliency = (gradient * embedded).sum(-1).abs().detach().double().cpu().numpy()
            for row in range(len(batch)):
                text, (first, last), (ids, spans) = texts[start + row], ranges[start + row], encoded[start + row]
                weights = saliency[row, maxlen - len(ids) :] if ids else saliency[row, :0]
                out.append(spread_over_characters(text, spans, weights, first, last))
        return out
