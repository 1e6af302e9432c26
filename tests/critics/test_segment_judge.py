"""SegmentJudgeCritic with the real default LM (SmolLM2-135M), named and as a live model object."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
import torch

import textgym  # noqa: F401  (registers the environment ids)
from textgym.critics.base import LABELS
from textgym.critics.cache import CachedCritic
from textgym.critics.registry import build_critic
from textgym.critics.segment_judge import SegmentJudgeCritic
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm, load_tokenizer
from textgym.wrappers.critic_reward import CriticRewardWrapper

REVIEW = "I loved every minute of it, a wonderful film. The ending was awful and dull."
MIXED = "The acting was superb, but the plot was a boring mess."


@pytest.fixture(scope="module")
def judge() -> SegmentJudgeCritic:
    """The registry's sentiment LM judge (the object the sentiment environments use)."""
    critic = build_critic("sentiment", "lm-judge")
    assert isinstance(critic, SegmentJudgeCritic)
    return critic


def covers(critique, text: str, word: str, label: str) -> bool:
    start = text.index(word)
    return any(s.label == label and s.start < start + len(word) and start < s.end for s in critique.spans)


def triples(critique) -> list[tuple[int, int, str]]:
    return [(span.start, span.end, span.label) for span in critique.spans]


def test_positive_and_negative_clauses_get_their_labels(judge):
    review, mixed = judge.critique(["The movie", "The movie"], [REVIEW, MIXED])
    for critique, text in ((review, REVIEW), (mixed, MIXED)):
        assert critique.ok and critique.spans
        assert [span.start for span in critique.spans] == sorted(span.start for span in critique.spans)
        for span in critique.spans:
            assert 0 <= span.start < span.end <= len(text) and span.label in LABELS["sentiment"]
            assert span.score > judge.thresholds[0]
    detail = [(span.text(REVIEW), span.label) for span in review.spans]
    assert covers(review, REVIEW, "wonderful", "positive") and covers(review, REVIEW, "awful", "negative"), detail
    assert not covers(review, REVIEW, "wonderful", "negative") and not covers(review, REVIEW, "awful", "positive")
    assert covers(mixed, MIXED, "superb", "positive") and covers(mixed, MIXED, "boring", "negative")


def test_a_batch_gives_what_one_text_at_a_time_gives(judge):
    batch = judge.critique(["The movie"] * 3, [REVIEW, MIXED, ""])
    assert batch[2].ok and batch[2].spans == ()
    for text, critique in zip([REVIEW, MIXED], batch[:2], strict=True):
        [alone] = judge.critique(["The movie"], [text])
        assert triples(alone) == triples(critique)
        assert [s.score for s in alone.spans] == pytest.approx([s.score for s in critique.spans], abs=1e-3)


def test_a_live_model_judges_like_the_named_one_and_refresh_bumps_the_version(judge):
    live = SegmentJudgeCritic("sentiment", model=load_causal_lm(), tokenizer=load_tokenizer())
    assert live.version == 1 and live.biases == pytest.approx(judge.biases, abs=1e-4)
    key = live.config_key()
    assert key.startswith("SegmentJudgeCritic:sentiment:live:") and ":v1:" in key
    cached = CachedCritic(live)
    [by_live] = cached.critique(["The movie"], [MIXED])
    [named] = judge.critique(["The movie"], [MIXED])
    assert by_live.spans and triples(by_live) == triples(named)

    live.refresh()  # e.g. after a training step changed the weights
    assert live.version == 2 and live.config_key() == key.replace(":v1:", ":v2:")
    cached.critique(["The movie"], [MIXED])
    assert cached.stats.calls == 2 and cached.stats.hits == 0  # the old critique belongs to the old weights


def test_a_named_model_is_loaded_in_the_dtype_asked_and_a_live_one_runs_as_it_is(tiny_lm_folder):
    folder = str(tiny_lm_folder)
    full = SegmentJudgeCritic("sentiment", model=folder)
    half = SegmentJudgeCritic("sentiment", model=folder, dtype="bfloat16")
    assert half.model is load_causal_lm(folder, "cpu", "bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert ":cpu/bfloat16:" in half.config_key() and ":cpu/float32:" in full.config_key()
    assert half.biases == pytest.approx(full.biases, abs=0.1) and half.biases != full.biases
    assert len(half.critique(["The movie"], [MIXED])) == 1
    live = SegmentJudgeCritic("sentiment", model=half.model, tokenizer=load_tokenizer(folder), dtype="float32")
    assert live.model is half.model and live.placement == "cpu/bfloat16"  # a live model keeps its own placement


def test_a_live_model_needs_its_tokenizer():
    with pytest.raises(ValueError, match="A live model needs its tokenizer"):
        SegmentJudgeCritic("sentiment", model=load_causal_lm())


def test_a_template_without_its_fields_is_refused(tmp_path):
    path = tmp_path / "judge.json"
    path.write_text(json.dumps({"prefix": "Review: fine\nGood: yes\n\n", "query": "Review: {text}\nGood:"}))
    with pytest.raises(ValueError, match=r"lacks the fields \['answer_words', 'labels'\]"):
        SegmentJudgeCritic("sentiment", template_path=str(path))


DOG_POST = (
    "I adopted a rescue dog three weeks ago. He is sweet with people, but he barks nonstop whenever I leave the "
    "apartment, and my neighbour has already left a note on my door. Any tips for separation anxiety?"
)


@pytest.mark.slow
def test_the_summary_judge_flags_a_plainly_unsupported_clause_and_not_the_faithful_ones():
    critic = build_critic("summarize")  # the default summary critic: the untrimmed two-question judge
    assert isinstance(critic, SegmentJudgeCritic) and not critic.trim
    assert [q["name"] for q in critic.questions] == ["important", "clear"]  # no 'supported': SmolLM2 guesses it
    assert not critic.uses_extrinsic  # only the dropped question showed the summary's score
    invented = "I won a new car in Paris last week."
    faithful = "My rescue dog barks nonstop when I leave, and my neighbour left a note."
    summary = f"{faithful} {invented}"
    [mixed, clean] = critic.critique([DOG_POST] * 2, [summary, faithful], extrinsic=[0.8, 0.8])
    assert clean.ok and clean.spans == ()
    assert [span.text(summary) for span in mixed.spans] == [invented]
    # What catches the invented clause is the context-gain question (the post does not make it any likelier), whose
    # label is irrelevant; the offline default has no question whose label is incorrect.
    assert {span.label for span in mixed.spans} == {"irrelevant"}


def test_the_self_critic_judges_with_the_policy_model():
    env = gym.make("TextSentiment-critic-v0", critic="self", max_new_tokens=8)
    wrapper = env
    while not isinstance(wrapper, CriticRewardWrapper):
        wrapper = wrapper.env
    critic = wrapper.critic.critic
    assert isinstance(critic, SegmentJudgeCritic) and critic.model_name == env.unwrapped.model_name
    assert env.unwrapped.model_name == DEFAULT_POLICY_MODEL


def test_the_packaged_summary_template_with_support_adds_the_supported_question():
    from textgym.critics.prompts import template_path
    from textgym.critics.segment_judge import load_judge_spec

    default = load_judge_spec("summarize")
    full = load_judge_spec("summarize", template_path("summarize", "summarize_judge_with_support.json"))
    assert [q["name"] for q in full["questions"]] == ["supported", *(q["name"] for q in default["questions"])]
    assert full["questions"][0]["labels"] == {"high": "incorrect"} and "{extrinsic}" in full["questions"][0]["query"]
    assert full["questions"][1:] == default["questions"]  # the other questions are the default's, unchanged
