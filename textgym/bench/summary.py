"""Reads a benchmark's run folders and writes each run's learning curve and the summary table over seeds.

Per run, in ``OUT/runs/NAME/``: ``curve.csv`` (one row per training iteration and per evaluation: extrinsic reward
against episodes and against cumulative training seconds, the critic's reward and calls) and ``result.json`` (the
cell, final evaluation, cost and the curve). In ``OUT/``: ``summary.csv``, ``summary.json`` and ``summary.md``,
one row per *group*: runs that differ only in their seed.

- **Final reward**: the last evaluation's mean extrinsic reward on the eval prompts, as ``mean ± std`` over the
  seeds (population std, numpy's default; 0 for one seed).
- **Episodes to target**: per run, the first training-episode count at which a train batch's or an evaluation's
  mean extrinsic reward is >= the target; summarised over the seeds that reach it (``k/n`` when not all do, and
  ``>E`` when none does in its E episodes). The target defaults to the final mean reward of the ``sparse``
  variant of the same env family, agent and budget: "how many episodes does each variant need to reach what the
  sparse reward reaches" (no target, and so no count, where a comparison has no sparse variant).
- **Cost**: training seconds (rollouts and updates; evaluation excluded) and critic calls during training
  (``critic/calls``: cumulative in a run, restarting at 0 when a run is resumed, so the increments are summed).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from textgym.metrics_log import read_metrics

CURVE_FIELDS = ("kind", "iteration", "episodes", "seconds", "reward", "critic_reward", "critic_calls")
SUMMARY_FIELDS = (
    "family", "env_id", "variant", "agent", "iterations", "seeds", "missing", "episodes", "eval_before_mean",
    "eval_final_mean", "eval_final_std", "target", "episodes_to_target_mean", "episodes_to_target_std", "reached",
    "critic_calls_mean", "seconds_mean", "seconds_std",
)  # fmt: skip


def learning_curve(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :data:`CURVE_FIELDS` from a run's metrics records.

    ``seconds`` is the cumulative training time (``time/iteration_s``) up to the record; ``critic_calls`` the
    cumulative critic calls, summed over resumes (see :func:`cumulative`).
    """
    rows, seconds = [], 0.0
    calls = cumulative(m.get("critic/calls", 0.0) if m["kind"] == "train" else None for m in metrics)
    for record, critic_calls in zip(metrics, calls, strict=True):
        train = record["kind"] == "train"
        if train:
            seconds += float(record.get("time/iteration_s", 0.0))
        rows.append(
            {
                "kind": record["kind"],
                "iteration": record["iteration"],
                "episodes": record["episodes"],
                "seconds": seconds,
                "reward": record["reward/extrinsic"] if train else record["eval/extrinsic"],
                "critic_reward": record.get("reward/critic") if train else None,
                "critic_calls": critic_calls,
            }
        )
    return rows


def cumulative(counters: Iterable[float | None]) -> list[float]:
    """Running totals of a counter that restarts at 0 after a resume; None entries repeat the running total.

    >>> cumulative([2, 5, None, 1, 4])  # resumed after 5: the counter restarted at 0, then counted 1 and 4
    [2.0, 5.0, 5.0, 6.0, 9.0]
    """
    out, total, previous = [], 0.0, 0.0
    for value in counters:
        if value is not None:
            value = float(value)
            total += value - previous if value >= previous else value
            previous = value
        out.append(total)
    return out


def episodes_to_target(curve: list[dict[str, Any]], target: float | None) -> int | None:
    """The first episode count whose train-batch or eval reward is >= ``target`` (None: never, or no target)."""
    if target is None:
        return None
    hits = [row["episodes"] for row in curve if _finite(row["reward"]) and row["reward"] >= target]
    return min(hits) if hits else None


def run_result(run: Path) -> dict[str, Any] | None:
    """A finished run's cell, final evaluation, cost and learning curve (None when the run has not finished)."""
    if not (run / "summary.json").exists() or not (run / "cell.json").exists():
        return None
    cell = json.loads((run / "cell.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    curve = learning_curve(read_metrics(run / "metrics.jsonl"))
    return {
        **{key: cell[key] for key in ("name", "env_id", "family", "variant", "agent", "seed", "iterations")},
        "episodes": summary["episodes"],
        "eval_before": summary["eval_before"],
        "eval_final": summary["eval_after"],
        "kl_final": summary["kl_after"],
        "seconds": summary["seconds"],
        "critic_calls": curve[-1]["critic_calls"] if curve else 0.0,
        "config": cell["config"],
        "curve": curve,
    }


def collect(out: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The finished runs under ``out/runs``, and the cells (``cell.json``) of those that did not finish."""
    runs, missing = [], []
    for folder in sorted(Path(out, "runs").glob("*/")):
        if not (folder / "cell.json").exists():
            continue
        result = run_result(folder)
        if result is None:
            missing.append(json.loads((folder / "cell.json").read_text()))
        else:
            runs.append(result)
    return runs, missing


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and population standard deviation (None, None for no values)."""
    values = [v for v in values if v is not None and _finite(v)]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def group_key(run: dict[str, Any]) -> tuple[str, str, int, str]:
    """Runs with the same key differ only in their seed: (family, agent, iterations, variant)."""
    return run["family"], run["agent"], run["iterations"], run["variant"]


def summarize(
    runs: list[dict[str, Any]], missing: Iterable[dict[str, Any]] = (), target: float | None = None
) -> list[dict[str, Any]]:
    """One row of :data:`SUMMARY_FIELDS` per group of runs (see the module docstring).

    Args:
        runs: :func:`run_result` of each finished run.
        missing: The cells that did not finish (``cell.json`` contents), counted in their group's ``missing``.
        target: The reward to reach; None: each comparison's sparse-variant final mean reward.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    unfinished: dict[tuple, int] = {}
    for cell in missing:
        unfinished[group_key(cell)] = unfinished.get(group_key(cell), 0) + 1
    finals = {key: mean_std([r["eval_final"] for r in members])[0] for key, members in groups.items()}
    rows = []
    for key in sorted(groups):
        family, agent, iterations, variant = key
        members = sorted(groups[key], key=lambda r: r["seed"])
        goal = target if target is not None else finals.get((family, agent, iterations, "sparse"))
        reach = [episodes_to_target(r["curve"], goal) for r in members]
        reached = [e for e in reach if e is not None]
        final_mean, final_std = mean_std([r["eval_final"] for r in members])
        reach_mean, reach_std = mean_std(reached)
        seconds_mean, seconds_std = mean_std([r["seconds"] for r in members])
        rows.append(
            {
                "family": family,
                "env_id": members[0]["env_id"],
                "variant": variant,
                "agent": agent,
                "iterations": iterations,
                "seeds": len(members),
                "missing": unfinished.get(key, 0),
                "episodes": max(r["episodes"] for r in members),
                "eval_before_mean": mean_std([r["eval_before"] for r in members])[0],
                "eval_final_mean": final_mean,
                "eval_final_std": final_std,
                "target": goal,
                "episodes_to_target_mean": reach_mean,
                "episodes_to_target_std": reach_std,
                "reached": len(reached),
                "critic_calls_mean": mean_std([r["critic_calls"] for r in members])[0],
                "seconds_mean": seconds_mean,
                "seconds_std": seconds_std,
            }
        )
    return rows


def format_reach(row: dict[str, Any]) -> str:
    """Episodes to target as text: ``"24 ± 8"``, ``"16 ± 0 (1/2)"``, ``">48"`` (never reached) or ``"-"``."""
    if row["target"] is None:
        return "-"
    if not row["reached"]:
        return f">{row['episodes']}"
    text = f"{row['episodes_to_target_mean']:.0f} ± {row['episodes_to_target_std']:.0f}"
    return text if row["reached"] == row["seeds"] else f"{text} ({row['reached']}/{row['seeds']})"


def write_run_files(run: dict[str, Any], out: str | Path) -> None:
    """Writes ``curve.csv`` and ``result.json`` into the run's folder ``out/runs/NAME``."""
    folder = Path(out, "runs", run["name"])
    _write_csv(folder / "curve.csv", run["curve"], CURVE_FIELDS)
    (folder / "result.json").write_text(json.dumps(run, indent=2))


def write_summary(out: str | Path, target: float | None = None, command: str | None = None) -> list[dict[str, Any]]:
    """Reads every run under ``out/runs``; writes the per-run files and ``summary.{csv,json,md}``; returns the rows.

    Args:
        out: The results folder.
        target: The reward to reach (None: each comparison's sparse-variant final mean).
        command: The command that produced the results, for the Markdown and JSON (default: this process's).
    """
    out = Path(out)
    runs, missing = collect(out)
    for run in runs:
        write_run_files(run, out)
    rows = summarize(runs, missing, target)
    command = command or " ".join(["textgym" if sys.argv[0].endswith("textgym") else sys.argv[0], *sys.argv[1:]])
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    meta = {"command": command, "date": date.today().isoformat(), "machine": machine, "target": target}
    _write_csv(out / "summary.csv", rows, SUMMARY_FIELDS)
    plain_runs = [{k: v for k, v in run.items() if k != "curve"} for run in runs]
    names = [cell["name"] for cell in missing]
    (out / "summary.json").write_text(
        json.dumps({**meta, "rows": rows, "runs": plain_runs, "missing": names}, indent=2)
    )
    (out / "summary.md").write_text(markdown(rows, meta, names))
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], missing: list[str]) -> str:
    """The summary table in Markdown, with the command, date and machine."""
    lines = [
        "# Benchmark summary",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; machine: {meta['machine']}",
        "",
        "Final reward: mean ± std over seeds of the last evaluation's extrinsic reward. Episodes to target: first "
        "training-episode count whose train-batch or eval reward reaches the target ("
        + ("the sparse variant's final mean" if meta["target"] is None else f"{meta['target']}")
        + "); `>E`: not reached in E episodes.",
        "",
        "| env | variant | agent | iterations | seeds | reward before | final reward | target | episodes to target "
        "| critic calls | train seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        seeds = f"{row['seeds']}" + (f" (+{row['missing']} unfinished)" if row["missing"] else "")
        final = f"{_number(row['eval_final_mean'])} ± {_number(row['eval_final_std'])}"
        seconds = f"{row['seconds_mean']:.1f} ± {row['seconds_std']:.1f}"
        cells = [
            row["family"], row["variant"], row["agent"], str(row["iterations"]), seeds,
            _number(row["eval_before_mean"]), final, _number(row["target"]), format_reach(row),
            f"{row['critic_calls_mean']:.0f}", seconds,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Unfinished cells (no summary.json): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: Iterable[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
