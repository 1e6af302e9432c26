"""`textgym bench` end to end on a tiny model: local processes and Ray, failures, skipping and resuming."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from textgym import cli_bench
from textgym.bench import Grid, run_cell, run_grid
from textgym.error import MissingPackageError, SettingsError, UnknownNameError

IDS = ["TextDetox-sparse-v0", "TextDetox-critic-v0"]
SETTINGS = {
    "num_envs": 2, "freeze_layers": 1, "eval_episodes": 2, "eval_every": 1, "learning_rate": 1e-3,
    "env_kwargs": {"max_new_tokens": 3},
}  # fmt: skip
NAMES = [f"TextDetox-v0.{variant}.lmppo.it1.seed{seed}" for variant in ("sparse", "critic") for seed in (0, 1)]
BROKEN = [name.replace("lmppo", "rloo") for name in NAMES]


def bench(*argv: str) -> tuple[int, str]:
    """Runs ``textgym bench ARGV`` (through the sub-command that cli_bench adds); returns its exit code and output."""
    parser = argparse.ArgumentParser(prog="textgym")
    cli_bench.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = args.func(args)
    return code, printed.getvalue()


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    """2 ids x 2 seeds of LM-PPO, 1 iteration each, and the same of RLOO with a setting no agent has."""
    import yaml

    grid = {
        "env_ids": IDS, "agents": ["lmppo", "rloo"], "seeds": [0, 1], "budgets": [1], "settings": SETTINGS,
        "agent_settings": {"rloo": {"no_such_setting": 1}},
    }  # fmt: skip
    path = tmp_path_factory.mktemp("grid") / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


@pytest.fixture(scope="module")
def local_bench(tiny, grid_file, tmp_path_factory) -> tuple[Path, int, str]:
    """The grid file's grid run by ``textgym bench`` in local processes (one worker: this box has 2 cores)."""
    out = tmp_path_factory.mktemp("bench-local")
    code, printed = bench(
        "--grid", str(grid_file), "--model", tiny, "--workers", "1", "--threads", "1", "--out", str(out)
    )
    return out, code, printed


def check_results(out: Path) -> None:
    """The files of a finished 2 ids x 2 seeds grid: per-run curves and results, the summary, the plots."""
    status = {s["name"]: s for s in json.loads((out / "status.json").read_text())}
    assert set(NAMES) <= set(status)
    for name in NAMES:
        run = out / "runs" / name
        with open(run / "curve.csv", newline="") as handle:
            curve = list(csv.DictReader(handle))
        assert [(r["kind"], r["episodes"]) for r in curve] == [("eval", "0"), ("train", "2"), ("eval", "2")]
        assert float(curve[1]["seconds"]) > 0
        result = json.loads((run / "result.json").read_text())
        assert result["episodes"] == 2 and result["eval_final"] is not None
        assert (result["critic_calls"] > 0) == (".critic." in name)  # the critic's cost, none for sparse
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [(r["variant"], r["agent"], r["seeds"]) for r in rows] == [("critic", "lmppo", 2), ("sparse", "lmppo", 2)]
    sparse = rows[1]
    assert rows[0]["target"] == sparse["target"] == sparse["eval_final_mean"]
    assert sparse["reached"] >= 1  # at least a seed at or above the mean reaches the mean
    markdown = (out / "summary.md").read_text()
    assert "| TextDetox-v0 | sparse | lmppo | 1 | 2 |" in markdown and " ± " in markdown
    for png in ("curves-TextDetox-v0-lmppo-it1.png", "sample_efficiency.png"):
        assert (out / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_a_small_grid_runs_end_to_end_in_local_processes_and_failing_cells_do_not_stop_it(local_bench):
    out, code, printed = local_bench
    assert code == 1, printed  # some runs failed
    assert "8 runs" in printed and printed.count("done ") == 4
    for name in BROKEN:
        assert f"failed   {name}" in printed
        assert "Unknown settings ['no_such_setting']" in (out / "runs" / name / "error.txt").read_text()
    assert "4 of 8 runs failed" in printed
    check_results(out)
    for name in NAMES:  # each run is a whole training run folder
        assert {"config.json", "metrics.jsonl", "checkpoint.pt", "cell.json"} <= {
            p.name for p in (out / "runs" / name).iterdir()
        }
    assert "Unfinished cells (no summary.json): " + ", ".join(sorted(BROKEN)) in (out / "summary.md").read_text()


def test_a_second_call_skips_the_finished_runs(local_bench, tiny, grid_file):
    out = local_bench[0]
    code, printed = bench("--grid", str(grid_file), "--agents", "lmppo", "--model", tiny, "--out", str(out))
    assert code == 0 and printed.count("skipped ") == 4 and "done " not in printed
    check_results(out)


def test_a_run_with_a_checkpoint_resumes_from_it(local_bench, tiny):
    out = local_bench[0].parent / "bench-resumed"
    shutil.copytree(local_bench[0], out)
    before = (out / "runs" / NAMES[0] / "metrics.jsonl").read_text()
    (out / "runs" / NAMES[0] / "summary.json").unlink()  # as if killed after its last checkpoint
    cell = Grid(env_ids=IDS[:1], seeds=[0], budgets=[1], settings={**SETTINGS, "model": tiny}).cells()[0]
    assert run_cell(cell, str(out))["status"] == "resumed"
    assert (out / "runs" / NAMES[0] / "summary.json").exists()
    assert (out / "runs" / NAMES[0] / "metrics.jsonl").read_text() == before  # nothing repeated
    assert run_cell(cell, str(out))["status"] == "skipped"


def test_a_run_folder_with_other_settings_is_refused_not_overwritten(local_bench, tiny):
    out = local_bench[0]
    changed = Grid(env_ids=IDS[:1], seeds=[0], budgets=[1], settings={**SETTINGS, "model": tiny, "kl_coef": 0.5})
    (result,) = run_grid(changed.cells(), out, workers=1)
    assert result["status"] == "failed" and "other settings (changed: ['kl_coef'])" in result["error"]
    assert (out / "runs" / NAMES[0] / "summary.json").exists()


def test_a_small_grid_runs_end_to_end_as_ray_tasks_on_a_local_ray(tiny, tmp_path):
    ray = pytest.importorskip("ray")
    sets = [f"--set={key}={json.dumps(value)}" for key, value in SETTINGS.items() if key != "env_kwargs"]
    code, printed = bench(
        "--env-ids", *IDS, "--agents", "lmppo", "--seeds", "0", "1", "--iterations", "1", "--model", tiny, *sets,
        "--set", "env_kwargs.max_new_tokens=3", "--out", str(tmp_path), "--backend", "ray", "--num-cpus", "1",
    )  # fmt: skip
    assert code == 0, printed
    assert printed.count("done ") == 4 and "(ray backend)" in printed
    assert not ray.is_initialized()  # the Ray started for the grid is shut down
    check_results(tmp_path)


def test_backend_errors_say_how_to_fix_them(tmp_path, monkeypatch):
    cells = Grid(env_ids=IDS[:1], budgets=[1], settings=SETTINGS).cells()
    with pytest.raises(UnknownNameError, match="Did you mean 'ray'"):
        run_grid(cells, tmp_path, backend="rya")
    with pytest.raises(SettingsError, match="add --backend ray"):
        run_grid(cells, tmp_path, address="auto")
    with pytest.raises(SettingsError, match="workers sizes the local process pool"):
        run_grid(cells, tmp_path, backend="ray", workers=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(MissingPackageError, match=r"pip install 'textgym\[ray\]'"):
        run_grid(cells, tmp_path, backend="ray")
