"""Reading critic replies and locating their phrases in the completion (textgym.critics.parsing)."""

from __future__ import annotations

import pytest

from textgym.critics.base import Critique, Span
from textgym.critics.parsing import critique_from_reply, locate, parse_phrases

COMPLETION = "You are a stupid  idiot, and I hate you. Stupid idiot!"

# parse_phrases -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Toxic phrases: stupid idiot | hate you", ["stupid idiot", "hate you"]),
        ("Negative phrases: a waste of time", ["a waste of time"]),
        ("  Toxic phrases:   stupid idiot  |  hate you  ", ["stupid idiot", "hate you"]),
        ('Toxic phrases: "stupid idiot" | "hate you"', ["stupid idiot", "hate you"]),
        ("Toxic phrases: `stupid idiot` | `hate you`", ["stupid idiot", "hate you"]),
        ("Toxic phrases: don't | you're dumb", ["don't", "you're dumb"]),
    ],
)
def test_header_lines(reply, expected):
    assert parse_phrases(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "1. stupid idiot\n2. hate you",
        "1) stupid idiot\n2) hate you",
        "(1) stupid idiot\n(2) hate you",
        "a. stupid idiot\nb. hate you",
        "- stupid idiot\n- hate you",
        "* stupid idiot\n* hate you",
        "• stupid idiot\n• hate you",
        "1. stupid idiot.\n2. 'hate you'",
        "Toxic phrases:\n1. stupid idiot\n2. hate you",
        "Toxic phrases:\n\n- stupid idiot\n\n- hate you\n",
    ],
)
def test_numbered_and_bulleted_lists(reply):
    assert parse_phrases(reply) == ["stupid idiot", "hate you"]


def test_numbers_inside_a_phrase_are_kept():
    assert parse_phrases("Toxic phrases: 10 idiots | 2 morons") == ["10 idiots", "2 morons"]
    assert parse_phrases("1. 10 idiots") == ["10 idiots"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('The phrases "stupid idiot" and "hate you" are toxic.', ["stupid idiot", "hate you"]),
        ("The phrase 'stupid idiot' is toxic.", ["stupid idiot"]),
        ("I don't think 'stupid idiot' is kind.", ["stupid idiot"]),
        ("“stupid idiot” and «hate you»", ["stupid idiot", "hate you"]),
        ("'stupid idiot', 'hate you'", ["stupid idiot", "hate you"]),
        ('Toxic phrases: the words "idiot" and "moron".', ["idiot", "moron"]),
    ],
)
def test_quoted_phrases_in_sentences(reply, expected):
    assert parse_phrases(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "None identified.",
        "none",
        "None",
        "NONE.",
        "N/A",
        "n/a",
        "There are no toxic phrases.",
        "There is no toxic language here.",
        "No toxic phrases.",
        "No spans",
        "Nothing.",
        "Toxic phrases: none",
        "Toxic phrases: None.",
        "Negative phrases: N/A",
        "- None",
        "1. None identified",
        "Here is my answer:\nToxic phrases: none",
    ],
)
def test_replies_that_say_there_are_none(reply):
    assert parse_phrases(reply) == []


@pytest.mark.parametrize("reply", ["", "   ", "\n\n", " \t\n "])
def test_empty_reply_is_none(reply):
    assert parse_phrases(reply) is None


def test_chatter_lines_ending_with_a_colon_are_headers():
    assert parse_phrases("stupid idiot:") == []
    reply = "Sure! Here is my analysis:\nThe toxic phrases are:\n- stupid idiot\n- hate you"
    assert parse_phrases(reply) == ["stupid idiot", "hate you"]
    assert parse_phrases("Here are the toxic phrases:\nstupid idiot\nhate you") == ["stupid idiot", "hate you"]
    assert parse_phrases("Toxic phrases:") == []


def test_a_none_part_among_phrases_is_skipped():
    assert parse_phrases("Toxic phrases: stupid idiot | none") == ["stupid idiot"]
    assert parse_phrases("Positive phrases: none\nNegative phrases: boring") == ["boring"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("stupid idiot; hate you", ["stupid idiot", "hate you"]),
        ("Toxic phrases: stupid idiot;hate you; moron", ["stupid idiot", "hate you", "moron"]),
        ("stupid idiot | hate you; moron", ["stupid idiot", "hate you", "moron"]),
    ],
)
def test_semicolon_separators(reply, expected):
    assert parse_phrases(reply) == expected


@pytest.mark.parametrize(
    "reply", ["stupid idiot.", "stupid idiot,", "stupid idiot, ", "stupid idiot;", "stupid idiot ...", "stupid idiot.,"]
)
def test_trailing_punctuation_is_stripped(reply):
    assert parse_phrases(reply) == ["stupid idiot"]


def test_trailing_punctuation_of_each_part_is_stripped():
    assert parse_phrases("Toxic phrases: stupid idiot. | hate you, | moron...") == ["stupid idiot", "hate you", "moron"]
    assert parse_phrases("Toxic phrases: what?! | oh!") == ["what?!", "oh!"]  # only . , ; : and spaces go


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Negative phrases: no redeeming qualities | boring", ["no redeeming qualities", "boring"]),
        ("1. no one likes you\n2. idiot", ["no one likes you", "idiot"]),
        ("Negative phrases: nonexistent plot | dull", ["nonexistent plot", "dull"]),
    ],
)
def test_phrases_starting_with_no_are_kept(reply, expected):
    assert parse_phrases(reply) == expected


def test_scare_quotes_inside_a_listed_phrase():
    reply = 'Negative phrases: the "comedy" falls flat | boring'
    assert parse_phrases(reply) == ['the "comedy" falls flat', "boring"]


def test_single_quoted_phrase_with_an_apostrophe():
    assert parse_phrases("The phrase 'you're an idiot' is toxic.") == ["you're an idiot"]


def test_markdown_bold_header():
    assert parse_phrases("**Toxic phrases:** stupid idiot | hate you") == ["stupid idiot", "hate you"]


# locate --------------------------------------------------------------------------------------------------------


def _located(phrase: str, completion: str = COMPLETION, taken=()) -> str | None:
    hit = locate(phrase, completion, taken)
    if hit is None:
        return None
    start, end = hit
    assert 0 <= start < end <= len(completion)
    return completion[start:end]


def test_exact_match():
    assert locate("hate you", COMPLETION) == (31, 39)
    assert COMPLETION[31:39] == "hate you"
    assert locate("stupid  idiot", COMPLETION) == (10, 23)
    assert locate("Stupid idiot", COMPLETION) == (41, 53)


def test_exact_match_is_preferred_over_a_case_insensitive_one():
    # "stupid idiot" (one space, lower case) occurs only as "Stupid idiot" at 41; the "stupid  idiot" at 10 has
    # two spaces, so the exact and case-insensitive stages find 41 before the word stage could find 10.
    assert locate("stupid idiot", COMPLETION) == (41, 53)
    assert locate("Stupid", "stupid Stupid") == (7, 13)


def test_case_insensitive_match():
    assert _located("STUPID IDIOT") == "Stupid idiot"
    assert _located("i HATE you") == "I hate you"
    assert locate("i hate", COMPLETION) == (29, 35)


@pytest.mark.parametrize(
    ("phrase", "completion", "expected"),
    [
        ("stupid idiot", "You are a stupid  idiot.", "stupid  idiot"),
        ("stupid  idiot", "You are a stupid idiot.", "stupid idiot"),
        ("idiot,", "You idiot and fool", "idiot"),
        ("idiot", "You idiot, and fool", "idiot"),
        ("hate  you!", "I hate you, really", "hate you"),
        ("stupid, idiot", "a stupid idiot here", "stupid idiot"),
        ("Stupid\nIdiot", "a stupid idiot here", "stupid idiot"),
        ("don't care", "I don' t care", "don' t care"),
    ],
)
def test_whitespace_and_punctuation_differences(phrase, completion, expected):
    assert _located(phrase, completion) == expected


def test_fuzzy_typo():
    assert _located("stupdi idiot", "You are a stupid idiot, really.") == "stupid idiot"
    assert _located("stupdi idiot") == "stupid  idiot"
    assert _located("horrendus acting", "what horrendous acting it was") == "horrendous acting"


@pytest.mark.parametrize("phrase", ["love you", "brilliant genius", "zebra", "", "   ", "...", "--"])
def test_phrase_not_present_is_none(phrase):
    assert locate(phrase, COMPLETION) is None


def test_fuzzy_threshold_can_be_raised_or_lowered():
    assert locate("stupdi idiot", "You are a stupid idiot.", fuzzy=0.99) is None
    assert locate("stupdi idiot", "You are a stupid idiot.", fuzzy=0.5) == (10, 22)
    assert locate("zebra crossing", "You are a stupid idiot.", fuzzy=0.85) is None


def test_fuzzy_similarity_equal_to_the_threshold_matches():
    # 17 of 20 characters in common: difflib ratio 2 * 17 / 40 == 0.85 exactly.
    assert locate("abcdefghijklmnopqrst", "abcdefghijklmnopqxyz", fuzzy=0.85) == (0, 20)


def test_repeated_phrase_with_taken_picks_the_next_occurrence():
    completion = "bad, bad and bad"
    first = locate("bad", completion)
    assert first == (0, 3)
    second = locate("bad", completion, [first])
    assert second == (5, 8)
    third = locate("bad", completion, [first, second])
    assert third == (13, 16)
    # Every occurrence taken: the first is returned again (the caller deduplicates).
    assert locate("bad", completion, [first, second, third]) == (0, 3)
    # Taken by the case-insensitive and the word stages too.
    assert locate("BAD", completion, [(0, 3)]) == (5, 8)
    assert locate("bad!", "bad. bad!", [(0, 3)]) == (5, 9)  # exact
    assert locate("bad?", "bad. bad!", [(0, 3)]) == (5, 8)  # words only


def test_offsets_slice_the_completion_to_the_matched_text():
    completion = "Honestly? You're a  STUPID idiot; I hate you."
    for phrase, expected in [
        ("stupid idiot", "STUPID idiot"),
        ("you're a stupid", "You're a  STUPID"),
        ("I hate you.", "I hate you."),
        ("hate you!!", "hate you"),
        ("honestly", "Honestly"),
    ]:
        assert _located(phrase, completion) == expected


def test_offsets_after_a_character_that_lower_case_lengthens():
    completion = "İstanbul is a STUPID idea"
    assert _located("stupid idea", completion) == "STUPID idea"


# critique_from_reply -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [None, "", "   \n"])
def test_empty_reply_is_a_failure(reply):
    critique = critique_from_reply(reply, COMPLETION, "toxic")
    assert isinstance(critique, Critique)
    assert critique.ok is False
    assert critique.spans == ()
    assert critique.error


def test_none_reply_is_ok_without_spans():
    critique = critique_from_reply("Toxic phrases: none", COMPLETION, "toxic")
    assert critique.ok is True
    assert critique.spans == ()
    assert critique.dropped == 0
    assert critique.raw == "Toxic phrases: none"


def test_spans_are_located_labelled_and_sorted():
    reply = "Toxic phrases: hate you | stupid  idiot"
    critique = critique_from_reply(reply, COMPLETION, "toxic")
    assert critique.ok is True
    assert critique.spans == (Span(10, 23, "toxic"), Span(31, 39, "toxic"))
    assert [span.text(COMPLETION) for span in critique.spans] == ["stupid  idiot", "hate you"]
    assert critique.dropped == 0


def test_unlocatable_phrases_are_counted_in_dropped():
    reply = "Toxic phrases: hate you | brilliant genius | zebra crossing | idiot"
    critique = critique_from_reply(reply, COMPLETION, "toxic")
    assert critique.ok is True
    assert critique.dropped == 2
    assert [span.text(COMPLETION) for span in critique.spans] == ["idiot", "hate you"]


def test_every_phrase_dropped_is_a_failed_critique_not_a_clean_text():
    critique = critique_from_reply("Toxic phrases: zebra | giraffe", COMPLETION, "toxic")
    assert critique.ok is False
    assert critique.spans == ()
    assert critique.error == "unlocated: the critic named 2 phrases, none found in the completion"


def test_repeated_phrases_take_successive_occurrences_and_duplicates_collapse():
    completion = "idiot, idiot!"
    critique = critique_from_reply("Toxic phrases: idiot | idiot | idiot | moron", completion, "toxic")
    assert critique.spans == (Span(0, 5, "toxic"), Span(7, 12, "toxic"))
    assert critique.dropped == 1


def test_duplicate_phrases_give_one_span():
    critique = critique_from_reply("1. hate you\n2. hate you\n3. Hate You", COMPLETION, "toxic")
    assert critique.spans == (Span(31, 39, "toxic"),)
    assert critique.dropped == 0


def test_spans_sorted_by_start_then_end():
    completion = "You are a stupid idiot."
    critique = critique_from_reply("idiot | stupid idiot | stupid | You", completion, "negative")
    assert critique.spans == (
        Span(0, 3, "negative"),
        Span(10, 16, "negative"),
        Span(10, 22, "negative"),
        Span(17, 22, "negative"),
    )
    assert all(span.label == "negative" for span in critique.spans)
