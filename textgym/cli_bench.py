"""``textgym bench``: the benchmark harness from the command line (see :mod:`textgym.bench`)."""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

DEFAULT_IDS = ("TextSentiment-sparse-v0", "TextSentiment-critic-v0")
DEFAULT_SETTINGS: dict[str, Any] = {
    "num_envs": 8,
    "eval_episodes": 32,
    "eval_every": 6,
    "env_kwargs": {"max_new_tokens": 20},
}
"""Shared settings when no grid file is given: the budget of ``textgym compare`` (a few minutes a run, 2 CPUs)."""


def build_grid(args: argparse.Namespace):
    """The grid of a ``--grid`` file, or of the command-line lists; ``--set`` and ``--model`` apply to both."""
    from textgym.bench.grid import Grid, parse_assignment

    if args.grid:
        grid = Grid.from_file(args.grid)
        for axis in ("env_ids", "agents", "seeds"):
            if getattr(args, axis) is not None:
                setattr(grid, axis, getattr(args, axis))
        if args.variants is not None:  # picks among the file's variants (with their overrides) and the built-in ones
            grid.variants = {name: grid.variants.get(name) for name in args.variants}
        if args.iterations is not None:
            grid.budgets = args.iterations
    else:
        grid = Grid(
            env_ids=args.env_ids or list(DEFAULT_IDS),
            agents=args.agents or ["lmppo"],
            seeds=args.seeds if args.seeds is not None else [0],
            budgets=args.iterations or [12],
            variants=dict.fromkeys(args.variants or []),
            settings=copy.deepcopy(DEFAULT_SETTINGS),
        )
    if args.model:
        grid.set("model", args.model)
    for item in args.set or []:
        grid.set(*parse_assignment(item))
    grid.validate()  # again, after the command line's changes
    return grid


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs a benchmark grid, then writes the per-run curves, the summary table and the plots."""
    from textgym.bench import report, run_grid

    grid = build_grid(args)
    cells = grid.cells()
    for cell in cells:
        if cell.dropped:
            print(f"textgym: note: {cell.agent} ignores {list(cell.dropped)} (settings of other agents)")
    if args.list:
        for cell in cells:
            print(cell.name)
        return 0
    print(f"{len(cells)} runs -> {args.out}/runs/ ({args.backend} backend)", flush=True)

    def progress(result: dict[str, Any]) -> None:
        line = f"  {result['status']:<8} {result['name']}  {result['seconds']:.0f} s"
        print(line + (f"  {result['error']}" if result["error"] else ""), flush=True)

    options = {"workers": args.workers, "threads": args.threads, "address": args.address, "num_cpus": args.num_cpus}
    results = run_grid(cells, args.out, backend=args.backend, on_result=progress, **options)
    written = report(args.out, args.target, command=_command())
    _print_table(written["rows"])
    failed = [r for r in results if r["status"] == "failed"]
    print(
        f"Wrote {args.out}/summary.md, summary.csv, summary.json, plots/ ({len(written['plots'])} PNGs) and per-run "
        f"curve.csv / result.json; {len(failed)} of {len(results)} runs failed."
    )
    return 1 if failed else 0


def _command() -> str | None:
    """This process's command line as ``textgym ...`` when it is the textgym command (None otherwise)."""
    import shlex
    from pathlib import Path

    return "textgym " + shlex.join(sys.argv[1:]) if Path(sys.argv[0]).name in ("textgym", "cli.py") else None


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from textgym.bench.summary import format_reach

    table = Table(title="Final eval reward (mean ± std over seeds) and episodes to reach the target")
    for column in (
        "env",
        "variant",
        "agent",
        "iterations",
        "seeds",
        "final reward",
        "target",
        "episodes to target",
        "critic calls",
        "train s",
    ):
        table.add_column(column, justify="left" if column in ("env", "variant", "agent") else "right", no_wrap=True)
    for row in rows:
        final = "-" if row["eval_final_mean"] is None else f"{row['eval_final_mean']:.3f} ± {row['eval_final_std']:.3f}"
        table.add_row(
            row["family"],
            row["variant"],
            row["agent"],
            str(row["iterations"]),
            str(row["seeds"]),
            final,
            "-" if row["target"] is None else f"{row['target']:.3f}",
            format_reach(row),
            f"{row['critic_calls_mean']:.0f}",
            f"{row['seconds_mean']:.1f}",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ``bench`` to the ``textgym`` command's sub-commands."""
    from textgym.bench.grid import VARIANTS
    from textgym.bench.runner import BACKENDS
    from textgym.training import AGENTS

    bench = commands.add_parser(
        "bench",
        help="run a benchmark grid (env ids x variants x agents x seeds x budgets): curves, summary table, plots",
        description="Runs every cell of a grid (skipping finished runs, resuming checkpointed ones), then writes "
        "OUT/summary.{md,csv,json}, OUT/plots/*.png and each run's curve.csv and result.json.",
    )
    bench.add_argument("--grid", default=None, help="a YAML or JSON grid file (the flags below override its lists)")
    bench.add_argument("--env-ids", nargs="+", default=None, help=f"env ids (default {' '.join(DEFAULT_IDS)})")
    bench.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help=f"reward variants applied to each env id: {', '.join(VARIANTS)} or a grid file's (default: each id "
        "as it is)",
    )
    bench.add_argument(
        "--agents", nargs="+", default=None, choices=AGENTS, help=f"agents: {', '.join(AGENTS)} (default lmppo)"
    )
    bench.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default 0)")
    bench.add_argument("--iterations", nargs="+", type=int, default=None, help="budgets in iterations (default 12)")
    bench.add_argument("--model", default=None, help="policy model of every run: named, folder or hub id")
    bench.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a shared agent setting (JSON value); KEY.SUB sets one key of a dict, e.g. env_kwargs.max_new_tokens=8",
    )
    bench.add_argument("--out", default="runs/bench", help="results folder (default runs/bench)")
    bench.add_argument("--backend", choices=BACKENDS, default="local", help="local processes or Ray tasks")
    bench.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local backend: parallel runs (default: half the CPUs, 1 on a 2-core machine)",
    )
    bench.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (local default: CPUs / workers; Ray: 1); the CPUs a Ray task asks for",
    )
    bench.add_argument(
        "--address",
        default=None,
        help="ray backend: a cluster address (auto, HOST:PORT, ray://HOST:PORT); default: start Ray here",
    )
    bench.add_argument("--num-cpus", type=int, default=None, help="ray backend: CPUs of a Ray started here")
    bench.add_argument(
        "--target",
        type=float,
        default=None,
        help="reward to reach for 'episodes to target' (default: the sparse variant's final mean)",
    )
    bench.add_argument("--list", action="store_true", help="print the runs of the grid and exit")
    bench.set_defaults(func=cmd_bench)
