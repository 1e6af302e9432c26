"""Summarization: write a TL;DR of a short forum post.

The extrinsic score is :class:`~textgym.scorers.summary_quality.SummaryQualityScorer`: a weighted mean of ROUGE
against the reference, MiniLM similarity of summary to post, and a length term.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textgym.error import unknown_name
from textgym.tasks.base import PromptItem, Task

SCORERS = ("rouge-minilm",)


class SummaryScore:
    """The summary's quality, with the MiniLM encoder's attribution over the summary's characters."""

    def __init__(self, quality: Any) -> None:
        self.quality = quality

    def __call__(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        """One score per (item, completion)."""
        return self.quality(completions, [item.source for item in items], [item.reference for item in items])

    def attribution(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[np.ndarray]:
        """The scorer's per-character weights over each summary (the attention reward's input)."""
        return self.quality.attribution(list(completions), [(0, len(text)) for text in completions])


def build_scorer(name: str, **kwargs: Any) -> SummaryScore:
    """Builds the summary scorer; ``kwargs`` are :class:`SummaryQualityScorer`'s (weights, length bounds, device)."""
    if name != "rouge-minilm":
        raise unknown_name("summarize scorer", name, SCORERS)
    from textgym.scorers.summary_quality import SummaryQualityScorer

    return SummaryScore(SummaryQualityScorer(**kwargs))


def metrics(scores: np.ndarray, texts: Sequence[str], items: Sequence[PromptItem]) -> dict[str, float]:
    """ROUGE of each summary against its reference."""
    from textgym.evaluation.metrics import rouge

    return rouge(list(texts), [item.reference or "" for item in items])


TASK = Task(
    name="summarize",
    title="Summarize",
    description="Write a TL;DR of a forum post; reward = ROUGE + similarity to the post + length term.",
    prompt_template="{source}\nTL;DR:",
    default_max_new_tokens=32,
    default_prompt_budget=192,
    default_scorer="rouge-minilm",
    build_scorer=build_scorer,
    data_file="summarize_posts.jsonl",
    source_key="post",
    reference_key="summary",
    scorers=SCORERS,
    labels=("incorrect", "irrelevant", "incoherent"),
    label_rewards={"incorrect": -0.5, "irrelevant": -0.5, "incoherent": -0.5},
    default_reward=0.5,
    critic_labels=("irrelevant", None),
    clause_scorable=False,
    # Two questions (templates/summarize_judge.json: irrelevant, incoherent); no offline 'supported' question, since
    # SmolLM2 answers it at chance (benchmarks/results/critic_choice.md): 'incorrect' is left to server critics.
    default_critic={"type": "lm-judge", "trim": False},
    metrics=metrics,
    module=__name__,
)
