"""The local LM critic: split the completion into clauses and let a causal LM judge each one few-shot.

Small LMs cannot reliably *list* spans, but judge given spans well (see ``shared/MODELS.md`` for the measurements
behind this design, which is the segment-level one of fine-grained RLHF). Each clause gets a calibrated logit
margin from a few-shot prompt (``templates/{task}_judge.json``, replaceable); clauses past the threshold are
spans. With ``trim`` a flagged clause is narrowed, word by word from both ends, to the shortest part that the
judge still flags nearly as strongly, so a span covers the phrase rather than its whole clause.

A template asks one question or several (``"questions": [...]``), each with its own few-shot prefix, query,
answer words, labels and optional calibration and threshold; the summary template asks "Supported by the post?"
(incorrect), the post's context gain (irrelevant) and "Garbled?" (incoherent). A question of kind
``context_gain`` is asked through the LM's likelihood instead of an answer word: how much more likely the prompt
makes the clause. SmolLM2-135M answers "is this supported by the post?" at chance in words (per-clause ROC AUC 0.40
on the summary gold set for the incorrect clauses), but its context gain separates the irrelevant and incoherent
clauses from the rest (AUC 0.94 and 0.97), measured while writing ``templates/summarize_judge.json``. A query may
show the prompt (``{context}``) and the task's score of the whole text (``{extrinsic}``, 2 decimals, ``unknown``
when there is none, as for a prefix); a critic whose queries show the score declares ``uses_extrinsic``. A clause
flagged by several questions takes the label of the question whose margin passes its threshold by the most (each
question's margin in its own units).

``model`` may be a live ``torch.nn.Module`` (self-critique: the policy judges its own text); call
:meth:`SegmentJudgeCritic.refresh` after its weights change, so the few-shot cache and the calibration follow.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textgym.critics.base import LABELS, Critique, Span
from textgym.critics.segmentation import clauses, trim_spans
from textgym.error import unknown_name
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm, load_tokenizer
from textgym.scorers.fewshot_judge import ContextGainJudge, FewShotMarginJudge

QUESTION_FIELDS = ("prefix", "query", "answer_words", "labels")
"""The fields a question asked in words needs; ``kind``, ``calibration``, ``threshold`` and ``name`` are optional."""
KINDS: dict[str, tuple[str, ...]] = {"answer": QUESTION_FIELDS, "context_gain": ("query", "labels")}
"""The kinds of question and the fields each needs. ``answer`` (the default): the calibrated logit margin between
the two answer words after the few-shot prefix and the query. ``context_gain``: how much more likely the prompt makes
the clause, per token (see :class:`~textgym.scorers.fewshot_judge.ContextGainJudge`); its query ends with
``{text}``, has ``{context}``, and its prefix is optional."""
QUERY_FIELDS = ("text", "context", "extrinsic")
"""The fields a query may use: the clause, the prompt, and the task's score of the whole text (2 decimals)."""


def load_judge_spec(task: str, path: str | Path | None = None) -> dict[str, Any]:
    """Reads a judge template (JSON): the packaged one for ``task``, or the user's file at ``path``.

    A template is either one question (the fields :data:`QUESTION_FIELDS` at the top level) or several
    (``"questions": [{...}, ...]``, each with the fields its ``kind`` needs, see :data:`KINDS`). Either way the
    result has a ``questions`` list.

    Raises:
        ValueError: A question lacks a field, has an unknown kind, uses an unknown query field or label, or the
            template has no question.
    """
    if path is None:
        from textgym.critics.prompts import template_path

        text = template_path(task, f"{task}_judge.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    spec = json.loads(text)
    where = f"The judge template for {task!r}" + (f" ({path})" if path is not None else "")
    if "questions" not in spec:
        missing = set(QUESTION_FIELDS) - set(spec)
        if missing:
            raise ValueError(
                f"{where} lacks the fields {sorted(missing)}. A template is one question with the fields "
                f"{list(QUESTION_FIELDS)}, or a list of them under 'questions'."
            )
        spec = {
            "about": spec.get("about", ""),
            "questions": [{key: value for key, value in spec.items() if key != "about"}],
        }
    questions = spec["questions"]
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"{where}: 'questions' must be a non-empty list of questions.")
    for number, question in enumerate(questions, start=1):
        name = f"question {number}" + (f" ({question['name']!r})" if "name" in question else "")
        kind = question.get("kind", "answer")
        if kind not in KINDS:
            raise unknown_name("judge question kind", kind, KINDS, hint=f"({where}, {name})")
        missing = set(KINDS[kind]) - set(question)
        if missing:
            raise ValueError(f"{where}: {name} lacks the fields {sorted(missing)}.")
        if kind == "context_gain" and not (question["query"].endswith("{text}") and "{context}" in question["query"]):
            raise ValueError(
                f"{where}: the query of {name}, a context_gain question, must have {{context}} and end with {{text}}."
            )
        fields = {field for _, field, _, _ in string.Formatter().parse(question["query"]) if field is not None}
        if fields - set(QUERY_FIELDS) or "text" not in fields:
            raise ValueError(
                f"{where}: the query of {name} uses the fields {sorted(fields)}; it needs {{text}} and may use "
                f"{{context}} and {{extrinsic}} (write a literal brace twice: {{{{ }}}})."
            )
        labels = question["labels"]
        if not isinstance(labels, dict) or not labels or set(labels) - {"high", "low"}:
            raise ValueError(f"{where}: the labels of {name} must map 'high' and/or 'low' to a label, got {labels!r}.")
        for label in labels.values():
            if label not in LABELS[task]:
                raise unknown_name(f"{task} label", label, LABELS[task], hint=f"({where}, {name})")
    return spec


class SegmentJudgeCritic:
    """Clause-level few-shot LM critic, with one or several questions per clause.

    Args:
        task: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
        model: A named causal LM, folder or hub id, or a live model object (then pass ``tokenizer``).
        tokenizer: The tokenizer of a live model.
        threshold: Calibrated margin beyond which a clause is a span, for every question; ``None`` takes each
            question's own ``threshold`` from the template (0.5 where it has none).
        trim: Narrow flagged clauses to their strongest part.
        template_path: A user's judge template (JSON) instead of the packaged one.
        batch_size: Clauses per forward pass.
        device: Where a named model runs (see :mod:`textgym.devices`); a live model runs where it is.
        dtype: A named model's weights, ``"float32"`` or ``"bfloat16"``; a live model keeps its own.
    """

    def __init__(
        self,
        task: str,
        model: Any = DEFAULT_POLICY_MODEL,
        tokenizer: Any = None,
        threshold: float | None = None,
        trim: bool = True,
        template_path: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if task not in LABELS:
            raise unknown_name("task", task, LABELS)
        self.task, self.threshold, self.trim, self.batch_size = task, threshold, trim, batch_size
        self.spec = load_judge_spec(task, template_path)
        self.questions: list[dict[str, Any]] = self.spec["questions"]
        self.thresholds = [
            float(threshold if threshold is not None else question.get("threshold", 0.5)) for question in self.questions
        ]
        # The cache leaves the extrinsic score out of its key unless a query shows it.
        self.uses_extrinsic = any("{extrinsic}" in question["query"] for question in self.questions)
        self.model_name = model if isinstance(model, str) else f"live:{type(model).__name__}@{id(model):x}"
        self.model = load_causal_lm(model, device, dtype) if isinstance(model, str) else model
        self.tokenizer = load_tokenizer(model) if isinstance(model, str) else tokenizer
        if self.tokenizer is None:
            raise ValueError("A live model needs its tokenizer: pass tokenizer=...")
        weight = next(self.model.parameters())
        self.placement = f"{weight.device}/{str(weight.dtype).removeprefix('torch.')}"
        self.version = 0
        self.refresh()

    def refresh(self) -> None:
        """Rebuilds the few-shot caches and calibrations from the model's current weights (self-critique)."""
        self.judges = [self._judge(question) for question in self.questions]
        self.biases = [self._bias(judge, question) for judge, question in zip(self.judges, self.questions, strict=True)]
        self.version += 1

    def _judge(self, question: dict[str, Any]) -> FewShotMarginJudge | ContextGainJudge:
        if question.get("kind", "answer") == "context_gain":  # whole-sequence logits: smaller batches
            return ContextGainJudge(
                self.model, self.tokenizer, question.get("prefix", ""), question["query"], min(self.batch_size, 16)
            )
        return FewShotMarginJudge(
            self.model,
            self.tokenizer,
            question["prefix"],
            question["query"],
            tuple(question["answer_words"]),
            batch_size=self.batch_size,
        )

    @staticmethod
    def _bias(judge: FewShotMarginJudge | ContextGainJudge, question: dict[str, Any]) -> float:
        """Mean margin of the question's calibration texts (strings, or ``{"text", "context"}`` objects), else 0."""
        calibration = question.get("calibration") or []
        if not calibration:
            return 0.0
        items = [item if isinstance(item, dict) else {"text": item} for item in calibration]
        margins = judge.margins(
            [item["text"] for item in items],
            [item.get("context", "") for item in items],
            [{"extrinsic": "unknown"}] * len(items),
        )
        return float(np.mean(margins))

    def config_key(self) -> str:
        """Identifies model (its placement, and its version for live models), template and settings."""
        template = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:12]
        return (
            f"SegmentJudgeCritic:{self.task}:{self.model_name}:{self.placement}:v{self.version}:{template}:"
            f"{self.threshold}:{self.trim}"
        )

    def _effects(self, question: int, pieces: list[tuple[int, int, int]], prompts, completions, fields) -> np.ndarray:
        """Calibrated margin of each (row, start, end) piece for one question, with its row's prompt as context."""
        if not pieces:
            return np.zeros(0)
        texts = [completions[row][start:end] for row, start, end in pieces]
        contexts = [prompts[row] for row, _, _ in pieces]
        margins = self.judges[question].margins(texts, contexts, [fields[row] for row, _, _ in pieces])
        return margins - self.biases[question]

    def _label(self, question: int, margin: float) -> str | None:
        labels, threshold = self.questions[question]["labels"], self.thresholds[question]
        if margin > threshold:
            return labels.get("high")
        if margin < -threshold:
            return labels.get("low")
        return None

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Judges every clause of every completion, one batched pass per question (plus one per trimming round).

        A clause that several questions flag gets the label of the question whose margin passes its threshold by
        the most (the earlier question on a tie); trimming then uses that question alone.
        """
        scores = [None] * len(completions) if extrinsic is None else list(extrinsic)
        fields = [{"extrinsic": "unknown" if score is None else f"{float(score):.2f}"} for score in scores]
        units = [(row, start, end) for row, text in enumerate(completions) for start, end in clauses(text)]
        best: dict[tuple[int, int, int], tuple[float, int, str, float]] = {}
        for question in range(len(self.questions)):
            margins = self._effects(question, units, prompts, completions, fields)
            for unit, margin in zip(units, margins, strict=True):
                label = self._label(question, float(margin))
                excess = abs(float(margin)) - self.thresholds[question]
                if label is not None and (unit not in best or excess > best[unit][0]):
                    best[unit] = (excess, question, label, float(margin))
        spans: list[list[Span]] = [[] for _ in completions]
        for question in range(len(self.questions)):
            flagged = [(*unit, label, margin) for unit, (_, q, label, margin) in best.items() if q == question]
            if self.trim and flagged:
                flagged = trim_spans(
                    flagged,
                    completions,
                    lambda pieces, q=question: self._effects(q, pieces, prompts, completions, fields),
                    lambda margin, q=question: self._label(q, margin),
                )
            for row, start, end, label, margin in flagged:
                spans[row].append(Span(start, end, label, abs(margin)))
        return [Critique(tuple(sorted(row_spans, key=lambda span: (span.start, span.end)))) for row_spans in spans]
