"""The local LM critic: split the completion into clauses and let a causal LM judge each one few-shot.

Small LMs cannot reliably *list* spans, but judge given spans well (see ``shared/MODELS.md`` for the measurements
behind this design, which is the segment-level one of fine-grained RLHF). Each clause gets a calibrated logit
margin from a few-shot prompt (``templates/{task}_judge.json``, replaceable); clauses past the threshold are
spans. With ``trim`` a flagged clause is narrowed, word by word from both ends, to the shortest part that the
judge still flags nearly as strongly, so a span covers the phrase rather than its whole clause.

``model`` may be a live ``torch.nn.Module`` (self-critique: the policy judges its own text); call
:meth:`SegmentJudgeCritic.refresh` after its weights change, so the few-shot cache and the calibration follow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textgym.critics.base import LABELS, Critique, Span
from textgym.critics.segmentation import clauses, trim_spans
from textgym.error import unknown_name
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm, load_tokenizer
from textgym.scorers.fewshot_judge import FewShotMarginJudge


def load_judge_spec(task: str, path: str | Path | None = None) -> dict[str, Any]:
    """Reads a judge template (JSON): the packaged one for ``task``, or the user's file at ``path``."""
    from importlib import resources

    if path is None:
        text = (resources.files("textgym.critics") / "templates" / f"{task}_judge.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    spec = json.loads(text)
    missing = {"prefix", "query", "answer_words", "labels"} - set(spec)
    if missing:
        raise ValueError(f"The judge template for {task!r} lacks the fields {sorted(missing)}.")
    return spec


class SegmentJudgeCritic:
    """Clause-level few-shot LM critic.

    Args:
        task: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
        model: A named causal LM, folder or hub id, or a live model object (then pass ``tokenizer``).
        tokenizer: The tokenizer of a live model.
        threshold: Calibrated margin beyond which a clause is a span.
        trim: Narrow flagged clauses to their strongest part.
        template_path: A user's judge template (JSON) instead of the packaged one.
        batch_size: Clauses per forward pass.
    """

    def __init__(
        self,
        task: str,
        model: Any = DEFAULT_POLICY_MODEL,
        tokenizer: Any = None,
        threshold: float = 0.5,
        trim: bool = True,
        template_path: str | None = None,
        batch_size: int = 32,
    ) -> None:
        if task not in LABELS:
            raise unknown_name("task", task, LABELS)
        self.task, self.threshold, self.trim, self.batch_size = task, threshold, trim, batch_size
        self.uses_extrinsic = False  # the extrinsic score changes nothing, so it is left out of cache keys
        self.spec = load_judge_spec(task, template_path)
        self.model_name = model if isinstance(model, str) else f"live:{type(model).__name__}@{id(model):x}"
        self.model = load_causal_lm(model) if isinstance(model, str) else model
        self.tokenizer = load_tokenizer(model) if isinstance(model, str) else tokenizer
        if self.tokenizer is None:
            raise ValueError("A live model needs its tokenizer: pass tokenizer=...")
        self.version = 0
        self.refresh()

    def refresh(self) -> None:
        """Rebuilds the few-shot cache and calibration from the model's current weights (self-critique)."""
        self.judge = FewShotMarginJudge(
            self.model,
            self.tokenizer,
            self.spec["prefix"],
            self.spec["query"],
            tuple(self.spec["answer_words"]),
            batch_size=self.batch_size,
        )
        calibration = self.spec.get("calibration") or []
        self.bias = float(np.mean(self.judge.margins(calibration))) if calibration else 0.0
        self.version += 1

    def config_key(self) -> str:
        """Identifies model (and its version for live models), template and settings."""
        template = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:12]
        return (
            f"SegmentJudgeCritic:{self.task}:{self.model_name}:v{self.version}:{template}:{self.threshold}:{self.trim}"
        )

    def _effects(self, pieces: list[tuple[int, int, int]], prompts, completions) -> np.ndarray:
        """Calibrated margin of each (row, start, end) piece, judged with its row's prompt as context."""
        if not pieces:
            return np.zeros(0)
        texts = [completions[row][start:end] for row, start, end in pieces]
        return self.judge.margins(texts, [prompts[row] for row, _, _ in pieces]) - self.bias

    def _label(self, margin: float) -> str | None:
        labels = self.spec["labels"]
        if margin > self.threshold:
            return labels.get("high")
        if margin < -self.threshold:
            return labels.get("low")
        return None

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Judges every clause of every completion in one batched pass (plus one per trimming round)."""
        units = [(row, start, end) for row, text in enumerate(completions) for start, end in clauses(text)]
        margins = self._effects(units, prompts, completions)
        spans: list[list[Span]] = [[] for _ in completions]
        flagged = []
        for (row, start, end), margin in zip(units, margins, strict=True):
            label = self._label(margin)
            if label is not None:
                flagged.append((row, start, end, label, float(margin)))
        if self.trim:
            flagged = trim_spans(flagged, completions, lambda p: self._effects(p, prompts, completions), self._label)
        for row, start, end, label, margin in flagged:
            spans[row].append(Span(start, end, label, abs(margin)))
        return [Critique(tuple(row_spans)) for row_spans in spans]
