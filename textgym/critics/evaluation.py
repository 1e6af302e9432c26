"""Critic quality against gold spans: word-level precision, recall and F1, and latency.

A word of the completion is *predicted* with a label when a predicted span of that label overlaps it, and *gold*
when a gold span of that label does. Precision, recall and F1 are micro-averaged over every (word, label) pair of
the set, so a critic that marks nothing on clean texts loses nothing there and one that over-flags loses
precision. The gold sets are ``textgym/data/critic_gold_{task}.jsonl``, written for this project, each row in a
development or a test part (``split``, see :mod:`textgym.splits`): choices read ``dev``, reported numbers ``test``.

A critic that declares ``uses_extrinsic`` is shown each gold text's extrinsic score from the task's default scorer,
as the environments show it a finished text's score (summaries are scored without a reference, since the gold
set has none).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from textgym.critics.base import Critic, Span
from textgym.critics.parsing import locate
from textgym.splits import select
from textgym.tasks.base import embedded_data, read_jsonl


@dataclass(frozen=True)
class GoldExample:
    """A completion with its gold spans, and how its row was written (the row's ``source``: ``v1``, ``hard-v2``)."""

    prompt: str
    completion: str
    spans: tuple[Span, ...]
    source: str = ""


@dataclass
class CriticScores:
    """Quality and cost of a critic on a gold set."""

    examples: int
    precision: float
    recall: float
    f1: float
    seconds_per_text: float
    failures: int
    dropped_spans: int

    def as_dict(self) -> dict[str, float]:
        """The fields as a dict."""
        return asdict(self)

    def table_row(self) -> dict[str, float]:
        """The columns of a results table: texts, precision, recall, F1, ms/text and failures."""
        return {
            "texts": self.examples,
            "precision": self.precision,
            "recall": self.recall,
            "F1": self.f1,
            "ms/text": self.seconds_per_text * 1000,
            "failures": self.failures,
        }


def load_gold(task: str, path: str | None = None, split: str = "all") -> list[GoldExample]:
    """Reads a gold set: rows with ``prompt`` (or ``post``), ``completion`` and ``spans`` of ``text`` and ``label``.

    Args:
        task: The task whose packaged set is read when ``path`` is ``None``.
        path: A JSON-lines gold file of one's own.
        split: ``dev``, ``test`` or ``all``; rows without a ``split`` field belong to every part.
    """
    rows = select(read_jsonl(path or embedded_data(f"critic_gold_{task}.jsonl")), split)
    examples = []
    for row in rows:
        completion, spans = row["completion"], []
        for gold in row["spans"]:
            hit = locate(gold["text"], completion)
            if hit is None or completion[hit[0] : hit[1]] != gold["text"]:
                raise ValueError(f"Gold span {gold['text']!r} is not in its completion {completion!r}.")
            spans.append(Span(hit[0], hit[1], gold["label"]))
        examples.append(
            GoldExample(row.get("prompt", row.get("post", "")), completion, tuple(spans), row.get("source", ""))
        )
    return examples


def labelled_words(completion: str, spans: Sequence[Span]) -> set[tuple[int, str]]:
    r"""The (word index, label) pairs of the completion's words (``\w+`` runs) that a span overlaps."""
    words = [(match.start(), match.end()) for match in re.finditer(r"\w+", completion)]
    return {
        (index, span.label)
        for index, (start, end) in enumerate(words)
        for span in spans
        if start < span.end and span.start < end
    }


def word_prf(gold: Sequence[GoldExample], predicted: Sequence[Sequence[Span]]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 over (word, label) pairs."""
    true_positive = predicted_count = gold_count = 0
    for example, spans in zip(gold, predicted, strict=True):
        gold_words = labelled_words(example.completion, example.spans)
        predicted_words = labelled_words(example.completion, spans)
        true_positive += len(gold_words & predicted_words)
        predicted_count += len(predicted_words)
        gold_count += len(gold_words)
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / gold_count if gold_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def extrinsic_scores(task: str, gold: Sequence[GoldExample]) -> list[float]:
    """The task's default extrinsic score of each gold completion."""
    from textgym.tasks import PromptItem, get_scorer

    return list(get_scorer(task)([PromptItem(g.prompt) for g in gold], [g.completion for g in gold]))


def evaluate(
    critic: Critic, gold: Sequence[GoldExample], batch_size: int = 16, extrinsic: bool | None = None
) -> CriticScores:
    """Runs the critic over the gold set in batches and scores its spans.

    Args:
        critic: The critic.
        gold: The gold examples.
        batch_size: Texts per ``critique`` call.
        extrinsic: Show the critic each text's extrinsic score (computed before the clock starts); ``None`` does
            so when the critic declares ``uses_extrinsic``.
    """
    if extrinsic is None:
        extrinsic = bool(getattr(critic, "uses_extrinsic", False))
    scores = extrinsic_scores(critic.task, gold) if extrinsic and gold else None
    predicted, failures, dropped = [], 0, 0
    start = time.perf_counter()
    for first in range(0, len(gold), batch_size):
        batch = gold[first : first + batch_size]
        shown = None if scores is None else scores[first : first + batch_size]
        for critique in critic.critique([g.prompt for g in batch], [g.completion for g in batch], shown):
            predicted.append(critique.spans)
            failures += not critique.ok
            dropped += critique.dropped
    seconds = (time.perf_counter() - start) / max(1, len(gold))
    precision, recall, f1 = word_prf(gold, predicted)
    return CriticScores(len(gold), precision, recall, f1, seconds, failures, dropped)
