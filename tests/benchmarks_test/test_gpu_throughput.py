"""benchmarks/gpu_throughput.py (run by gpu_check.sh when a GPU is lent) on the CPU with a tiny model: its one
chance on a GPU must not be lost to a bug that a CPU run shows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import gpu_throughput  # noqa: E402  (benchmarks/ is not a package)
import report  # noqa: E402


def test_one_setting_measures_its_throughput_and_split(tiny_lm_folder):
    row = gpu_throughput.measure("grpo", "cpu", "float32", num_envs=4, iterations=1, model=str(tiny_lm_folder))
    assert row["completions/s"] > 0 and row["tokens/s"] >= row["completions/s"]  # at least one token a completion
    for part in ("rollout", "score", "update"):
        assert row[f"{part} s/iter"] > 0, part
    assert row["peak GPU GiB"] == 0.0


def test_the_table_has_a_row_per_setting_and_a_failed_setting_says_why(tiny_lm_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    argv = ["gpu_throughput.py", "--agents", "lmppo", "--devices", "cpu", "cuda", "--dtypes", "float32"]
    argv += ["--num-envs", "2", "--iterations", "1", "--model", str(tiny_lm_folder), "--name", "gpu_smoke"]
    monkeypatch.setattr(sys, "argv", argv)
    gpu_throughput.main()
    rows = json.loads((tmp_path / "gpu_smoke.json").read_text())["rows"]
    assert [(row["agent"], row["device"], row["dtype"]) for row in rows] == [
        ("lmppo", "cpu", "float32"),
        ("lmppo", "cuda", "float32"),
    ]
    assert rows[0]["completions/s"] > 0 and "status" not in rows[0]
    if not torch.cuda.is_available():  # this machine has no GPU: the row says so instead of a number
        assert "CUDA" in rows[1]["status"] and "completions/s" not in rows[1]
        assert rows[1]["status"] in (tmp_path / "gpu_smoke.md").read_text()  # in the table too
