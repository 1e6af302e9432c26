"""Character spans to tokens (textgym.critics.alignment), with the real default tokenizer (SmolLM2 byte-level BPE)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from textgym.critics.alignment import covered_tokens, span_token_rewards, token_char_ranges
from textgym.critics.base import Span
from textgym.models import load_tokenizer

# A short sentence whose tokens are all ASCII; "idiot" is two tokens and "bad" occurs twice.
SENTENCE = "You are a stupid idiot, bad and bad."
SENTENCE_TOKENS = ["You", " are", " a", " stupid", " id", "iot", ",", " bad", " and", " bad", "."]
# Character boundaries of SENTENCE_TOKENS, counted by hand: You=0..3, " are"=3..7, " a"=7..9, " stupid"=9..16,
# " id"=16..19, "iot"=19..22, ","=22..23, " bad"=23..27, " and"=27..31, " bad"=31..35, "."=35..36.
SENTENCE_RANGES = [
    (0, 3),
    (3, 7),
    (7, 9),
    (9, 16),
    (16, 19),
    (19, 22),
    (22, 23),
    (23, 27),
    (27, 31),
    (31, 35),
    (35, 36),
]

# One word of four tokens: "un" "belie" "v" "ably", then " hor" "rend" "ous" and " acting".
LONG_WORDS = "unbelievably horrendous acting"
LONG_WORDS_TOKENS = ["un", "belie", "v", "ably", " hor", "rend", "ous", " acting"]

UNICODE = "café naïve 😀 日本語 ok"

TEXTS = [
    SENTENCE,
    LONG_WORDS,
    "The movie was terrible and boring.",
    "  two  spaces\n\nnew line\t tab, and (brackets) -- dashes!",
    "I don't know what you're saying?!",
    UNICODE,
    "😀😀 x",
    "Ünïcödé àçcénts: crème brûlée, Straße, Ærøskøbing",
    "中文文本和日本語のテキスト。",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def _ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text  # the tokenizer round-trips these texts
    return ids


def _assert_partition(ranges: list[tuple[int, int]], text: str, count: int) -> None:
    """One range per token, starting at 0, each starting where the previous ended, ending at len(text)."""
    assert len(ranges) == count
    if not count:
        return
    assert ranges[0][0] == 0
    assert ranges[-1][1] == len(text)
    for start, end in ranges:
        assert 0 <= start <= end <= len(text)
    for (_, previous_end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert start == previous_end
    assert "".join(text[start:end] for start, end in ranges) == text


def _hand_ranges(tokenizer, ids: list[int]) -> list[tuple[int, int]]:
    """Boundaries from the lengths of the decoded tokens, for texts whose tokens are all whole characters."""
    ranges, position = [], 0
    for token in ids:
        piece = tokenizer.decode([token])
        assert "\ufffd" not in piece
        ranges.append((position, position + len(piece)))
        position += len(piece)
    return ranges


# token_char_ranges ---------------------------------------------------------------------------------------------


def test_sentence_tokens_are_as_written_here(tokenizer):
    assert [tokenizer.decode([token]) for token in _ids(tokenizer, SENTENCE)] == SENTENCE_TOKENS
    assert [tokenizer.decode([token]) for token in _ids(tokenizer, LONG_WORDS)] == LONG_WORDS_TOKENS


def test_sentence_ranges_match_hand_counted_boundaries(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    assert token_char_ranges(tokenizer, ids) == SENTENCE_RANGES
    assert _hand_ranges(tokenizer, ids) == SENTENCE_RANGES


@pytest.mark.parametrize("text", TEXTS)
def test_ranges_partition_the_decoded_text(tokenizer, text):
    ids = _ids(tokenizer, text)
    _assert_partition(token_char_ranges(tokenizer, ids), text, len(ids))


@pytest.mark.parametrize("text", [t for t in TEXTS if t.isascii()])
def test_each_ascii_token_slices_to_its_own_decoding(tokenizer, text):
    ids = _ids(tokenizer, text)
    ranges = token_char_ranges(tokenizer, ids)
    assert [text[start:end] for start, end in ranges] == [tokenizer.decode([token]) for token in ids]
    assert ranges == _hand_ranges(tokenizer, ids)


def test_arbitrary_id_sequences_partition_their_decoding(tokenizer):
    # Sampled ids decode to broken UTF-8 and special tokens as often as not; the ranges still partition the text.
    rng = random.Random(0)
    for _ in range(40):
        ids = [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randrange(1, 25))]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        _assert_partition(token_char_ranges(tokenizer, ids), text, len(ids))


def test_no_ids_give_no_ranges(tokenizer):
    assert token_char_ranges(tokenizer, []) == []


def test_eos_at_the_end_gets_an_empty_range(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    eos = tokenizer.eos_token_id
    ranges = token_char_ranges(tokenizer, [*ids, eos])
    assert ranges[:-1] == SENTENCE_RANGES
    assert ranges[-1] == (len(SENTENCE), len(SENTENCE))


def test_eos_inside_gets_an_empty_range_and_leaves_the_others(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    eos = tokenizer.eos_token_id
    ranges = token_char_ranges(tokenizer, [*ids[:4], eos, *ids[4:], eos])
    assert ranges == [*SENTENCE_RANGES[:4], (16, 16), *SENTENCE_RANGES[4:], (36, 36)]
    _assert_partition(ranges, SENTENCE, len(ids) + 2)


def test_special_tokens_at_the_start_get_empty_ranges(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    ranges = token_char_ranges(tokenizer, [tokenizer.bos_token_id, tokenizer.eos_token_id, *ids])
    assert ranges == [(0, 0), (0, 0), *SENTENCE_RANGES]


def test_emoji_split_across_tokens_belongs_to_the_token_that_completes_it(tokenizer):
    text = "a 😀 b"
    ids = _ids(tokenizer, text)
    pieces = [tokenizer.decode([token]) for token in ids]
    assert any("\ufffd" in piece for piece in pieces)  # byte-level BPE really splits the emoji
    ranges = token_char_ranges(tokenizer, ids)
    _assert_partition(ranges, text, len(ids))
    emoji = text.index("😀")
    holders = [index for index, (start, end) in enumerate(ranges) if start <= emoji < end]
    assert len(holders) == 1
    assert ranges[holders[0]] == (emoji, emoji + 1)  # the emoji is one character of exactly one range
    assert text[ranges[0][0] : ranges[0][1]] == "a" and text[ranges[-1][0] : ranges[-1][1]] == " b"


def test_unicode_ranges_cover_whole_characters(tokenizer):
    ids = _ids(tokenizer, UNICODE)
    pieces = [tokenizer.decode([token]) for token in ids]
    assert sum("\ufffd" in piece for piece in pieces) >= 2  # the emoji and a CJK character are split
    ranges = token_char_ranges(tokenizer, ids)
    _assert_partition(ranges, UNICODE, len(ids))
    # No range holds a replacement character: partial bytes never become characters of their own.
    assert all("\ufffd" not in UNICODE[start:end] for start, end in ranges)
    # Whole-character tokens keep their own text: "c", "af", "é", " na", "ïve" ... " ok".
    for index, piece in enumerate(pieces):
        if "\ufffd" not in piece and "\ufffd" not in "".join(pieces[:index]):
            assert UNICODE[slice(*ranges[index])] == piece
    assert UNICODE[slice(*ranges[-1])] == " ok"
    for character in "é😀日本語":
        position = UNICODE.index(character)
        assert sum(start <= position < end for start, end in ranges) == 1


# covered_tokens ------------------------------------------------------------------------------------------------


def _span(text: str, phrase: str, label: str = "toxic", occurrence: int = 0) -> Span:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(phrase, start + 1)
    return Span(start, start + len(phrase), label)


def _indices(mask: np.ndarray) -> list[int]:
    assert mask.dtype == bool
    return np.flatnonzero(mask).tolist()


@pytest.mark.parametrize(
    ("phrase", "occurrence", "expected"),
    [
        ("You", 0, [0]),  # start of the completion
        ("You are", 0, [0, 1]),
        ("stupid", 0, [3]),  # middle; starts at the word, after the space that " stupid" holds
        ("idiot", 0, [4, 5]),  # a two-token word
        ("idi", 0, [4, 5]),  # straddles the boundary of " id" and "iot"
        ("di", 0, [4, 5]),
        ("io", 0, [5]),  # inside "iot" only
        ("id", 1, [4]),  # inside " id" only (the first "id" is in "stupid")
        ("bad", 0, [7]),
        ("bad", 1, [9]),  # only the second occurrence
        ("bad.", 0, [9, 10]),  # end of the completion
        (".", 0, [10]),
        (", ", 0, [6, 7]),  # the space belongs to " bad"
        ("a stupid idiot", 0, [2, 3, 4, 5]),
    ],
)
def test_covered_tokens_of_the_sentence(phrase, occurrence, expected):
    assert _indices(covered_tokens(SENTENCE_RANGES, _span(SENTENCE, phrase, occurrence=occurrence))) == expected


def test_span_starting_at_the_space_covers_the_token_holding_it():
    # " stupid" = 9..16: a span 9..10 (only the space) overlaps it, a span ending at 9 does not.
    assert _indices(covered_tokens(SENTENCE_RANGES, Span(9, 10, "toxic"))) == [3]
    assert _indices(covered_tokens(SENTENCE_RANGES, Span(7, 9, "toxic"))) == [2]


def test_part_of_a_multi_token_word_covers_its_overlapping_tokens_only(tokenizer):
    ids = _ids(tokenizer, LONG_WORDS)
    ranges = token_char_ranges(tokenizer, ids)
    # un=0..2 belie=2..7 v=7..8 ably=8..12 " hor"=12..16 rend=16..20 ous=20..23 " acting"=23..30
    assert ranges == [(0, 2), (2, 7), (7, 8), (8, 12), (12, 16), (16, 20), (20, 23), (23, 30)]
    assert _indices(covered_tokens(ranges, _span(LONG_WORDS, "believ"))) == [1, 2]
    assert _indices(covered_tokens(ranges, _span(LONG_WORDS, "unbelievably"))) == [0, 1, 2, 3]
    assert _indices(covered_tokens(ranges, _span(LONG_WORDS, "horrendous"))) == [4, 5, 6]
    assert _indices(covered_tokens(ranges, _span(LONG_WORDS, "rendo"))) == [5, 6]


def test_span_on_a_split_emoji_covers_the_completing_token(tokenizer):
    text = "so 😀 fun"
    ids = _ids(tokenizer, text)
    ranges = token_char_ranges(tokenizer, ids)
    mask = covered_tokens(ranges, _span(text, "😀"))
    assert mask.sum() >= 1
    assert all(text[slice(*ranges[index])] == "😀" for index in _indices(mask))


def test_empty_ranges_outside_a_span_are_not_covered():
    ranges = [*SENTENCE_RANGES, (36, 36)]  # an EOS after the last token
    assert _indices(covered_tokens(ranges, _span(SENTENCE, "bad."))) == [9, 10]
    assert _indices(covered_tokens([(0, 0), *SENTENCE_RANGES], _span(SENTENCE, "You"))) == [1]


def test_empty_range_strictly_inside_a_span_is_not_covered(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    ranges = token_char_ranges(tokenizer, [*ids[:4], tokenizer.eos_token_id, *ids[4:]])
    assert ranges[4] == (16, 16)
    # " stupid" " id" "iot" are covered; the EOS between them adds no characters and is not.
    assert _indices(covered_tokens(ranges, _span(SENTENCE, "stupid idiot"))) == [3, 5, 6]


# span_token_rewards --------------------------------------------------------------------------------------------


def test_rewards_of_the_sentence_written_out():
    spans = [_span(SENTENCE, "stupid idiot"), _span(SENTENCE, "bad", occurrence=1)]
    rewards = span_token_rewards(SENTENCE_RANGES, spans, {"toxic": -1.0})
    assert rewards.dtype == np.float64
    np.testing.assert_array_equal(rewards, [0, 0, 0, -1, -1, -1, 0, 0, 0, -1, 0])


def test_rewards_from_token_char_ranges_of_real_ids(tokenizer):
    ids = _ids(tokenizer, SENTENCE)
    ranges = token_char_ranges(tokenizer, [*ids, tokenizer.eos_token_id])
    spans = [_span(SENTENCE, "You", "positive"), _span(SENTENCE, "idiot", "negative")]
    rewards = span_token_rewards(ranges, spans, {"positive": 0.5, "negative": -0.5})
    np.testing.assert_array_equal(rewards, [0.5, 0, 0, 0, -0.5, -0.5, 0, 0, 0, 0, 0, 0])


def test_default_reward_goes_to_visible_tokens_outside_every_span():
    ranges = [(0, 0), *SENTENCE_RANGES, (36, 36)]  # a BOS and an EOS, both empty
    spans = [_span(SENTENCE, "idiot", "incorrect"), _span(SENTENCE, "and", "irrelevant")]
    rewards = span_token_rewards(ranges, spans, {"incorrect": -1.0, "irrelevant": -0.25}, default_reward=0.5)
    expected = [0.0, 0.5, 0.5, 0.5, 0.5, -1.0, -1.0, 0.5, 0.5, -0.25, 0.5, 0.5, 0.0]
    np.testing.assert_array_equal(rewards, expected)


def test_default_reward_without_spans():
    rewards = span_token_rewards([(0, 3), (3, 3), (3, 7)], [], {"toxic": -1.0}, default_reward=0.5)
    np.testing.assert_array_equal(rewards, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(span_token_rewards([(0, 3), (3, 7)], [], {"toxic": -1.0}), [0.0, 0.0])
    assert span_token_rewards([], [], {"toxic": -1.0}, default_reward=0.5).shape == (0,)


def test_a_token_under_a_span_gets_no_default_even_when_its_label_has_no_reward():
    rewards = span_token_rewards(SENTENCE_RANGES, [_span(SENTENCE, "You")], {}, default_reward=0.5)
    np.testing.assert_array_equal(rewards, [0.0] + [0.5] * 10)


def test_two_labels_on_one_token_add():
    spans = [_span(SENTENCE, "stupid", "positive"), _span(SENTENCE, "a stupid", "negative")]
    rewards = span_token_rewards(SENTENCE_RANGES, spans, {"positive": 1.0, "negative": -0.25})
    np.testing.assert_array_equal(rewards, [0, 0, -0.25, 0.75, 0, 0, 0, 0, 0, 0, 0])
    three = [
        _span(SENTENCE, "idiot", "incorrect"),
        _span(SENTENCE, "iot", "irrelevant"),
        _span(SENTENCE, "idiot,", "incoherent"),
    ]
    rewards = span_token_rewards(
        SENTENCE_RANGES, three, {"incorrect": -1.0, "irrelevant": -0.5, "incoherent": -0.25}, default_reward=0.5
    )
    np.testing.assert_array_equal(rewards, [0.5, 0.5, 0.5, 0.5, -1.25, -1.75, -0.25, 0.5, 0.5, 0.5, 0.5])


def test_overlapping_spans_of_one_label_count_once():
    spans = [
        _span(SENTENCE, "stupid"),
        _span(SENTENCE, "stupid idiot"),
        _span(SENTENCE, "stupid idiot"),
        _span(SENTENCE, "idiot,"),
    ]
    rewards = span_token_rewards(SENTENCE_RANGES, spans, {"toxic": -1.0})
    np.testing.assert_array_equal(rewards, [0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0])


def test_span_rewards_for_unicode_text(tokenizer):
    ids = _ids(tokenizer, UNICODE)
    ranges = token_char_ranges(tokenizer, ids)
    rewards = span_token_rewards(ranges, [_span(UNICODE, "naïve", "negative")], {"negative": -1.0}, default_reward=0.5)
    # " na" and "ïve" carry the word; tokens with no characters of their own (split bytes) get nothing.
    for index, (start, end) in enumerate(ranges):
        if start == end:
            assert rewards[index] == 0.0
        elif start < UNICODE.index("naïve") + 5 and UNICODE.index("naïve") < end:
            assert rewards[index] == -1.0
        else:
            assert rewards[index] == 0.5
    assert (rewards == -1.0).sum() == 2
