"""Sentiment control: continue a movie-review opening so that the review reads positive.

The extrinsic score is the probability that the whole review (opening + completion) is positive: the opening is
part of what the reader reads, and the policy's job is to steer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textgym.tasks.base import PromptItem, Task

SCORERS = ("lm-fewshot",)
"""Built-in scorer names; any transformers sequence-classification id or folder works too."""


def review_text(item: PromptItem, completion: str) -> str:
    """The text the sentiment scorer reads: opening and completion joined as the policy wrote them."""
    return item.source + completion


class SentimentScore:
    """P(positive) of opening + completion, with the scorer's attribution over the completion's characters."""

    def __init__(self, positive: Any) -> None:
        self.positive = positive

    def __call__(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        """One score per (item, completion)."""
        return self.positive([review_text(item, text) for item, text in zip(items, completions, strict=True)])

    def attribution(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[np.ndarray]:
        """The scorer's per-character weights over each completion (the attention reward's input)."""
        texts = [review_text(item, text) for item, text in zip(items, completions, strict=True)]
        ranges = [(len(item.source), len(text)) for item, text in zip(items, texts, strict=True)]
        return self.positive.attribution(texts, ranges)


def build_scorer(name: str, device: str = "cpu", dtype: str = "float32", **kwargs: Any) -> SentimentScore:
    """Builds a sentiment scorer.

    Args:
        name: ``"lm-fewshot"`` (kwargs of :class:`~textgym.scorers.sentiment_lm.LMSentimentScorer`, e.g.
            ``model``), or a transformers sequence-classification id or folder (kwargs of
            :class:`~textgym.scorers.hf_classifier.ClassifierScorer`; ``label`` defaults to ``"positive"``).
        device: Where the scorer's model runs.
        dtype: Its weights, ``"float32"`` or ``"bfloat16"``.
        **kwargs: Passed to the scorer.
    """
    if name == "lm-fewshot":
        from textgym.scorers.sentiment_lm import LMSentimentScorer

        return SentimentScore(LMSentimentScorer(device=device, dtype=dtype, **kwargs))
    from textgym.scorers.hf_classifier import ClassifierScorer

    return SentimentScore(ClassifierScorer(name, device=device, dtype=dtype, **{"label": "positive", **kwargs}))


def metrics(scores: np.ndarray, texts: Sequence[str], items: Sequence[PromptItem]) -> dict[str, float]:
    """The share of completions judged positive."""
    from textgym.evaluation.metrics import positive_share

    return {"positive_share": positive_share(scores.ravel())}


TASK = Task(
    name="sentiment",
    title="Sentiment",
    description="Continue a movie-review opening; reward = probability that the review is positive.",
    prompt_template="{source}",
    default_max_new_tokens=24,
    default_prompt_budget=32,
    default_scorer="lm-fewshot",
    build_scorer=build_scorer,
    data_file="sentiment_prompts.jsonl",
    scorers=SCORERS,
    labels=("positive", "negative"),
    label_rewards={"positive": 0.5, "negative": -0.5},
    default_reward=0.0,
    critic_labels=("negative", "positive"),
    # Chosen on the gold spans' dev part (benchmarks/results/critic_choice.md): Gemma judges clauses better than
    # SmolLM2 (F1 0.55 against 0.52 untrimmed), and trimming them word by word lost more recall than it gained.
    default_critic={"type": "lm-judge", "model": "gemma3-270m", "trim": False},
    metrics=metrics,
    module=__name__,
)
