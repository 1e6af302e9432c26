"""The few-shot judges (textgym.scorers.fewshot_judge) where their model is: its dtype, and a live model object.

A tiny config-built Llama with the real tokenizer stands in for SmolLM2; the real model's bfloat16 scores are
checked in ``test_sentiment_lm.py``, and on a GPU in ``tests/test_cuda_scorers.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textgym.error import SettingsError
from textgym.models import load_causal_lm, load_tokenizer
from textgym.scorers.fewshot_judge import ContextGainJudge, FewShotMarginJudge
from textgym.scorers.sentiment_lm import PREFIX, QUERY, LMSentimentScorer

TEXTS = [
    "An absolute delight from start to finish.",
    "A boring, ugly mess with terrible acting.",
    "I loved it.",
    "The worst film of the year, dull and far too long, with a plot that makes no sense at all.",
    "",
]


def test_a_bfloat16_scorer_loads_bfloat16_weights_and_scores_within_0_02_of_float32(tiny_lm_folder):
    full = LMSentimentScorer(model=str(tiny_lm_folder))
    half = LMSentimentScorer(model=str(tiny_lm_folder), dtype="bfloat16")
    weight = next(half.judge.model.parameters())
    assert (weight.dtype, weight.device.type) == (torch.bfloat16, "cpu")
    assert next(full.judge.model.parameters()).dtype == torch.float32  # the shared float32 copy is untouched
    expected, got = np.asarray(full(TEXTS)), np.asarray(half(TEXTS))
    assert expected.max() - expected.min() > 0.05  # the tiny model tells these texts apart
    assert np.abs(got - expected).max() < 0.02
    assert not np.array_equal(got, expected)  # it really ran in bfloat16


def test_a_live_bfloat16_model_is_judged_where_it_is(tiny_lm_folder):
    tokenizer = load_tokenizer(str(tiny_lm_folder))
    live = load_causal_lm(str(tiny_lm_folder), dtype="bfloat16")
    args = (tokenizer, PREFIX, QUERY, (" positive", " negative"))
    margins = FewShotMarginJudge(live, *args, batch_size=2).margins(TEXTS)
    assert margins.dtype == np.float64 and margins.shape == (len(TEXTS),)
    expected = FewShotMarginJudge(load_causal_lm(str(tiny_lm_folder)), *args).margins(TEXTS)
    np.testing.assert_allclose(margins, expected, atol=0.1)


def test_the_context_gain_judge_in_bfloat16_is_close_to_float32(tiny_lm_folder):
    tokenizer = load_tokenizer(str(tiny_lm_folder))
    query = "Post: {context}\nSummary: {text}"
    texts, contexts = TEXTS[:4], ["I went to the cinema last night and the film was great."] * 4
    full = ContextGainJudge(load_causal_lm(str(tiny_lm_folder)), tokenizer, "", query).margins(texts, contexts)
    half = ContextGainJudge(load_causal_lm(str(tiny_lm_folder), dtype="bfloat16"), tokenizer, "", query, batch_size=3)
    np.testing.assert_allclose(half.margins(texts, contexts), full, atol=0.05)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_a_cuda_scorer_without_cuda_says_how_to_fix_it(tiny_lm_folder):
    with pytest.raises(SettingsError, match="needs CUDA.*device='cpu'"):
        LMSentimentScorer(model=str(tiny_lm_folder), device="cuda")


# ---------------------------------------------------------------- shared heads against whole forward passes

POSTS = ["I went to the cinema last night and the film was great.", "My landlord raised the rent again.", ""]


def whole_logits(model, ids: list[int]) -> torch.Tensor:
    """The logits of every position of ``ids`` run alone, without a cache or padding."""
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].double()


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_margins_are_those_of_each_query_run_whole_after_the_prefix(tiny_lm_folder, batch_size):
    """Queries that share their part before the text (its head: the post here) share one pass of it, in batches
    of several heads and of rests of similar length; each margin is still that of the whole query run alone."""
    model, tokenizer = load_causal_lm(str(tiny_lm_folder)), load_tokenizer(str(tiny_lm_folder))
    judge = FewShotMarginJudge(
        model, tokenizer, PREFIX, "Post: {context}\nSummary: {text}\nGood:", (" yes", " no"), batch_size=batch_size
    )
    texts = [TEXTS[k % len(TEXTS)] for k in range(9)]
    contexts = [POSTS[k % len(POSTS)] for k in range(9)]
    expected = []
    for text, context in zip(texts, contexts, strict=True):
        logits = whole_logits(model, judge.prefix_ids[0].tolist() + judge.query_ids(text, context))[-1]
        expected.append(float(logits[judge.answer_ids[0]] - logits[judge.answer_ids[1]]))
    assert np.ptp(expected) > 1e-3  # the tiny model tells these queries apart
    assert judge._runner._column_head is not None  # the answer columns only, checked against the full head
    np.testing.assert_allclose(judge.margins(texts, contexts), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(judge.margins(texts[2:3], contexts[2:3]), expected[2:3], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["gemma3-270m", "smollm2-135m-instruct"])
def test_the_answer_columns_alone_give_the_full_heads_margins_on_the_real_models(name):
    judge = FewShotMarginJudge(load_causal_lm(name), load_tokenizer(name), PREFIX, QUERY, (" positive", " negative"))
    assert judge._runner._column_head is not None
    columns = judge.margins(TEXTS)
    judge._runner._column_head = None  # the full vocabulary head, as before
    full = judge.margins(TEXTS)
    assert np.ptp(full) > 0.5
    np.testing.assert_allclose(columns, full, rtol=0, atol=1e-4)


def test_a_model_whose_logits_the_column_head_cannot_reproduce_keeps_the_full_head(tiny_lm_folder):
    # A soft-capping the model does not apply (a stand-in for any step after the decoder that the column head
    # does not know): the check at construction sees different logits, and the judge uses the full head.
    model, tokenizer = load_causal_lm(str(tiny_lm_folder)), load_tokenizer(str(tiny_lm_folder))
    reference = FewShotMarginJudge(model, tokenizer, PREFIX, QUERY, (" positive", " negative")).margins(TEXTS)
    model.config.final_logit_softcapping = 0.01
    try:
        judge = FewShotMarginJudge(model, tokenizer, PREFIX, QUERY, (" positive", " negative"))
        assert judge._runner._column_head is None
        np.testing.assert_allclose(judge.margins(TEXTS), reference, rtol=0, atol=1e-6)
    finally:
        del model.config.final_logit_softcapping


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_context_gains_are_those_of_each_sequence_run_whole(tiny_lm_folder, batch_size):
    model, tokenizer = load_causal_lm(str(tiny_lm_folder)), load_tokenizer(str(tiny_lm_folder))
    judge = ContextGainJudge(model, tokenizer, "Summaries.\n", "Post: {context}\nSummary: {text}", batch_size)
    texts = [TEXTS[k % len(TEXTS)] for k in range(8)]
    contexts = [POSTS[k % 2] for k in range(8)]

    def mean_log_likelihood(ids: list[int], n: int) -> float:
        logprobs = whole_logits(model, ids).log_softmax(-1)
        return float(np.mean([logprobs[len(ids) - n + k - 1, ids[len(ids) - n + k]] for k in range(n)])) if n else 0.0

    expected = [
        mean_log_likelihood(*judge.sequence(text, context)) - mean_log_likelihood(*judge.sequence(text, ""))
        for text, context in zip(texts, contexts, strict=True)
    ]
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(judge.margins(texts, contexts), expected, rtol=0, atol=1e-5)
