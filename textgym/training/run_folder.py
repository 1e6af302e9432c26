"""A training run's folder: the one place that names its files (both training loops write them, readers find them).

A run folder holds ``config.json`` (the agent's name and every setting), ``metrics.jsonl`` (one JSON record per
iteration and per evaluation, see :mod:`textgym.metrics_log`), TensorBoard's ``events.out.tfevents.*``, a
checkpoint (``checkpoint.pt`` for textgym's own agents, SB3's ``checkpoint.zip``; written atomically), and, once the
run has finished, ``summary.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textgym.metrics_log import read_metrics

CHECKPOINTS = {"lm": "checkpoint.pt", "sb3": "checkpoint.zip"}
"""The checkpoint's file name per training loop (see :data:`textgym.training.registry.LOOPS`)."""


class RunFolder:
    """The files of one training run.

    Args:
        path: The run folder (created by :meth:`create`).
        loop: The training loop writing it (``"lm"`` or ``"sb3"``), which names the checkpoint.

    Attributes:
        path: The folder, also TensorBoard's log folder (its ``events.out.tfevents.*`` files).
        config: ``config.json``: ``{"agent": NAME, **settings}``.
        metrics: ``metrics.jsonl``: a ``{"kind": "train" | "eval", "iteration", "episodes", ...}`` record a line.
        checkpoint: ``checkpoint.pt`` or ``checkpoint.zip``, replaced atomically after each saved iteration.
        summary: ``summary.json``, written when the run finishes.
        learning_curve: ``learning_curve.png``, written with the summary.
    """

    def __init__(self, path: str | Path, loop: str = "lm") -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoint = self.path / CHECKPOINTS[loop]
        self.summary = self.path / "summary.json"
        self.learning_curve = self.path / "learning_curve.png"

    def create(self) -> RunFolder:
        """Makes the folder (and its parents) if it is missing; returns itself."""
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def has_checkpoint(self) -> bool:
        """Whether the folder holds a checkpoint of either loop (a run that can be resumed or evaluated)."""
        return any((self.path / name).exists() for name in CHECKPOINTS.values())

    def write_config(self, agent: str, settings: dict[str, Any]) -> None:
        """Writes ``config.json``: the agent's name, then its settings."""
        self.config.write_text(json.dumps({"agent": agent, **settings}, indent=2))

    def read_config(self) -> dict[str, Any]:
        """The contents of ``config.json``."""
        return json.loads(self.config.read_text())

    def start_metrics(self) -> None:
        """Empties ``metrics.jsonl`` (a new run)."""
        self.metrics.write_text("")

    def log(self, record: dict[str, Any]) -> dict[str, Any]:
        """Appends one record to ``metrics.jsonl``; returns it."""
        with open(self.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl``, all or those of one kind (``"train"`` or ``"eval"``)."""
        return [r for r in read_metrics(self.metrics) if kind is None or r["kind"] == kind]

    def cut_metrics(self, iteration: int, kinds: tuple[str, ...] = ("train", "eval")) -> None:
        """Drops the records of ``kinds`` logged after ``iteration``: those of a killed run past its checkpoint.

        A resumed run then writes the file of a run that was never killed.
        """
        kept = [r for r in self.records() if r["kind"] not in kinds or r["iteration"] <= iteration]
        self.metrics.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
