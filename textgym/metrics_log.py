"""A run's ``metrics.jsonl``: one JSON record per training iteration or evaluation, read and cut back on resume.

Kept apart from :mod:`textgym.training` (which imports torch and the agents) so that readers of finished runs, the
benchmark summary for one, load nothing heavy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_metrics(path: Path, iteration: int) -> None:
    """Drops the records written after the checkpoint's iteration (a killed run may have logged past it)."""
    kept = [m for m in read_metrics(path) if m["iteration"] <= iteration]
    path.write_text("".join(json.dumps(m) + "\n" for m in kept), encoding="utf-8")
