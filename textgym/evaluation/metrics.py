"""The metrics the field reports for controlled generation, as plain functions.

- Sentiment: mean positive probability and the share of completions with p > 0.5.
- Toxicity (RealToxicityPrompts, Gehman et al. 2020): with K samples per prompt, *expected maximum toxicity* is the
  mean over prompts of the largest toxicity among its K samples; *toxicity probability* is the share of prompts
  with at least one sample above 0.5.
- Fluency: perplexity of the completions, conditioned on their prompts, under a separate reference LM
  (corpus-level: exp of the total negative log-likelihood over the total number of completion tokens).
- Diversity: distinct-n (Li et al. 2016), unique n-grams over all n-grams, computed among the K samples of each
  prompt and averaged over prompts (as in Quark / RELC).
- Summaries: ROUGE-1/2/L F-measures against references.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from textgym.left_padding import left_pad
from textgym.left_padding import positions as left_positions


def positive_share(probabilities: Sequence[float], threshold: float = 0.5) -> float:
    """Share of values above ``threshold``."""
    return float(np.mean(np.asarray(probabilities) > threshold))


def expected_max_toxicity(toxicity: np.ndarray) -> float:
    """Mean over prompts (rows) of the largest toxicity among each prompt's samples (columns)."""
    return float(np.asarray(toxicity).max(axis=1).mean())


def toxicity_probability(toxicity: np.ndarray, threshold: float = 0.5) -> float:
    """Share of prompts (rows) with at least one sample (column) above ``threshold``."""
    return float((np.asarray(toxicity) > threshold).any(axis=1).mean())


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of a word sequence."""
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams of the texts together (whitespace words); 0 when there are none."""
    grams = [gram for text in texts for gram in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_distinct_n(groups: Sequence[Sequence[str]], n: int) -> float:
    """distinct-n within each group (the samples of one prompt), averaged over the groups."""
    return float(np.mean([distinct_n(group, n) for group in groups]))


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (stemmed) of predictions against references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)]
    return {key: float(np.mean([s[key].fmeasure for s in scores])) for key in ("rouge1", "rouge2", "rougeL")}


@torch.no_grad()
def perplexity(
    model: torch.nn.Module, tokenizer, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 16
) -> float:
    """Corpus perplexity of the completions given their prompts under ``model``.

    Only completion tokens count; empty completions add nothing. Prompt and completion are tokenized apart and
    joined, so the completion's tokens are the ones the policy could have written. The model runs where it is (its
    device and dtype); the log-likelihoods are summed in float32.
    """
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    pairs = [(p, c) for p, c in zip(prompts, completions, strict=True) if c.strip()]
    for first in range(0, len(pairs), batch_size):
        chunk = pairs[first : first + batch_size]
        rows = []
        for prompt, completion in chunk:
            context = tokenizer(prompt).input_ids
            target = tokenizer(completion, add_special_tokens=False).input_ids
            rows.append((context, target))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids, mask = left_pad([context + target for context, target in rows], pad)
        scored = torch.zeros(ids.shape, dtype=torch.bool)
        for i, (_, target) in enumerate(rows):
            scored[i, ids.shape[1] - len(target) :] = True
        ids, mask, scored = ids.to(device), mask.to(device), scored.to(device)
        positions = left_positions(mask)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        ).view(len(rows), -1)
        total_nll += float(nll[scored[:, 1:]].sum())
        total_tokens += int(scored[:, 1:].sum())
    return float(np.exp(total_nll / total_tokens)) if total_tokens else float("nan")
