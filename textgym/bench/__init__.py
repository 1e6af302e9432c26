"""The benchmark harness: a grid of env ids x variants x agents x budgets x seeds, run, summarised and plotted.

::

    from textgym.bench import Grid, run_benchmark

    grid = Grid(env_ids=["TextDetox-sparse-v0", "TextDetox-critic-v0"], agents=["lmppo"], seeds=[0, 1, 2],
                budgets=[12], settings={"num_envs": 8, "env_kwargs": {"max_new_tokens": 20}})
    run_benchmark(grid, "runs/bench")                   # local processes; backend="ray" for Ray tasks

The results folder holds one run folder per cell (``runs/NAME/``: the training run's files plus ``cell.json``,
``curve.csv`` and ``result.json``), ``status.json`` (each cell's outcome), ``summary.{csv,json,md}`` and
``plots/*.png``. :mod:`~textgym.bench.grid` builds the cells, :mod:`~textgym.bench.runner` runs them,
:mod:`~textgym.bench.summary` and :mod:`~textgym.bench.plots` read the run folders back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textgym.bench.grid import VARIANTS, Cell, Grid
from textgym.bench.runner import BACKENDS, run_cell, run_grid

__all__ = ["BACKENDS", "VARIANTS", "Cell", "Grid", "report", "run_benchmark", "run_cell", "run_grid"]


def report(out: str | Path, target: float | None = None, command: str | None = None) -> dict[str, Any]:
    """Writes the per-run curves, the summary table and the plots of the runs under ``out``.

    Args:
        out: The results folder.
        target: The reward to reach for "episodes to target" (None: the sparse variant's final mean reward).
        command: The command to record with the results.

    Returns:
        ``{"rows": summary rows, "plots": PNG paths}``.
    """
    from textgym.bench.plots import plot_learning_curves, plot_sample_efficiency
    from textgym.bench.summary import collect, write_summary

    rows = write_summary(out, target, command)
    runs, _ = collect(out)
    plots = plot_learning_curves(runs, Path(out, "plots"))
    efficiency = plot_sample_efficiency(rows, Path(out, "plots", "sample_efficiency.png"))
    return {"rows": rows, "plots": [*plots, *([efficiency] if efficiency else [])]}


def run_benchmark(
    grid: Grid,
    out: str | Path,
    backend: str = "local",
    target: float | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Runs every cell of ``grid`` (see :func:`~textgym.bench.runner.run_grid` for ``options``), then :func:`report`.

    Returns:
        ``{"results": each cell's outcome, "rows": summary rows, "plots": PNG paths}``.
    """
    results = run_grid(grid.cells(), out, backend=backend, on_result=on_result, **options)
    return {"results": results, **report(out, target)}
