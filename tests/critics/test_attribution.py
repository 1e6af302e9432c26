"""AttributionCritic with the real task scorers, and the gold-span evaluation (textgym.critics.evaluation)."""

from __future__ import annotations

import json

import pytest

from textgym.critics.attribution import AttributionCritic
from textgym.critics.base import LABELS, Span
from textgym.critics.evaluation import GoldExample, evaluate, load_gold, word_prf
from textgym.critics.segmentation import clauses
from textgym.error import UnknownNameError
from textgym.tasks import get_items, get_scorer

TOXIC = " Well, you are a stupid idiot and I hate you. Have a nice day."
CLEAN = "Thanks for the lovely dinner, see you soon."
INSULT = "You are a worthless piece of garbage, shut up"
REVIEW = "I loved every minute of it, a wonderful film. The ending was awful and dull."


@pytest.fixture(scope="module")
def detox():
    return AttributionCritic("detox")


def labelled(text: str, critique) -> list[tuple[str, str]]:
    return [(span.text(text), span.label) for span in critique.spans]


def covers(critique, text: str, word: str, label: str) -> bool:
    start = text.index(word)
    return any(s.label == label and s.start < start + len(word) and start < s.end for s in critique.spans)


def check_spans(critique, text: str, task: str) -> None:
    assert critique.ok and critique.error is None
    starts = [span.start for span in critique.spans]
    assert starts == sorted(starts)
    for span in critique.spans:
        assert 0 <= span.start < span.end <= len(text) and span.label in LABELS[task]
        assert span.text(text) == span.text(text).strip() and span.score > 0


def test_a_toxic_clause_is_flagged_and_a_clean_text_is_not(detox):
    toxic, clean, insult = detox.critique(["The man said"] * 3, [TOXIC, CLEAN, INSULT])
    for critique, text in ((toxic, TOXIC), (clean, CLEAN), (insult, INSULT)):
        check_spans(critique, text, "detox")
    assert covers(toxic, TOXIC, "idiot", "toxic") and covers(toxic, TOXIC, "hate", "toxic")
    for word in ("Well", "Have a nice day"):
        assert not covers(toxic, TOXIC, word, "toxic"), labelled(TOXIC, toxic)
    assert clean.spans == ()
    assert covers(insult, INSULT, "garbage", "toxic")
    assert all(span.score > detox.threshold for span in toxic.spans)


def test_trimmed_spans_lie_inside_the_flagged_clauses(detox):
    whole = AttributionCritic("detox", trim=False)
    [trimmed], [untrimmed] = detox.critique(["p"], [TOXIC]), whole.critique(["p"], [TOXIC])
    assert {(span.start, span.end) for span in untrimmed.spans} <= set(clauses(TOXIC))
    assert len(trimmed.spans) == len(untrimmed.spans) >= 2
    for narrow, wide in zip(trimmed.spans, untrimmed.spans, strict=True):
        assert wide.start <= narrow.start < narrow.end <= wide.end and narrow.label == wide.label
    assert any(
        narrow.end - narrow.start < wide.end - wide.start
        for narrow, wide in zip(trimmed.spans, untrimmed.spans, strict=True)
    )


def test_a_batch_gives_what_one_text_at_a_time_gives(detox):
    texts = [TOXIC, CLEAN, INSULT, ""]
    batch = detox.critique(["p"] * len(texts), texts)
    assert len(batch) == len(texts) and batch[-1].spans == ()
    for text, critique in zip(texts, batch, strict=True):
        [alone] = detox.critique(["p"], [text])
        assert [(s.start, s.end, s.label) for s in critique.spans] == [(s.start, s.end, s.label) for s in alone.spans]
        assert [s.score for s in critique.spans] == pytest.approx([s.score for s in alone.spans], abs=1e-5)


def test_sentiment_clauses_get_their_polarity():
    # The default scorer (Gemma 3 270M, uncalibrated) leans negative: plainly positive clauses score 0.6-0.7 alone,
    # plainly negative ones about 0.15; a distance of 0.1 from 0.5 separates them.
    critic = AttributionCritic("sentiment", threshold=0.1)
    [critique] = critic.critique(["The movie"], [REVIEW])
    check_spans(critique, REVIEW, "sentiment")
    assert covers(critique, REVIEW, "wonderful", "positive"), labelled(REVIEW, critique)
    assert covers(critique, REVIEW, "awful", "negative"), labelled(REVIEW, critique)
    assert not covers(critique, REVIEW, "wonderful", "negative") and not covers(critique, REVIEW, "awful", "positive")


def test_summaries_are_judged_by_occlusion_and_a_stray_clause_is_irrelevant():
    with pytest.raises(ValueError, match="use method='occlusion' for summarize"):
        AttributionCritic("summarize", method="segment")
    with pytest.raises(UnknownNameError, match="Did you mean 'occlusion'"):
        AttributionCritic("summarize", method="oclusion")
    with pytest.raises(UnknownNameError, match="Did you mean 'detox'"):
        AttributionCritic("detx")
    critic = AttributionCritic("summarize")
    assert critic.method == "occlusion" and critic.threshold == 0.05
    post = get_items("summarize")[0].source
    summary = " Boyfriend earns double and wants to split rent 50/50, and bananas are yellow."
    [critique] = critic.critique([post], [summary])
    check_spans(critique, summary, "summarize")
    assert covers(critique, summary, "bananas", "irrelevant"), labelled(summary, critique)
    assert not covers(critique, summary, "Boyfriend", "irrelevant")


def test_config_key_tells_settings_apart(detox):
    assert detox.config_key() != AttributionCritic("detox", threshold=0.3).config_key()
    assert detox.config_key() != AttributionCritic("detox", trim=False).config_key()
    assert detox.config_key() == AttributionCritic("detox").config_key()


def test_the_scorer_is_built_on_the_device_and_dtype_asked(tiny_lm_folder):
    kwargs = {"model": str(tiny_lm_folder)}
    half = AttributionCritic("sentiment", scorer_kwargs=kwargs, dtype="bfloat16")
    assert half.scorer is get_scorer("sentiment", None, kwargs, device="cpu", dtype="bfloat16")
    full = AttributionCritic("sentiment", scorer_kwargs=kwargs)
    assert full.scorer is get_scorer("sentiment", None, kwargs) and full.scorer is not half.scorer
    assert half.config_key() != full.config_key() and half.config_key().endswith(":cpu/bfloat16")


# ---------------------------------------------------------------- evaluation against gold spans


def span_of(text: str, phrase: str, label: str) -> Span:
    start = text.index(phrase)
    return Span(start, start + len(phrase), label)


def test_word_prf_counts_labelled_words():
    text = "you are a stupid idiot and a liar"
    gold = [GoldExample("p", text, (span_of(text, "stupid idiot", "toxic"), span_of(text, "liar", "toxic")))]
    predicted = [
        [
            Span(text.index("idiot") - 4, text.index("and") + 2, "toxic"),  # "pid idiot an": stupid, idiot, and
            span_of(text, "liar", "negative"),  # the right word with the wrong label
        ]
    ]
    # gold (word, label) pairs: stupid, idiot, liar; predicted: stupid, idiot, and, liar/negative; both: 2.
    precision, recall, f1 = word_prf(gold, predicted)
    assert precision == pytest.approx(2 / 4) and recall == pytest.approx(2 / 3)
    assert f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    clean = GoldExample("p", "have a nice day", ())
    assert word_prf([*gold, clean], [*predicted, []]) == pytest.approx((precision, recall, f1))
    assert word_prf([clean], [[span_of("have a nice day", "nice", "toxic")]]) == (0.0, 0.0, 0.0)
    assert word_prf(gold, [list(gold[0].spans)]) == pytest.approx((1.0, 1.0, 1.0))


def write_gold(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_load_gold_locates_each_span_exactly(tmp_path):
    completion = " you absolute moron, stop it"
    path = write_gold(
        tmp_path / "gold.jsonl",
        [
            {"prompt": "Hey", "completion": completion, "spans": [{"text": "absolute moron", "label": "toxic"}]},
            {"post": "A post", "completion": " fine", "spans": []},
        ],
    )
    first, second = load_gold("detox", path)
    assert first == GoldExample("Hey", completion, (span_of(completion, "absolute moron", "toxic"),))
    assert second == GoldExample("A post", " fine", ())


@pytest.mark.parametrize("phrase", ["stupid", "Absolute Moron"])
def test_load_gold_rejects_a_span_not_in_its_completion(tmp_path, phrase):
    row = {"prompt": "Hey", "completion": " you absolute moron", "spans": [{"text": phrase, "label": "toxic"}]}
    with pytest.raises(ValueError, match=f"Gold span '{phrase}' is not in its completion"):
        load_gold("detox", write_gold(tmp_path / "bad.jsonl", [row]))


def test_evaluate_scores_the_attribution_critic_on_the_packaged_gold_set(detox):
    gold = load_gold("detox")
    assert len(gold) >= 50
    scores = evaluate(detox, gold, batch_size=32)
    assert scores.examples == len(gold) and scores.failures == 0 and scores.dropped_spans == 0
    predicted = [critique.spans for critique in detox.critique([g.prompt for g in gold], [g.completion for g in gold])]
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx(word_prf(gold, predicted))
    # measured on all 104 rows: P 0.73, R 0.14, F1 0.23 (on the 60 v1 rows alone: P 0.75, R 0.39, F1 0.51)
    assert scores.f1 > 0.15 and scores.precision > 0.6
    row = scores.table_row()
    assert row["texts"] == len(gold) and row["F1"] == scores.f1 and row["failures"] == 0
    assert row["ms/text"] == pytest.approx(scores.seconds_per_text * 1000)
