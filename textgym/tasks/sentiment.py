"""Sentiment control: continue a movie-review opening so that the review reads positive.

The extrinsic score is the probability that the whole review (opening + completion) is positive: the opening is
part of what the reader reads, and the policy's job is to steer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textgym.tasks.base import PromptItem, Scorer, Task

TASK = Task(
    name="sentiment",
    description="Continue a movie-review opening; reward = probability that the review is positive.",
    prompt_template="{source}",
    default_max_new_tokens=24,
    default_prompt_budget=32,
    default_scorer="lm-fewshot",
)
DATA_FILE = "sentiment_prompts.jsonl"
SCORERS = ("lm-fewshot",)
"""Built-in scorer names; any transformers sequence-classification id or folder works too."""


def review_text(item: PromptItem, completion: str) -> str:
    """The text the sentiment scorer reads: opening and completion joined as the policy wrote them."""
    return item.source + completion


def build_scorer(name: str, device: str = "cpu", dtype: str = "float32", **kwargs: Any) -> Scorer:
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

        positive = LMSentimentScorer(device=device, dtype=dtype, **kwargs)
    else:
        from textgym.scorers.hf_classifier import ClassifierScorer

        positive = ClassifierScorer(name, device=device, dtype=dtype, **{"label": "positive", **kwargs})

    def score(items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        return positive([review_text(item, text) for item, text in zip(items, completions, strict=True)])

    return score
