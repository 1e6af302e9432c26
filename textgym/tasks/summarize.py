"""Summarization: write a TL;DR of a short forum post.

The extrinsic score is :class:`~textgym.scorers.summary_quality.SummaryQualityScorer`: a weighted mean of ROUGE
against the reference, MiniLM similarity of summary to post, and a length term.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textgym.error import unknown_name
from textgym.tasks.base import PromptItem, Scorer, Task

TASK = Task(
    name="summarize",
    description="Write a TL;DR of a forum post; reward = ROUGE + similarity to the post + length term.",
    prompt_template="{source}\nTL;DR:",
    default_max_new_tokens=32,
    default_prompt_budget=192,
    default_scorer="rouge-minilm",
)
DATA_FILE = "summarize_posts.jsonl"
SCORERS = ("rouge-minilm",)


def build_scorer(name: str, **kwargs: Any) -> Scorer:
    """Builds the summary scorer; ``kwargs`` are :class:`SummaryQualityScorer`'s (weights, length bounds, device)."""
    if name != "rouge-minilm":
        raise unknown_name("summarize scorer", name, SCORERS)
    from textgym.scorers.summary_quality import SummaryQualityScorer

    quality = SummaryQualityScorer(**kwargs)

    def score(items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        return quality(completions, [item.source for item in items], [item.reference for item in items])

    return score
