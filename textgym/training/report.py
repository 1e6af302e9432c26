"""What a finished run leaves besides its logs: ``summary.json`` and a learning curve (for one run or several)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textgym.training.run_folder import RunFolder


def summarize_run(run: str | Path, agent_name: str, config: dict[str, Any], evaluations: list[dict]) -> dict[str, Any]:
    """Writes ``summary.json`` and ``learning_curve.png`` for a finished run and returns the summary.

    Args:
        run: The run folder.
        agent_name: The agent's registered name.
        config: The run's settings (its ``env_id`` and ``seed`` are read).
        evaluations: The run's ``eval`` records, first to last.
    """
    folder = RunFolder(run)
    train_records = folder.records("train")
    summary = {
        "agent": agent_name,
        "env_id": config["env_id"],
        "seed": config["seed"],
        "iterations": len(train_records),
        "episodes": train_records[-1]["episodes"] if train_records else 0,
        "eval_before": evaluations[0]["eval/extrinsic"] if evaluations else None,
        "eval_after": evaluations[-1]["eval/extrinsic"] if evaluations else None,
        "kl_after": evaluations[-1]["eval/kl"] if evaluations else None,
        "seconds": sum(m["time/iteration_s"] for m in train_records),
        "cpu_seconds": sum(m.get("time/iteration_cpu_s", float("nan")) for m in train_records),
    }
    folder.summary.write_text(json.dumps(summary, indent=2))
    plot_curves({f"{agent_name} {config['env_id']}": folder.path}, folder.learning_curve)
    return summary


def plot_curves(runs: dict[str, Path], out: Path) -> None:
    """Plots eval (and faint train-batch) extrinsic reward against episodes for several runs in one PNG.

    Runs of the same environment id and agent share a colour (their seeds are drawn in it) and one legend entry.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    colours: dict[str, str] = {}
    for label, run in runs.items():
        folder = RunFolder(run)
        config = folder.read_config() if folder.config.exists() else {}
        group = f"{config.get('agent', '')} {config.get('env_id', label)}".strip()
        first = group not in colours
        colour = colours.setdefault(group, f"C{len(colours)}")
        train_points = [(m["episodes"], m["reward/extrinsic"]) for m in folder.records("train")]
        eval_points = [(m["episodes"], m["eval/extrinsic"]) for m in folder.records("eval")]
        if train_points:
            axis.plot(*zip(*train_points, strict=True), color=colour, alpha=0.2, linewidth=0.8)
        if eval_points:
            axis.plot(*zip(*eval_points, strict=True), "o-", color=colour, label=f"{group} (eval)" if first else None)
    axis.set_xlabel("training episodes")
    axis.set_ylabel("mean extrinsic reward")
    axis.set_title("eval prompts (dots) and training batches (faint)", fontsize=9)
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[1]:  # runs without evaluations have no labelled line
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
