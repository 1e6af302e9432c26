"""A training run's folder: the one place that names its files (both training loops write them, readers find them).

A run folder holds ``config.json`` (the agent's name and every setting), ``metrics.jsonl`` (one JSON record per
iteration and per evaluation, see :mod:`textgym.metrics_log`), TensorBoard's ``events.out.tfevents.*``, a
checkpoint (``checkpoint.pt`` for textgym's own agents, SB3's ``checkpoint.zip``; written atomically),
``environment.jsonl`` (what the run ran on: one line per start or resume, see :func:`environment`), and, once the
run has finished, ``summary.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from textgym.metrics_log import read_metrics

CHECKPOINTS = {"lm": "checkpoint.pt", "sb3": "checkpoint.zip"}
"""The checkpoint's file name per training loop (see :data:`textgym.training.registry.LOOPS`)."""

PACKAGES = ("textgym", "torch", "transformers", "numpy", "gymnasium", "stable-baselines3", "sentence-transformers")
"""The packages whose versions a run records (the numbers of a run can change with any of them)."""


def environment() -> dict[str, Any]:
    """What a run runs on: package versions, textgym's git commit, torch's thread count, the CPU, Python, the platform.

    The commit is None outside a checkout and ends in ``+dirty`` where tracked files have changes. The CPU is its
    model name and the instruction set torch's kernels dispatch to (``torch.backends.cpu.get_cpu_capability()``):
    the same code, packages and seed give other sampled tokens under AVX2 than under AVX512 (the rewards grid's
    untrained summaries eval: 0.2971 against 0.2984). Floating-point results, and so sampled tokens, can differ with
    any of these: a run resumed or rerun under another environment need not repeat the same numbers, and this record
    says whether it did.
    """
    import torch

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "git": _git_commit(Path(__file__).resolve().parents[2]),
        "torch_threads": torch.get_num_threads(),
        "cpu": {"model": _cpu_model(), "capability": torch.backends.cpu.get_cpu_capability()},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``; elsewhere what :func:`platform.processor` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(folder: Path) -> str | None:
    """The commit of the checkout whose top is ``folder`` (``+dirty`` if tracked files changed), or None if none is.

    A textgym installed into a virtual environment that lies inside some other repository is not that repository's
    checkout: its top must be ``folder`` itself.
    """
    git = ["git", "-C", str(folder)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=10
        )
        lines = head.stdout.split()
        if head.returncode or len(lines) != 2 or Path(lines[0]).resolve() != folder.resolve():
            return None
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return lines[1] + ("+dirty" if changed.stdout.strip() else "")


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
        environment: ``environment.jsonl``: ``{"iteration", **environment()}`` a line, one per start or resume.
    """

    def __init__(self, path: str | Path, loop: str = "lm") -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoint = self.path / CHECKPOINTS[loop]
        self.summary = self.path / "summary.json"
        self.learning_curve = self.path / "learning_curve.png"
        self.environment = self.path / "environment.jsonl"

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

    def record_environment(self, iteration: int, resumed: bool) -> None:
        """Records what the run starts (or, ``resumed``, continues) on at ``iteration`` in ``environment.jsonl``."""
        with open(self.environment, "a" if resumed else "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"iteration": iteration, **environment()}) + "\n")

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
