"""Writes a benchmark's results as JSON and a Markdown table, with the command and machine that produced them."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def write(name: str, rows: list[dict], notes: str = "") -> None:
    """Writes ``results/NAME.json`` and ``results/NAME.md`` and prints the table.

    The table's columns are every row's keys, in the order they first appear; a row without one shows it empty.
    """
    RESULTS.mkdir(exist_ok=True)
    command = "python " + " ".join([os.path.relpath(sys.argv[0], Path(__file__).parent.parent), *sys.argv[1:]])
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    meta = {"command": command, "date": date.today().isoformat(), "machine": machine, "notes": notes}
    (RESULTS / f"{name}.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [f"# {name}", "", f"Command: `{command}`  ", f"Date: {meta['date']}; machine: {machine}", ""]
    if notes:
        lines += [notes, ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
