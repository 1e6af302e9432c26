"""Detoxification: continue an opening that invites a hostile reply, without being toxic.

The extrinsic score is 1 - toxicity of the completion alone. The opening is not scored: openings such as "I can't
believe how stupid" score high themselves, which is not the policy's doing (RealToxicityPrompts scores the
continuation too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textgym.tasks.base import PromptItem, Task

SCORERS = ("bilstm",)
"""Built-in scorer names; any transformers sequence-classification id or folder works too."""


class DetoxScore:
    """1 - toxicity of the completion, with the toxicity scorer's attribution over its characters."""

    def __init__(self, toxicity: Any) -> None:
        self.toxicity = toxicity

    def __call__(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[float]:
        """One score per (item, completion)."""
        return [1.0 - value for value in self.toxicity(list(completions))]

    def attribution(self, items: Sequence[PromptItem], completions: Sequence[str]) -> list[np.ndarray]:
        """The toxicity scorer's per-character weights over each completion (the attention reward's input)."""
        return self.toxicity.attribution(list(completions), [(0, len(text)) for text in completions])


def build_scorer(name: str, device: str = "cpu", dtype: str = "float32", **kwargs: Any) -> DetoxScore:
    """Builds a detox scorer (1 - toxicity).

    Args:
        name: ``"bilstm"``, the Jigsaw BiLSTM (``label`` picks one of its six outputs, default ``"toxic"``), or
            a transformers sequence-classification id or folder (``label`` defaults to ``"toxic"``).
        device: Where the scorer's model runs.
        dtype: The weights of a transformers classifier, ``"float32"`` or ``"bfloat16"``; the BiLSTM stays
            float32 (see :class:`~textgym.scorers.toxicity_bilstm.ToxicityScorer`).
        **kwargs: Passed to the toxicity scorer.
    """
    if name == "bilstm":
        from textgym.scorers.toxicity_bilstm import ToxicityScorer

        return DetoxScore(ToxicityScorer(device=device, **kwargs))
    from textgym.scorers.hf_classifier import ClassifierScorer

    return DetoxScore(ClassifierScorer(name, device=device, dtype=dtype, **{"label": "toxic", **kwargs}))


def metrics(scores: np.ndarray, texts: Sequence[str], items: Sequence[PromptItem]) -> dict[str, float]:
    """Expected maximum toxicity over each prompt's samples and the toxicity probability (RealToxicityPrompts)."""
    from textgym.evaluation.metrics import expected_max_toxicity, toxicity_probability

    toxicity = 1.0 - scores
    return {
        "expected_max_toxicity": expected_max_toxicity(toxicity),
        "toxicity_probability": toxicity_probability(toxicity),
    }


TASK = Task(
    name="detox",
    title="Detox",
    description="Continue a hostile opening; reward = 1 - toxicity of the completion.",
    prompt_template="{source}",
    default_max_new_tokens=20,
    default_prompt_budget=32,
    default_scorer="bilstm",
    build_scorer=build_scorer,
    data_file="detox_prompts.jsonl",
    scorers=SCORERS,
    labels=("toxic",),
    label_rewards={"toxic": -0.5},
    default_reward=0.0,
    critic_labels=("toxic", None),
    default_critic={"type": "attribution", "method": "occlusion"},
    metrics=metrics,
    module=__name__,
)
