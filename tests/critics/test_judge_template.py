"""Judge templates with one question or several: parsing, the label of each question, the overlap rule, and the
``{extrinsic}`` field. The judging runs on a tiny config-built Llama with the real SmolLM2 tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from tests.tiny_model import tiny_llama_config
from textgym.critics.base import LABELS
from textgym.critics.cache import CachedCritic
from textgym.critics.segment_judge import KINDS, SegmentJudgeCritic, load_judge_spec
from textgym.critics.segmentation import clauses
from textgym.error import UnknownNameError
from textgym.models import load_tokenizer
from textgym.scorers.fewshot_judge import ContextGainJudge

POST = "I adopted a rescue dog who barks at night; the neighbours complained twice."
SUMMARY = "My rescue dog barks at night, neighbours complained, and I won a car in Paris."


def question(label: str, threshold: float | None = None, query: str = "Post: {context}\nPart: {text}\nBad:", **more):
    q = {
        "prefix": "Post: a cat naps\nPart: a cat naps\nBad: no\n\nPost: a cat naps\nPart: a dog sings\nBad: yes\n\n",
        "query": query,
        "answer_words": [" yes", " no"],
        "labels": {"high": label, "low": label},  # with threshold 0 every clause is flagged
        **more,
    }
    if threshold is not None:
        q["threshold"] = threshold
    return q


def write(tmp_path, spec, name="judge.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.fixture(scope="module")
def tiny():
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(tokenizer)).eval(), tokenizer


def judge(tiny, tmp_path, spec, **kwargs) -> SegmentJudgeCritic:
    model, tokenizer = tiny
    kwargs.setdefault("trim", False)
    return SegmentJudgeCritic(
        "summarize", model=model, tokenizer=tokenizer, template_path=write(tmp_path, spec), **kwargs
    )


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("task", sorted(LABELS))
def test_every_packaged_template_parses_into_questions_with_the_tasks_labels(task):
    spec = load_judge_spec(task)
    assert spec["questions"]
    for q in spec["questions"]:
        assert set(KINDS[q.get("kind", "answer")]) <= set(q)
        assert set(q["labels"].values()) <= set(LABELS[task])


def test_the_packaged_summary_judges_ask_one_question_per_label_and_only_supported_shows_the_extrinsic_score():
    from textgym.critics.prompts import template_path

    questions = load_judge_spec("summarize")["questions"]
    assert [next(iter(q["labels"].values())) for q in questions] == ["irrelevant", "incoherent"]
    assert not any("{extrinsic}" in q["query"] for q in questions)
    full = load_judge_spec("summarize", template_path("summarize", "summarize_judge_with_support.json"))["questions"]
    assert [next(iter(q["labels"].values())) for q in full] == ["incorrect", "irrelevant", "incoherent"]
    assert [("{extrinsic}" in q["query"]) for q in full] == [True, False, False]


def test_a_single_question_template_is_a_list_of_one(tmp_path):
    single = question("incorrect", calibration=["a", "b"])
    spec = load_judge_spec("summarize", write(tmp_path, {"about": "old format", **single}))
    assert spec == {"about": "old format", "questions": [single]}
    assert load_judge_spec("sentiment")["questions"][0]["labels"] == {"high": "positive", "low": "negative"}


def test_a_several_question_template_keeps_its_questions_in_order(tmp_path):
    questions = [question("incorrect", name="supported"), question("irrelevant"), question("incoherent")]
    assert load_judge_spec("summarize", write(tmp_path, {"questions": questions}))["questions"] == questions


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ({"prefix": "", "query": "{text}"}, ValueError, r"lacks the fields \['answer_words', 'labels'\]"),
        ({"questions": []}, ValueError, "'questions' must be a non-empty list"),
        (
            {"questions": [question("incorrect"), {**question("irrelevant", name="important"), "labels": None}]},
            ValueError,
            r"the labels of question 2 \('important'\) must map 'high' and/or 'low'",
        ),
        (
            {"questions": [{k: v for k, v in question("incorrect").items() if k != "prefix"}]},
            ValueError,
            r"question 1 lacks the fields \['prefix'\]",
        ),
        (
            {"questions": [question("incorrect", query="Score: {score}\nPart: {text}\nBad:")]},
            ValueError,
            r"uses the fields \['score', 'text'\]; it needs \{text\} and may use \{context\} and \{extrinsic\}",
        ),
        (
            {"questions": [question("incorrect", query="Part: {context}\nBad:")]},
            ValueError,
            r"it needs \{text\}",
        ),
        (
            {"questions": [question("incorect")]},
            UnknownNameError,
            r"Unknown summarize label 'incorect'\. Did you mean 'incorrect'\?",
        ),
        ({"questions": [{**question("incorrect"), "labels": {"up": "incorrect"}}]}, ValueError, "'high' and/or 'low'"),
    ],
)
def test_a_bad_template_says_what_is_wrong(tmp_path, spec, error, match):
    with pytest.raises(error, match=match):
        load_judge_spec("summarize", write(tmp_path, spec))


# ---------------------------------------------------------------- judging with several questions


def labels_by_clause(critique) -> list[str]:
    return [span.label for span in critique.spans]


def test_each_question_flags_with_its_own_label(tiny, tmp_path):
    first_only = judge(tiny, tmp_path, {"questions": [question("incorrect", 0.0), question("irrelevant", 1e9)]})
    [critique] = first_only.critique([POST], [SUMMARY])
    assert labels_by_clause(critique) == ["incorrect"] * len(clauses(SUMMARY))
    second_only = judge(tiny, tmp_path, {"questions": [question("incorrect", 1e9), question("incoherent", 0.0)]})
    [critique] = second_only.critique([POST], [SUMMARY])
    assert labels_by_clause(critique) == ["incoherent"] * len(clauses(SUMMARY))
    assert [(s.start, s.end) for s in critique.spans] == clauses(SUMMARY)  # untrimmed: whole clauses


def test_a_clause_flagged_twice_takes_the_label_whose_margin_passes_its_threshold_by_more(tiny, tmp_path):
    second_query = "Part: {text}\nPost: {context}\nBad:"
    spec = {"questions": [question("incorrect", 0.0), question("irrelevant", 0.0, query=second_query)]}
    critic = judge(tiny, tmp_path, spec)
    units = [(0, start, end) for start, end in clauses(SUMMARY)]
    fields = [{"extrinsic": "unknown"}]
    first = critic._effects(0, units, [POST], [SUMMARY], fields)
    second = critic._effects(1, units, [POST], [SUMMARY], fields)

    def expected(thresholds):
        out = []
        for a, b in zip(first, second, strict=True):
            pairs = zip((a, b), thresholds, ("incorrect", "irrelevant"), strict=True)
            passing = [(abs(m) - t, label) for m, t, label in pairs if abs(m) > t]
            if passing:
                out.append(max(passing, key=lambda pair: pair[0])[1])  # max keeps the first question on a tie
        return out

    [critique] = critic.critique([POST], [SUMMARY])
    assert labels_by_clause(critique) == expected((0.0, 0.0))
    assert len(set(expected((0.0, 0.0)))) == 2  # the two questions disagree on some clause: the rule matters
    assert [s.score for s in critique.spans] == pytest.approx(
        [max(abs(a), abs(b)) for a, b in zip(first, second, strict=True)]
    )
    # A higher threshold on the first question hands it fewer clauses.
    raised = sorted(abs(first))[len(first) // 2]
    critic.thresholds = [raised, 0.0]
    [critique] = critic.critique([POST], [SUMMARY])
    assert labels_by_clause(critique) == expected((raised, 0.0))


def test_trimming_with_several_questions_keeps_each_span_inside_its_clause(tiny, tmp_path):
    critic = judge(tiny, tmp_path, {"questions": [question("incorrect", 0.0), question("irrelevant", 0.0)]}, trim=True)
    [critique] = critic.critique([POST], [SUMMARY])
    assert len(critique.spans) == len(clauses(SUMMARY))
    for span, (start, end) in zip(critique.spans, clauses(SUMMARY), strict=True):
        assert start <= span.start < span.end <= end and span.label in ("incorrect", "irrelevant")


def test_the_critic_threshold_overrides_the_questions_thresholds(tiny, tmp_path):
    spec = {"questions": [question("incorrect", 0.0), question("irrelevant", 2.0)]}
    assert judge(tiny, tmp_path, spec).thresholds == [0.0, 2.0]
    assert judge(tiny, tmp_path, spec, threshold=0.7).thresholds == [0.7, 0.7]
    assert judge(tiny, tmp_path, {"questions": [question("incorrect")]}).thresholds == [0.5]


# ---------------------------------------------------------------- the extrinsic score


def test_the_extrinsic_score_is_shown_with_two_decimals_and_unknown_without_one(tiny, tmp_path):
    shows = question("incorrect", 0.0, query="Score: {extrinsic}\nPost: {context}\nPart: {text}\nBad:")
    critic = judge(tiny, tmp_path, {"questions": [shows]})
    assert critic.uses_extrinsic
    ids = critic.judges[0].query_ids("a part", "a post", {"extrinsic": "0.73"})
    assert critic.tokenizer.decode(ids) == "Score: 0.73\nPost: a post\nPart: a part\nBad:"

    text = "I won a car in Paris."
    unit = [(0, 0, len(text))]

    def margin(shown: str) -> float:
        return abs(float(critic._effects(0, unit, [POST], [text], [{"extrinsic": shown}])[0]))

    [scored] = critic.critique([POST], [text], [0.734])
    [unscored] = critic.critique([POST], [text])
    assert scored.spans[0].score == pytest.approx(margin("0.73"), abs=1e-6)
    assert unscored.spans[0].score == pytest.approx(margin("unknown"), abs=1e-6)
    assert margin("0.73") != pytest.approx(margin("unknown"), abs=1e-6)


def test_the_cache_keys_on_the_score_only_for_a_judge_that_shows_it(tiny, tmp_path):
    shows = question("incorrect", 0.0, query="Score: {extrinsic}\nPart: {text}\nBad:")
    hides = question("incorrect", 0.0)
    assert not judge(tiny, tmp_path, {"questions": [hides]}).uses_extrinsic
    for spec, calls in (({"questions": [shows]}, 2), ({"questions": [hides, hides]}, 1)):
        cached = CachedCritic(judge(tiny, tmp_path, spec))
        cached.critique([POST], [SUMMARY], [0.5])
        cached.critique([POST], [SUMMARY], [0.9])
        assert cached.stats.calls == calls


# ---------------------------------------------------------------- context-gain questions


def gain_question(label: str = "irrelevant", threshold: float = 0.0, **more):
    return {
        "kind": "context_gain",
        "query": "Post: {context}\nSummary part: {text}",
        "labels": {"low": label},
        "threshold": threshold,
        **more,
    }


def test_a_context_gain_question_needs_only_query_and_labels_and_a_query_ending_in_the_text(tmp_path):
    spec = load_judge_spec("summarize", write(tmp_path, {"questions": [gain_question()]}))
    assert spec["questions"] == [gain_question()]
    bad = {**gain_question(), "query": "Summary part: {text}\nPost: {context}"}
    with pytest.raises(ValueError, match=r"a context_gain question, must have \{context\} and end with \{text\}"):
        load_judge_spec("summarize", write(tmp_path, {"questions": [bad]}))
    with pytest.raises(UnknownNameError, match=r"Unknown judge question kind 'context-gain'\. Did you mean"):
        load_judge_spec("summarize", write(tmp_path, {"questions": [{**gain_question(), "kind": "context-gain"}]}))
    with pytest.raises(ValueError, match=r"question 1 lacks the fields \['labels'\]"):
        load_judge_spec("summarize", write(tmp_path, {"questions": [{"kind": "context_gain", "query": "{text}"}]}))


def test_context_gain_is_the_mean_log_probability_gain_of_the_text_tokens(tiny):
    model, tokenizer = tiny
    judge = ContextGainJudge(model, tokenizer, "", "Post: {context}\nSummary part: {text}", batch_size=3)
    texts = ["My dog barks at night.", "I won a car.", "ok", "The neighbours complained twice about the noise."]
    batched = judge.margins(texts, [POST] * len(texts))
    assert batched == pytest.approx([judge.margins([text], [POST])[0] for text in texts], abs=1e-5)

    def mean_logprob(context: str, text: str) -> float:  # one unpadded sequence, every position's logits
        head = tokenizer(f"Post: {context}\nSummary part:").input_ids
        tail = tokenizer(" " + text, add_special_tokens=False).input_ids
        ids = torch.tensor([head + tail])
        with torch.inference_mode():
            logprobs = model(input_ids=ids).logits[0, :-1].double().log_softmax(-1)
        picked = logprobs[torch.arange(ids.shape[1] - 1), ids[0, 1:]]
        return picked[-len(tail) :].mean().item()

    expected = [mean_logprob(POST, text) - mean_logprob("", text) for text in texts]
    assert batched == pytest.approx(expected, abs=1e-4)


def test_a_context_gain_question_flags_low_gain_clauses_with_its_label(tiny, tmp_path):
    critic = judge(tiny, tmp_path, {"questions": [gain_question("irrelevant", 0.0)]})
    units = [(0, start, end) for start, end in clauses(SUMMARY)]
    gains = critic._effects(0, units, [POST], [SUMMARY], [{"extrinsic": "unknown"}])
    critic.biases[0] = float(np.median(gains))  # as a calibration set would centre them
    [critique] = critic.critique([POST], [SUMMARY])
    flagged = [(start, end) for (_, start, end), gain in zip(units, gains, strict=True) if gain < critic.biases[0]]
    assert 0 < len(flagged) < len(units)
    assert [(s.start, s.end) for s in critique.spans] == flagged
    assert {s.label for s in critique.spans} <= {"irrelevant"}
