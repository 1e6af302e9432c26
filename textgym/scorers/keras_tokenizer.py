"""Keras' word ``Tokenizer`` without Keras: its pickle read safely, and ``texts_to_sequences`` + ``pad_sequences``.

The toxicity BiLSTM (:mod:`textgym.scorers.toxicity_bilstm`) reads word ids made exactly as Keras made them when the
model was trained: this module reproduces that, with the character offsets of each word for attribution.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textgym.error import ModelLoadError

__all__ = ["KERAS_DEFAULT_FILTERS", "MAXLEN", "KerasWordTokenizer"]

MAXLEN = 100
"""Number of word ids the toxicity model reads per text (the default row length)."""

KERAS_DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


class _PickledKerasObject:
    """Stand-in for any Keras or TensorFlow class found in a pickle: it only keeps the pickled attributes."""


class _TokenizerUnpickler(pickle.Unpickler):
    """Unpickles a Keras ``Tokenizer`` without Keras, and refuses every class a tokenizer does not need."""

    _ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("collections", "defaultdict"): defaultdict,
        ("builtins", "int"): int,
        ("builtins", "dict"): dict,
        ("builtins", "list"): list,
        ("builtins", "str"): str,
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in ("keras", "tensorflow", "tf_keras"):
            return _PickledKerasObject
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"Refusing to load {module}.{name} from a tokenizer pickle.")


class KerasWordTokenizer:
    """Reproduces Keras' ``Tokenizer.texts_to_sequences`` and ``pad_sequences`` without Keras.

    A text is lower-cased (when ``lower``), every character of ``filters`` is replaced by ``split``, the text is
    split on ``split`` and empty pieces are dropped. Each word is then looked up in ``word_index``: words whose
    index is ``>= num_words`` and words not in the index are dropped, or mapped to the index of ``oov_token``
    when the tokenizer has one.

    Args:
        word_index: Word to id, ids starting at 1 (0 is padding).
        num_words: Only ids below this are kept; ``None`` or 0 keeps them all.
        filters: Characters replaced by ``split`` before splitting.
        lower: Whether to lower-case texts first.
        split: The separator that words are split on.
        oov_token: The word whose id replaces unknown words; ``None`` drops unknown words.
        char_level: Whether every character is a token (no filtering nor splitting), as in Keras.
        maxlen: Length of the rows :meth:`encode_batch` returns.
    """

    def __init__(
        self,
        word_index: Mapping[str, int],
        num_words: int | None = None,
        filters: str = KERAS_DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        oov_token: str | None = None,
        char_level: bool = False,
        maxlen: int = MAXLEN,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}.")
        self.word_index: dict[str, int] = dict(word_index)
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.split = split
        self.oov_token = oov_token
        self.char_level = char_level
        self.maxlen = maxlen
        self.oov_index: int | None = self.word_index.get(oov_token) if oov_token is not None else None
        self._translation = str.maketrans({character: split for character in filters})

    @classmethod
    def from_pickle(cls, path: str | Path, maxlen: int = MAXLEN) -> KerasWordTokenizer:
        """Build the tokenizer from a pickled Keras ``Tokenizer``, without importing Keras.

        Args:
            path: The pickle file.
            maxlen: Length of the rows :meth:`encode_batch` returns.

        Returns:
            The tokenizer.

        Raises:
            ModelLoadError: The file is not a pickled Keras word tokenizer this class can reproduce.
        """
        try:
            with open(path, "rb") as handle:
                state = _TokenizerUnpickler(handle).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as error:
            raise ModelLoadError(f"Could not read the Keras tokenizer {str(path)!r}: {error}") from error
        attributes = vars(state) if isinstance(state, _PickledKerasObject) else None
        if not attributes or "word_index" not in attributes:
            raise ModelLoadError(f"{str(path)!r} does not hold a pickled Keras Tokenizer.")
        if attributes.get("analyzer") is not None:
            raise ModelLoadError(f"The Keras tokenizer in {str(path)!r} uses a custom analyzer, which is unsupported.")
        return cls(
            word_index=attributes["word_index"],
            num_words=attributes.get("num_words"),
            filters=attributes.get("filters", KERAS_DEFAULT_FILTERS),
            lower=attributes.get("lower", True),
            split=attributes.get("split", " "),
            oov_token=attributes.get("oov_token"),
            char_level=attributes.get("char_level", False),
            maxlen=maxlen,
        )

    def words(self, text: str) -> list[str]:
        """Split a text into words as Keras' ``text_to_word_sequence`` does (characters when ``char_level``).

        Args:
            text: The text.

        Returns:
            The words, lower-cased when ``lower``.
        """
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        return [word for word in text.translate(self._translation).split(self.split) if word]

    def encode(self, text: str) -> list[int]:
        """Turn one text into word ids, as Keras' ``texts_to_sequences`` does; no padding.

        Args:
            text: The text.

        Returns:
            The ids of the text's known words, in order.
        """
        return [index for _, index in self._lookup(self.words(text))]

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """:meth:`encode`, and the character span in ``text`` of the word behind each id.

        Args:
            text: The text.

        Returns:
            The ids, as :meth:`encode` gives them, and a ``(first, past_last)`` span per id; ``(0, 0)`` spans for all
            where lower-casing moves word boundaries (a filter character that is the lower case of another).
        """
        words, spans = self.words(text), self.word_spans(text)
        if len(spans) != len(words):
            spans = [(0, 0)] * len(words)
        kept = self._lookup(words)
        return [index for _, index in kept], [spans[position] for position, _ in kept]

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(first, past_last)`` character span in ``text`` of each of :meth:`words`.

        Args:
            text: The text.

        Returns:
            One span per word.
        """
        translated, origin = [], []  # character by character, remembering where each came from
        for index, character in enumerate(text):
            for lowered in character.lower() if self.lower else character:
                replaced = lowered if self.char_level or lowered not in self.filters else self.split
                translated.append(replaced)
                origin.extend([index] * len(replaced))
        if self.char_level:
            return [(index, index + 1) for index in origin]
        spans, position = [], 0
        for piece in "".join(translated).split(self.split):
            if piece:
                spans.append((origin[position], origin[position + len(piece) - 1] + 1))
            position += len(piece) + len(self.split)
        return spans

    def _lookup(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """``(position in words, id)`` of each word that gets an id."""
        ids = []
        for position, word in enumerate(words):
            index = self.word_index.get(word)
            if index is not None and not (self.num_words and index >= self.num_words):
                ids.append((position, index))
            elif self.oov_index is not None:
                ids.append((position, self.oov_index))
        return ids

    __call__ = encode

    def encode_batch(self, texts: Sequence[str], maxlen: int | None = None) -> np.ndarray:
        """Encode texts into one padded array, padded and truncated at the front as ``pad_sequences`` does.

        Args:
            texts: The texts.
            maxlen: Row length; defaults to the tokenizer's ``maxlen``.

        Returns:
            An int64 array of shape ``(len(texts), maxlen)``: each row holds the last ``maxlen`` ids of its text,
            after leading zeros when the text has fewer.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts, not a single string.")
        maxlen = self.maxlen if maxlen is None else maxlen
        batch = np.zeros((len(texts), maxlen), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.encode(text)[-maxlen:]
            if ids:
                batch[row, maxlen - len(ids) :] = ids
        return batch
