"""Each task's default critic marks the same spans on a gold text in a batch as on the text alone.

A batch goes through the critic's models together (whole texts and occlusions in one scorer call, trimming rounds
over every text at once, shared query heads, rows batched by length), so only float rounding may differ: the spans
(start, end, label) must be equal, the scores close (the toxicity BiLSTM to 1e-6; SmolLM2's logit margins, of size
about 1, move by up to 3e-5 with the shape of the batch).
"""

from __future__ import annotations

import pytest

import textgym  # noqa: F401  (registers the tasks)
from textgym.critics.evaluation import load_gold
from textgym.critics.registry import build_critic


@pytest.mark.parametrize(
    ("task", "tolerance"),
    [
        ("detox", 1e-6),
        pytest.param("sentiment", 1e-4, marks=pytest.mark.slow),
        pytest.param("summarize", 1e-4, marks=pytest.mark.slow),
    ],
)
def test_a_batch_of_16_gold_texts_gets_the_spans_each_text_gets_alone(task, tolerance):
    every = load_gold(task)
    gold = every[:: max(1, len(every) // 16)][:16]  # 16 texts spread over the set: both sources, both parts
    prompts, texts = [g.prompt for g in gold], [g.completion for g in gold]
    critic = build_critic(task)
    alone = [critic.critique([prompt], [text])[0] for prompt, text in zip(prompts, texts, strict=True)]
    batched = critic.critique(prompts, texts)
    assert len(texts) == 16
    assert sum(len(critique.spans) for critique in alone) >= len(texts) / 4  # the critic marks something
    for text, one, many in zip(texts, alone, batched, strict=True):
        assert [(s.start, s.end, s.label) for s in many.spans] == [(s.start, s.end, s.label) for s in one.spans], text
        assert [s.score for s in many.spans] == pytest.approx([s.score for s in one.spans], abs=tolerance), text
