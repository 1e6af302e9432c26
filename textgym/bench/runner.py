"""Runs a grid's cells, in local processes (the default) or as Ray tasks.

Every cell runs :func:`run_cell` in its own run folder, ``OUT/runs/NAME/``: :func:`textgym.training.train`'s files
plus ``cell.json`` (the cell: env id, variant, agent, seed, budget, config). Cells are independent:

- **Failures.** A cell that raises is reported with its error (also written to ``error.txt`` in its folder); the
  other cells go on. A crashed worker process fails only the cells it had.
- **Resume.** A cell whose folder already has ``summary.json`` is skipped; one with a checkpoint (a killed or
  failed run) resumes from it. A finished or checkpointed run with other settings in its ``cell.json`` is
  refused, not overwritten.
- **Local backend.** A ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (no forked
  torch state). ``workers`` defaults to half the CPU count (1 on a 2-core machine: one run with both cores beats
  two runs that wait for each other) and each run gets ``cpu_count // workers`` torch threads.
- **Ray backend.** ``ray.init(address=...)``: an existing cluster's address (``auto`` finds the running one), or,
  when None, a new local instance with ``num_cpus`` CPUs. Each cell is an ordinary ``@ray.remote`` task asking
  for ``threads`` CPUs (default 1). On a multi-node cluster ``OUT`` must be a folder every node sees (a shared
  filesystem) and every node needs textgym installed. A Ray instance started here is shut down at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from textgym.bench.grid import Cell
from textgym.error import MissingPackageError, SettingsError, unknown_name
from textgym.training.run_folder import RunFolder

BACKENDS = ("local", "ray")
STATUSES = ("done", "resumed", "skipped", "failed")
"""A cell's outcome: trained from scratch, resumed from a checkpoint, already finished, or failed."""


def default_workers() -> int:
    """Local worker processes by default: half the CPUs, at least 1."""
    return max(1, (os.cpu_count() or 1) // 2)


def run_cell(cell: Cell, out: str, threads: int | None = None) -> dict[str, Any]:
    """Trains one cell in ``out/runs/NAME`` (skipping or resuming as the module docstring says).

    A top-level function, so that process pools and Ray can ship it to their workers.

    Args:
        cell: The cell to run.
        out: The results folder (absolute, for workers whose working directory differs).
        threads: Torch threads in this process (None leaves torch's default).

    Returns:
        ``{"name", "status", "seconds", "error"}``: the status is one of :data:`STATUSES`, ``error`` is None unless
        it failed.
    """
    run = Path(out) / "runs" / cell.name
    start = time.perf_counter()

    def result(status: str, error: str | None = None) -> dict[str, Any]:
        return {"name": cell.name, "status": status, "seconds": time.perf_counter() - start, "error": error}

    try:
        if finished(cell, run):
            return result("skipped")
        resume = RunFolder(run).has_checkpoint()
        run.mkdir(parents=True, exist_ok=True)
        (run / "cell.json").write_text(json.dumps(cell.to_dict(), indent=2))
        if threads:
            import torch

            torch.set_num_threads(threads)
        import textgym  # noqa: F401  (registers the ids in a fresh worker)
        from textgym.training import train

        train(cell.agent, cell.config, run, resume=resume, progress=False)
    except Exception as error:  # a failed cell must not stop the others
        message = f"{type(error).__name__}: {error}"
        if run.is_dir():
            (run / "error.txt").write_text(traceback.format_exc())
        return result("failed", message)
    (run / "error.txt").unlink(missing_ok=True)
    return result("resumed" if resume else "done")


def finished(cell: Cell, run: Path) -> bool:
    """Whether ``run`` already holds this cell's finished run; raises if it holds a run with other settings."""
    saved, folder = run / "cell.json", RunFolder(run)
    if saved.exists() and (folder.summary.exists() or folder.has_checkpoint()):  # one that never got going is replaced
        config = json.loads(saved.read_text())["config"]
        if config != json.loads(json.dumps(cell.config)):
            changed = sorted(k for k in {*config, *cell.config} if config.get(k) != cell.config.get(k))
            raise SettingsError(
                f"{run} holds a run of {cell.name} with other settings (changed: {changed}); pass another --out "
                "or delete that folder."
            )
    return folder.summary.exists()


def run_grid(
    cells: Sequence[Cell],
    out: str | Path,
    backend: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Runs every cell and returns their results in the cells' order; writes ``out/status.json``.

    Args:
        cells: The grid's cells (:meth:`textgym.bench.grid.Grid.cells`).
        out: The results folder.
        backend: ``"local"`` (process pool) or ``"ray"``.
        workers: Local backend: parallel processes (default :func:`default_workers`).
        threads: Torch threads per run (local default: ``cpu_count // workers``; Ray: 1), also the CPUs a Ray task
            asks for.
        address: Ray backend: a cluster address (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a
            local instance.
        num_cpus: Ray backend: CPUs of the local instance (None: all).
        on_result: Called with each cell's result as it finishes (in the calling process).
    """
    if backend not in BACKENDS:
        raise unknown_name("backend", backend, BACKENDS)
    if backend == "local" and (address is not None or num_cpus is not None):
        raise SettingsError("address and num_cpus are settings of the ray backend: add --backend ray.")
    if backend == "ray" and workers is not None:
        raise SettingsError("workers sizes the local process pool; Ray runs as many tasks as it has CPUs (num_cpus).")
    out = Path(out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}

    def report(result: dict[str, Any]) -> None:
        results[result["name"]] = result
        if on_result is not None:
            on_result(result)

    todo = []
    for cell in cells:
        try:
            done = finished(cell, out / "runs" / cell.name)
        except SettingsError as error:
            report({"name": cell.name, "status": "failed", "seconds": 0.0, "error": f"SettingsError: {error}"})
            continue
        if done:
            report({"name": cell.name, "status": "skipped", "seconds": 0.0, "error": None})
        else:
            todo.append(cell)
    if todo and backend == "local":
        workers = workers or default_workers()
        _run_local(todo, out, workers, threads or max(1, (os.cpu_count() or 1) // workers), report)
    elif todo:
        _run_ray(todo, out, threads, address, num_cpus, report)
    ordered = [results[cell.name] for cell in cells]
    status = [{**cell.to_dict(), **results[cell.name]} for cell in cells]
    (out / "status.json").write_text(json.dumps(status, indent=2))
    return ordered


def _failure(cell: Cell, error: BaseException) -> dict[str, Any]:
    return {"name": cell.name, "status": "failed", "seconds": 0.0, "error": f"{type(error).__name__}: {error}"}


def _run_local(cells: list[Cell], out: Path, workers: int, threads: int, report: Callable) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(cells)), mp_context=context) as pool:
        futures = {pool.submit(run_cell, cell, str(out), threads): cell for cell in cells}
        for future in as_completed(futures):
            try:
                report(future.result())
            except Exception as error:  # the worker died (e.g. killed for memory): only its cells fail
                report(_failure(futures[future], error))


def _run_ray(
    cells: list[Cell], out: Path, threads: int | None, address: str | None, num_cpus: int | None, report: Callable
) -> None:
    try:
        import ray
    except ImportError as error:
        raise MissingPackageError("The ray backend needs Ray: pip install 'textgym[ray]'.") from error
    started = not ray.is_initialized()
    if started:
        if address is not None and num_cpus is not None:
            raise SettingsError("num_cpus sizes a local Ray instance; a cluster at an address has its own CPUs.")
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
        else:
            ray.init(address=address)
    try:
        task = ray.remote(num_cpus=threads or 1, max_retries=0)(run_cell)
        refs = {task.remote(cell, str(out), threads or 1): cell for cell in cells}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    report(ray.get(ref))
                except Exception as error:  # the task's worker died: only this cell fails
                    report(_failure(refs[ref], error))
    finally:
        if started:
            ray.shutdown()
