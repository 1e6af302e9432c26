"""Eval metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.tiny_model import save_tiny_causal_lm
from textgym.evaluation.metrics import (
    distinct_n,
    expected_max_toxicity,
    mean_distinct_n,
    perplexity,
    positive_share,
    rouge,
    toxicity_probability,
)
from textgym.models import load_causal_lm, load_tokenizer


def test_distinct_n_by_hand():
    texts = ["the cat sat", "the cat ran"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)  # the, cat, sat, ran of 6 words
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # (the cat) twice, (cat sat), (cat ran)
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)
    assert distinct_n(["a"], 2) == 0.0  # no bigrams at all
    assert mean_distinct_n([["a a", "a a"], ["b c"]], 1) == pytest.approx((1 / 4 + 2 / 2) / 2)


def test_toxicity_metrics_over_k_samples_by_hand():
    toxicity = np.array([[0.1, 0.7, 0.2], [0.3, 0.4, 0.45], [0.9, 0.95, 0.6]])
    assert expected_max_toxicity(toxicity) == pytest.approx((0.7 + 0.45 + 0.95) / 3)
    assert toxicity_probability(toxicity) == pytest.approx(2 / 3)
    assert positive_share([0.2, 0.5, 0.51, 0.9]) == pytest.approx(0.5)  # strictly above 0.5


def test_rouge_by_hand():
    scores = rouge(["the cat sat on the mat"], ["the cat lay on the mat"])
    # Unigrams: 5 of 6 match each way -> F1 5/6. Bigrams: (the cat), (on the), (the mat) of 5 -> 3/5.
    assert scores["rouge1"] == pytest.approx(5 / 6)
    assert scores["rouge2"] == pytest.approx(3 / 5)
    assert scores["rougeL"] == pytest.approx(5 / 6)  # LCS: the cat on the mat


def test_perplexity_equals_a_direct_computation(tmp_path):
    model = load_causal_lm(str(save_tiny_causal_lm(tmp_path / "tiny")))
    tokenizer = load_tokenizer()
    prompts, completions = ["Hello there", "A much longer prompt than the other one"], [" my friend", " ok"]
    nll, count = 0.0, 0
    for prompt, completion in zip(prompts, completions, strict=True):
        context = tokenizer(prompt).input_ids
        target = tokenizer(completion, add_special_tokens=False).input_ids
        ids = torch.tensor([context + target])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        for j, token in enumerate(target):
            nll -= float(logprobs[len(context) + j - 1, token])
            count += 1
    expected = math.exp(nll / count)
    assert perplexity(model, tokenizer, prompts, completions, batch_size=2) == pytest.approx(expected, rel=1e-4)
    assert perplexity(model, tokenizer, prompts, [" my friend", "  "]) == pytest.approx(
        perplexity(model, tokenizer, prompts[:1], completions[:1]), rel=1e-5
    )  # an empty completion adds nothing


def test_perplexity_of_a_bfloat16_model_is_close_to_float32(tiny_lm_folder):
    tokenizer = load_tokenizer()
    prompts, completions = ["Hello there", "A much longer prompt than the other one"], [" my friend", " ok then"]
    full = perplexity(load_causal_lm(str(tiny_lm_folder)), tokenizer, prompts, completions)
    half = perplexity(load_causal_lm(str(tiny_lm_folder), dtype="bfloat16"), tokenizer, prompts, completions)
    assert half == pytest.approx(full, rel=0.02) and half != full
