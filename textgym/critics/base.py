"""What a critic is: a batched map from (prompt, completion) to spans of the completion with labels.

A critic knows nothing of environments or tokens: it reads text and answers with character spans. The
``CriticRewardWrapper`` turns spans into per-token rewards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class _TaskLabels(Mapping[str, tuple[str, ...]]):
    """The span labels of each registered task (each task declares its own; RELC's for the built-in ones)."""

    def __getitem__(self, task: str) -> tuple[str, ...]:
        from textgym.tasks import TASKS, task_names

        if task not in TASKS:
            task_names()
        return TASKS[task].labels

    def __iter__(self) -> Iterator[str]:
        from textgym.tasks import task_names

        return iter(task_names())

    def __len__(self) -> int:
        from textgym.tasks import task_names

        return len(task_names())


LABELS: Mapping[str, tuple[str, ...]] = _TaskLabels()
"""The span labels of each task, read from the task registry (``LABELS["detox"] == ("toxic",)``)."""


@dataclass(frozen=True)
class Span:
    """A labelled character span of a completion.

    Attributes:
        start: Offset of the first character, into the completion (not the prompt).
        end: Offset one past the last character.
        label: One of the task's labels (see :data:`LABELS`).
        score: The critic's strength or confidence, 1.0 when it gives none.
    """

    start: int
    end: int
    label: str
    score: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"A span needs 0 <= start < end, got ({self.start}, {self.end}).")

    def text(self, completion: str) -> str:
        """The span's characters in ``completion``."""
        return completion[self.start : self.end]


@dataclass(frozen=True)
class Critique:
    """A critic's answer for one completion.

    Attributes:
        spans: The located spans, sorted by start.
        ok: False when the critic failed (timeout, error, unparsable reply, phrases none of which are in the
            completion); the spans are then empty and must not be used as an answer.
        error: What went wrong, when ``ok`` is False.
        dropped: Spans the critic named that could not be located in the completion.
        raw: The critic's raw reply, where it has one (for debugging; never holds credentials).
    """

    spans: tuple[Span, ...] = ()
    ok: bool = True
    error: str | None = None
    dropped: int = 0
    raw: str | None = field(default=None, compare=False)

    @classmethod
    def failed(cls, error: str, raw: str | None = None) -> Critique:
        """A failed critique, with the reason."""
        return cls((), ok=False, error=error, raw=raw)


@runtime_checkable
class Critic(Protocol):
    """A batched critic.

    ``critique`` must return one :class:`Critique` per completion, in order, and must not raise for a bad reply
    of its model or server: it returns ``Critique.failed(...)`` for that completion instead.
    """

    task: str
    uses_extrinsic: bool
    """Whether the critique depends on the extrinsic score; the cache keys on the score only where it does."""

    def config_key(self) -> str:
        """A string that identifies the critic's configuration (model, template, thresholds) for caching."""
        ...

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Critiques each completion of its prompt; ``extrinsic`` are the task scores where the critic wants them."""
        ...
