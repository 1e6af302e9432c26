"""A run's ``metrics.jsonl``: one JSON record per training iteration or evaluation.

Kept apart from the training loops (which import torch and the agents) so that readers of finished runs, the
benchmark summary for one, load nothing heavy. :class:`textgym.training.run_folder.RunFolder` writes the file.
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
