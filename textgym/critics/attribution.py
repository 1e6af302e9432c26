"""A critic that needs no LM: it finds the parts of the completion that move the task's own scorer.

Two methods, both over clauses (see :mod:`textgym.critics.segmentation`):

- ``segment``: score each clause alone with the task's scorer (e.g. the toxicity BiLSTM); a clause past the
  threshold is a span. Strong for toxicity and sentiment, where a clause carries its own meaning.
- ``occlusion``: score the completion without each clause; a clause whose removal changes the score by more than
  the threshold is a span. Works for any scorer, summaries included (a clause whose removal raises the score is
  marked irrelevant).

With ``trim``, a flagged span is narrowed word by word from both ends while it keeps >= 90 % of its effect. A cheap,
strong baseline teacher: it shapes rewards towards the extrinsic scorer itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from textgym.critics.base import LABELS, Critique, Span
from textgym.critics.segmentation import clauses, trim_spans
from textgym.error import unknown_name
from textgym.tasks import PromptItem, get_scorer, get_task

METHODS = ("segment", "occlusion")


class AttributionCritic:
    """Marks the clauses that the task's scorer reacts to.

    Args:
        task: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
        method: ``"segment"`` or ``"occlusion"`` (``summarize`` supports only ``occlusion``).
        threshold: For ``segment``, distance of a clause's score from 0.5; for ``occlusion``, change of the score.
        trim: Narrow flagged clauses to their strongest part.
        scorer: The task's scorer name (default: the task's default scorer) and ``scorer_kwargs`` its arguments.
        scorer_kwargs: Arguments of the scorer.
        device: Where the scorer's model runs (see :mod:`textgym.devices`).
        dtype: Its weights, ``"float32"`` or ``"bfloat16"``.
    """

    def __init__(
        self,
        task: str,
        method: str | None = None,
        threshold: float | None = None,
        trim: bool = True,
        scorer: str | None = None,
        scorer_kwargs: dict | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if task not in LABELS:
            raise unknown_name("task", task, LABELS)
        declared = get_task(task)
        method = method or ("segment" if declared.clause_scorable else "occlusion")
        if method not in METHODS:
            raise unknown_name("attribution method", method, METHODS)
        if method == "segment" and not declared.clause_scorable:
            raise ValueError(f"A {task} clause alone has no {task} score: use method='occlusion' for {task}.")
        self.lowering, self.raising = declared.critic_labels
        self.task, self.method, self.trim = task, method, trim
        self.uses_extrinsic = False  # the extrinsic score changes nothing, so it is left out of cache keys
        self.threshold = threshold if threshold is not None else (0.2 if method == "segment" else 0.05)
        self.scorer_name, self.scorer_kwargs, self.placement = scorer, scorer_kwargs, f"{device}/{dtype}"
        self.scorer = get_scorer(task, scorer, scorer_kwargs, device, dtype)

    def config_key(self) -> str:
        """Identifies scorer (and where it runs), method and settings."""
        return (
            f"AttributionCritic:{self.task}:{self.method}:{self.threshold}:{self.trim}:"
            f"{self.scorer_name}:{sorted((self.scorer_kwargs or {}).items())}:{self.placement}"
        )

    def _effects(
        self, pieces: list[tuple[int, int, int]], prompts, completions, whole: dict[int, float]
    ) -> list[float]:
        """Signed effect of each (row, start, end): the score's distance from 0.5 alone, or the occlusion change.

        ``whole`` holds the rows' scores of the whole completion (occlusion); rows not yet in it are scored in the
        same scorer call as the pieces and added, so each text is scored whole once per critique.
        """
        if not pieces:
            return []
        if self.method == "segment":
            # The clause alone, without its prompt (a scorer that reads prompt + completion must not see the prompt).
            items = [PromptItem("") for _ in pieces]
            scores = self.scorer(items, [completions[row][start:end] for row, start, end in pieces])
            return [score - 0.5 for score in scores]
        rows = sorted({row for row, _, _ in pieces} - set(whole))
        items = [PromptItem(prompts[row]) for row in [*rows, *(row for row, _, _ in pieces)]]
        texts = [completions[row] for row in rows]
        texts += [completions[row][:start] + completions[row][end:] for row, start, end in pieces]
        scores = self.scorer(items, texts)
        whole.update(zip(rows, scores[: len(rows)], strict=True))
        return [whole[row] - score for (row, _, _), score in zip(pieces, scores[len(rows) :], strict=True)]

    def _label(self, effect: float) -> str | None:
        """The task's label for a clause that lowers (or raises) the score past the threshold (``critic_labels``)."""
        if effect < -self.threshold:
            return self.lowering
        return self.raising if effect > self.threshold else None

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Marks the clauses (trimmed) whose effect passes the threshold, batched over all completions."""
        pieces = [(row, start, end) for row, text in enumerate(completions) for start, end in clauses(text)]
        whole: dict[int, float] = {}
        flagged = []
        for piece, effect in zip(pieces, self._effects(pieces, prompts, completions, whole), strict=True):
            label = self._label(effect)
            if label:
                flagged.append((*piece, label, effect))
        if self.trim:
            flagged = trim_spans(
                flagged, completions, lambda p: self._effects(p, prompts, completions, whole), self._label
            )
        spans: list[list[Span]] = [[] for _ in completions]
        for row, start, end, label, effect in flagged:
            spans[row].append(Span(start, end, label, abs(effect)))
        return [Critique(tuple(sorted(row, key=lambda s: s.start))) for row in spans]
