"""Every reply format the critics read, for all three tasks, with replies written for these tests.

RELC's formats (numbered span headers, bracketed span numbers under a label header, a trailing ``(Label: ...)``),
lists after a header (commas, semicolons, "and"), quoted phrases, JSON, and "none"; then the failures (phrases
named, none found; no label named), through the OpenAI-compatible critic over a real loopback server and end to end
through ``TextDetox-critic-v0``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the environment ids)
from tests.wrappers.helpers import char_ends, critic_wrapper, play, token_ids
from textgym.critics.base import Span
from textgym.critics.openai_compat import OpenAICompatibleCritic
from textgym.critics.parsing import critique_from_labelled_reply, critique_from_reply, parse_phrases

try:
    from tests.critics.loopback_server import LoopbackChatServer, Reply
except ImportError:  # run with tests/critics on sys.path only
    from loopback_server import LoopbackChatServer, Reply

TEXTS = {
    "detox": "Honestly, you are a worthless clown, and nobody wants your pathetic excuses.",
    "sentiment": "The cast is wonderful and the score soars, but the script is a lazy, tired mess.",
    "summarize": "The poster's dog ran away in Paris last May, bananas are yellow, and the went he home.",
}
CLOWN, EXCUSES = ("worthless clown", "toxic"), ("pathetic excuses", "toxic")
WONDERFUL, SOARS, MESS = ("wonderful", "positive"), ("the score soars", "positive"), ("a lazy, tired mess", "negative")
PARIS, BANANAS, WENT = (
    ("in Paris", "incorrect"),
    ("bananas are yellow", "irrelevant"),
    ("the went he home", "incoherent"),
)


def read(task: str, reply: str):
    return critique_from_labelled_reply(reply, TEXTS[task], task)


def marked(task: str, critique) -> list[tuple[str, str]]:
    """The critique's spans as (text, label), in the order of the critique (by start)."""
    return [(span.text(TEXTS[task]), span.label) for span in critique.spans]


def at(task: str, phrase: str, label: str) -> Span:
    start = TEXTS[task].index(phrase)
    return Span(start, start + len(phrase), label)


FORMATS = {
    # RELC's numbered span headers
    "detox numbered, under RELC's header": (
        "detox",
        "Toxic Spans Identified in the Sentence:\nToxic Span 1: worthless clown\nToxic Span 2: pathetic excuses",
        [CLOWN, EXCUSES],
    ),
    "detox numbered alone": ("detox", "Toxic Span 1: worthless clown", [CLOWN]),
    "detox numbered without a label": ("detox", "Span 1: worthless clown\nSpan 2: pathetic excuses", [CLOWN, EXCUSES]),
    "detox numbered, RELC's trailing period": ("detox", "Toxic Span 1: pathetic excuses.", [EXCUSES]),
    "sentiment numbered": (
        "sentiment",
        "Positive Span 1: wonderful\nPositive Span 2: the score soars\nNegative Span 1: a lazy, tired mess",
        [WONDERFUL, SOARS, MESS],
    ),
    "summarize numbered": (
        "summarize",
        "Incorrect Span 1: in Paris\nIrrelevant Span 1: bananas are yellow\nIncoherent Span 1: the went he home",
        [PARIS, BANANAS, WENT],
    ),
    # RELC's bracketed span numbers
    "sentiment bracketed, RELC's two sections": (
        "sentiment",
        "Identified Positive Text Span:\n[Span 1]: wonderful\n[Span 2]: the score soars\n\n"
        "Identified Negative Text Span:\n[Span 1]: a lazy, tired mess",
        [WONDERFUL, SOARS, MESS],
    ),
    "sentiment bracketed, header and span on one line": (
        "sentiment",
        "Identified Positive Text Span: [Span 1]: wonderful\n"
        "Identified Negative Text Span: [Span 1]: a lazy, tired mess",
        [WONDERFUL, MESS],
    ),
    "sentiment bracketed, one side none": (
        "sentiment",
        "Identified Positive Text Span:\nNone identified\n\nIdentified Negative Text Span:\n[Span 1]: lazy\n"
        "[Span 2]: tired mess",
        [("lazy", "negative"), ("tired mess", "negative")],
    ),
    "detox bracketed": (
        "detox",
        "Toxic Spans Identified in the Sentence:\n[Span 1]: worthless clown\n[Span 2] pathetic excuses",
        [CLOWN, EXCUSES],
    ),
    "summarize bracketed": (
        "summarize",
        "Identified Incoherent Text Span:\n[Span 1]: the went he home\n"
        "Identified Irrelevant Text Span: [Span 1]: bananas are yellow",
        [BANANAS, WENT],
    ),
    # RELC's trailing label
    "summarize trailing labels, RELC's whole answer": (
        "summarize",
        "Problematic Spans Identified in the Summary:\nSpan 1: in Paris (Label: Factually Incorrect)\n"
        "Span 2: bananas are yellow (Label: Irrelevant)\nSpan 3: the went he home (Label: Incoherent)\n\n"
        "Is the summary missing key information?\nYes",
        [PARIS, BANANAS, WENT],
    ),
    "sentiment trailing labels": (
        "sentiment",
        "Span 1: wonderful (Label: Positive)\nSpan 2: a lazy, tired mess (Label: Negative)",
        [WONDERFUL, MESS],
    ),
    "detox trailing label of its own words": ("detox", "Span 1: worthless clown (Label: Insult)", [CLOWN]),
    "summarize label in the span header": ("summarize", "Span 1 (Irrelevant): bananas are yellow", [BANANAS]),
    # lists after a header
    "detox commas": ("detox", "Toxic spans: worthless clown, pathetic excuses", [CLOWN, EXCUSES]),
    "detox commas and 'and'": (
        "detox",
        "Toxic spans: worthless clown, nobody wants, and pathetic excuses",
        [CLOWN, ("nobody wants", "toxic"), EXCUSES],
    ),
    "detox 'and'": ("detox", "Toxic spans: worthless clown and pathetic excuses", [CLOWN, EXCUSES]),
    "detox semicolons": ("detox", "Toxic spans: worthless clown; pathetic excuses", [CLOWN, EXCUSES]),
    "sentiment commas, a phrase with a comma kept whole": (
        "sentiment",
        "Positive phrases: wonderful, the score soars\nNegative phrases: a lazy, tired mess",
        [WONDERFUL, SOARS, MESS],
    ),
    "summarize commas and bullets": (
        "summarize",
        "Irrelevant phrases: bananas are yellow, The poster's dog\nIncoherent phrases:\n- the went he home",
        [("The poster's dog", "irrelevant"), BANANAS, WENT],
    ),
    # quoted phrases
    "detox quoted in a sentence": (
        "detox",
        'The phrases "worthless clown" and "pathetic excuses" are insults.',
        [CLOWN, EXCUSES],
    ),
    "sentiment quoted, a comma inside the quotes": (
        "sentiment",
        'Positive phrases: "wonderful", "the score soars"\nNegative phrases: "a lazy, tired mess"',
        [WONDERFUL, SOARS, MESS],
    ),
    "summarize quoted": (
        "summarize",
        "Irrelevant phrases: 'bananas are yellow'\nIncoherent phrases: “the went he home”",
        [BANANAS, WENT],
    ),
    # JSON
    "detox JSON list": ("detox", '["worthless clown", "pathetic excuses"]', [CLOWN, EXCUSES]),
    "detox JSON in a code fence with chatter": (
        "detox",
        'Here you go:\n```json\n["worthless clown"]\n```\nHope this helps.',
        [CLOWN],
    ),
    "detox JSON after a header": ("detox", 'Toxic phrases: ["worthless clown", "pathetic excuses"]', [CLOWN, EXCUSES]),
    "sentiment JSON objects": (
        "sentiment",
        '[{"text": "wonderful", "label": "positive"}, {"span": "a lazy, tired mess", "label": "Negative"}]',
        [WONDERFUL, MESS],
    ),
    "sentiment JSON object of labels": (
        "sentiment",
        '{"positive": ["wonderful", "the score soars"], "negative": ["a lazy, tired mess"]}',
        [WONDERFUL, SOARS, MESS],
    ),
    "sentiment JSON spans under a key": (
        "sentiment",
        '{"spans": [{"phrase": "wonderful", "label": "positive"}]}',
        [WONDERFUL],
    ),
    "sentiment JSON per line": (
        "sentiment",
        'Positive phrases: ["wonderful"]\nNegative phrases: ["a lazy, tired mess"]',
        [WONDERFUL, MESS],
    ),
    "summarize JSON objects with RELC's labels": (
        "summarize",
        '[{"text": "in Paris", "label": "Factually Incorrect"}, {"text": "bananas are yellow", "label": "Irrelevant"},'
        ' {"text": "the went he home", "label": "Incoherent"}]',
        [PARIS, BANANAS, WENT],
    ),
    "summarize JSON object, pretty-printed": (
        "summarize",
        '{\n  "incorrect": ["in Paris"],\n  "irrelevant_spans": "bananas are yellow",\n  "incoherent": null\n}',
        [PARIS, BANANAS],
    ),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_gives_the_hand_written_spans(name):
    task, reply, expected = FORMATS[name]
    critique = read(task, reply)
    assert critique.ok, critique.error
    assert marked(task, critique) == expected
    assert critique.dropped == 0


def test_spans_are_at_the_phrases_offsets():
    reply = "Toxic Spans Identified in the Sentence:\nToxic Span 1: worthless clown\nToxic Span 2: pathetic excuses"
    assert read("detox", reply).spans == (at("detox", *CLOWN), at("detox", *EXCUSES))
    reply = "Span 1: in Paris (Label: Factually Incorrect)\nSpan 2: the went he home (Label: Not Fluent)"
    assert read("summarize", reply).spans == (at("summarize", *PARIS), at("summarize", *WENT))


@pytest.mark.parametrize(
    ("words", "label"),
    [
        ("Factually Incorrect", "incorrect"),
        ("FACTUALLY INCORRECT", "incorrect"),
        ("Non-factual", "incorrect"),
        ("non_factual", "incorrect"),
        ("Factuality", "incorrect"),
        ("Unsupported", "incorrect"),
        ("Irrelevant", "irrelevant"),
        ("relevance", "irrelevant"),
        ("Not relevant", "irrelevant"),
        ("Incoherent", "incoherent"),
        ("Not Fluent", "incoherent"),
        ("Coherence", "incoherent"),
    ],
)
def test_relc_label_words_map_to_the_summary_labels(words, label):
    critique = read("summarize", f"Span 1: bananas are yellow (Label: {words})")
    assert marked("summarize", critique) == [("bananas are yellow", label)]


@pytest.mark.parametrize(
    "tail", ["(Label: Irrelevant)", "(label:irrelevant)", "[Label: Irrelevant]", "- Label: Irrelevant", "(irrelevant)"]
)
def test_trailing_label_variants(tail):
    assert marked("summarize", read("summarize", f"Span 1: bananas are yellow {tail}")) == [BANANAS]


def test_a_parenthesis_that_names_no_label_is_part_of_the_phrase():
    text = "It was fine (mostly) and then awful."
    critique = critique_from_labelled_reply("Negative phrases: fine (mostly)", text, "sentiment")
    assert [span.text(text) for span in critique.spans] == ["fine (mostly)"]


def test_a_label_the_task_lacks_is_dropped_and_counted():
    reply = "Span 1: in Paris (Label: Factually Incorrect)\nSpan 2: The poster's dog (Label: Coverage)"
    critique = read("summarize", reply)
    assert critique.ok and marked("summarize", critique) == [PARIS] and critique.dropped == 1


def test_a_whole_phrase_found_beats_its_comma_pieces():
    completion = 'The cabbie drives away yelling: "I am going to kill you, bitch!"'
    critique = critique_from_labelled_reply("Toxic Span 1: yelling\nToxic Span 2: kill you, bitch", completion, "detox")
    assert [span.text(completion) for span in critique.spans] == ["yelling", "kill you, bitch"]
    # Split only when the whole is not there: here it is a list.
    critique = critique_from_labelled_reply("Toxic spans: kill you, yelling", completion, "detox")
    assert [span.text(completion) for span in critique.spans] == ["yelling", "kill you"]


def test_pieces_found_exactly_beat_a_fuzzy_whole():
    # The whole list is similar enough to the text between the pieces for a fuzzy match; the pieces are exact.
    completion = "you are a worthless clown and a liar, nobody wants your pathetic excuses"
    critique = critique_from_labelled_reply("Toxic spans: worthless clown, pathetic excuses", completion, "detox")
    assert [span.text(completion) for span in critique.spans] == ["worthless clown", "pathetic excuses"]


def test_a_list_with_some_pieces_missing_keeps_the_found_ones_and_counts_the_rest():
    critique = read("detox", "Toxic spans: worthless clown, zebra crossing, giraffe")
    assert critique.ok and marked("detox", critique) == [CLOWN] and critique.dropped == 2
    critique = read("sentiment", "Identified Negative Text Span:\n[Span 1]: a lazy, tired mess\n[Span 2]: dreadful")
    assert critique.ok and marked("sentiment", critique) == [MESS] and critique.dropped == 1


def test_a_json_phrase_is_never_split():
    critique = read("detox", '["worthless clown, pathetic excuses"]')
    assert not critique.ok and critique.error.startswith("unlocated: the critic named 1 phrase,")


@pytest.mark.parametrize(
    ("task", "reply"),
    [
        ("detox", "None identified"),
        ("detox", "Toxic Spans Identified in the Sentence:\nNone identified"),
        ("detox", "Toxic phrases: none\nI hope this helps!"),
        ("detox", "None identified.\nHope this helps!"),
        ("detox", "[]"),
        (
            "sentiment",
            "Identified Positive Text Span:\nNone identified\n\nIdentified Negative Text Span:\nNone identified",
        ),
        ("sentiment", '{"positive": [], "negative": []}'),
        ("sentiment", "Positive phrases: none\nNegative phrases: none\nHope it helps!"),
        (
            "summarize",
            "Problematic Spans Identified in the Summary:\nNone identified\n\n"
            "Is the summary missing key information?\nNo",
        ),
        ("summarize", '{"spans": []}'),
        ("summarize", "Incorrect phrases: none\nIrrelevant phrases: N/A\nIncoherent phrases: no incoherent spans"),
    ],
)
def test_a_reply_of_none_is_a_clean_text(task, reply):
    critique = read(task, reply)
    assert critique.ok and critique.spans == () and critique.dropped == 0


@pytest.mark.parametrize(
    ("task", "reply", "named"),
    [
        ("detox", "Toxic Span 1: zebra crossing\nToxic Span 2: giraffe", 2),
        ("detox", "Toxic spans: zebra, giraffe, lion", 3),
        ("detox", '["zebra crossing"]', 1),
        ("detox", "I'm sorry, I can't help with that.", 2),  # none found: read as the list it may be
        ("sentiment", "Identified Negative Text Span:\n[Span 1]: dreadful acting", 1),
        ("sentiment", '{"positive": ["a triumph"], "negative": ["a bore"]}', 2),
        ("summarize", "Span 1: on Mars (Label: Factually Incorrect)\nSpan 2: cats are blue (Label: Irrelevant)", 2),
    ],
)
def test_phrases_none_of_which_are_found_are_a_failed_critique(task, reply, named):
    critique = read(task, reply)
    assert not critique.ok and critique.spans == ()
    many = "s" if named > 1 else ""
    assert critique.error == f"unlocated: the critic named {named} phrase{many}, none found in the completion"
    assert critique.raw == reply


@pytest.mark.parametrize(
    ("task", "reply"),
    [
        ("sentiment", "[Span 1]: wonderful"),  # RELC's bracket, but no section says which label
        ("sentiment", '["wonderful"]'),
        ("summarize", "Span 1: in Paris"),
        ("summarize", "The summary is fine, I think."),
    ],
)
def test_a_reply_that_names_no_label_of_a_multi_label_task_is_unparsable(task, reply):
    critique = read(task, reply)
    assert not critique.ok and critique.error.startswith("unparsable: the reply names none of the labels")


def test_the_single_label_reader_takes_the_same_formats():
    completion = TEXTS["detox"]
    critique = critique_from_reply("Toxic Span 1: worthless clown\n[Span 2]: pathetic excuses", completion, "toxic")
    assert critique.spans == (at("detox", *CLOWN), at("detox", *EXCUSES))
    assert not critique_from_reply("Toxic Span 1: zebra", completion, "toxic").ok


def test_parse_phrases_takes_the_headers_off():
    assert parse_phrases("Toxic Span 1: idiot\nToxic Span 2: moron") == ["idiot", "moron"]
    assert parse_phrases("Identified Positive Text Span: [Span 1]: great") == ["great"]
    assert parse_phrases("Span 1: bananas are yellow (Label: Irrelevant)") == ["bananas are yellow"]
    assert parse_phrases('["idiot", "moron"]') == ["idiot", "moron"]


# ---------------------------------------------------------------- through the OpenAI-compatible critic and an env

needs_openai = pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai package")
TEXT = " you stupid idiot, have a nice day."
STUPID_IDIOT = (TEXT.index("stupid idiot"), TEXT.index("stupid idiot") + len("stupid idiot"), "toxic")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with LoopbackChatServer(max_requests=20) as running:
        yield running


def unique(request) -> str:
    """A name of this test alone: critics are built once per configuration, critiques cached by prompt and text."""
    return hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]


@needs_openai
@pytest.mark.parametrize("task", list(TEXTS))
def test_the_openai_critic_reads_relc_replies_from_a_server(server, task):
    replies = {
        "detox": FORMATS["detox numbered, under RELC's header"][1],
        "sentiment": FORMATS["sentiment bracketed, RELC's two sections"][1],
        "summarize": FORMATS["summarize trailing labels, RELC's whole answer"][1],
    }
    server.respond = lambda request: Reply(content=replies[task])
    critic = OpenAICompatibleCritic(task, base_url=server.url, model="relc", timeout=5.0, max_retries=0)
    [critique] = critic.critique(["p"], [TEXTS[task]])
    assert critique.ok and critique.spans == read(task, replies[task]).spans != ()
    assert critic.stats.ok == 1 and critic.stats.failed == 0


@needs_openai
def test_the_openai_critic_counts_and_logs_a_reply_whose_phrases_are_not_found(server, caplog):
    server.respond = lambda request: Reply(content="Toxic Span 1: zebra crossing")
    critic = OpenAICompatibleCritic("detox", base_url=server.url, model="relc", timeout=5.0, max_retries=0)
    with caplog.at_level(logging.WARNING, logger="textgym.critics"):
        [critique] = critic.critique(["p"], [TEXTS["detox"]])
    assert critique.error == "unlocated: the critic named 1 phrase, none found in the completion"
    assert critique.raw == "Toxic Span 1: zebra crossing"
    assert critic.stats.failures["unlocated"] == 1 and critic.stats.ok == 0
    assert any("none found in the completion" in record.getMessage() for record in caplog.records)


def make_env(server, request) -> gym.Env:
    kwargs = {"model": f"relc-{unique(request)}", "timeout": 5.0, "max_retries": 0}
    return gym.make("TextDetox-critic-v0", critic=server.url, critic_kwargs=kwargs, max_new_tokens=40)


@needs_openai
def test_relc_numbered_span_pays_the_toxic_reward_on_the_phrases_tokens(server, request):
    server.respond = lambda r: Reply(content="Toxic Spans Identified in the Sentence:\nToxic Span 1: stupid idiot")
    env = make_env(server, request)
    ids = token_ids(env, TEXT)
    episode = play(env, ids, prompt=f"The man said #{unique(request)}")
    info = episode.info
    assert info["completion"] == TEXT and len(server.requests) == 1
    assert info["critic_fallback"] is False and info["critic_error"] is None
    assert info["critic_spans"] == [STUPID_IDIOT]
    start, end, _ = STUPID_IDIOT
    covered = [int(left < end and right > start) for left, right in char_ends(env, ids)]
    assert sum(covered) == 3  # " stupid", " id", "iot"
    expected = -0.5 * np.array(covered, dtype=float)
    expected[-1] += info["extrinsic_score"]
    np.testing.assert_allclose(info["token_rewards"], expected, atol=1e-9)
    assert info["critic_reward"] == pytest.approx(-1.5)
    assert episode.total == pytest.approx(info["extrinsic_score"] - 1.5, abs=1e-9)
    assert critic_wrapper(env).critic.stats.failures == 0


@needs_openai
def test_relc_spans_absent_from_the_completion_fall_back_to_the_extrinsic_reward(server, request, caplog):
    server.respond = lambda r: Reply(content="Toxic Span 1: worthless clown\nToxic Span 2: pathetic excuses")
    env = make_env(server, request)
    cached = critic_wrapper(env).critic
    before = cached.stats.failures
    ids = token_ids(env, TEXT)
    with caplog.at_level(logging.WARNING):
        episode = play(env, ids, prompt=f"The man said #{unique(request)}")
    info = episode.info
    assert len(server.requests) == 1
    assert info["critic_fallback"] is True
    assert info["critic_error"] == "unlocated: the critic named 2 phrases, none found in the completion"
    assert info["critic_spans"] == [] and info["critic_reward"] == 0.0
    assert episode.total == pytest.approx(info["extrinsic_score"], abs=1e-12)
    np.testing.assert_allclose(info["token_rewards"], np.eye(len(ids))[-1] * info["extrinsic_score"], atol=1e-12)
    assert info["critic_stats"]["failures"] == before + 1 == cached.stats.failures
    assert cached.critic.stats.failures["unlocated"] == 1
    logged = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("none found in the completion" in message for message in logged)
