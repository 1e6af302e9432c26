"""Training runs: logs, atomic checkpoints, and resume after an interruption or a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from textgym.agents.lm_ppo import LMPPO
from textgym.training import save_checkpoint, train


def settings(tiny: str, **overrides) -> dict:
    values = {
        "env_id": "TextDetox-critic-v0",
        "model": tiny,
        "num_envs": 2,
        "iterations": 4,
        "freeze_layers": 1,
        "learning_rate": 1e-3,
        "eval_episodes": 2,
        "eval_every": 2,
        "env_kwargs": {"max_new_tokens": 4},
    }
    values.update(overrides)
    return values


def train_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "critic/", "dense/"))} for r in records]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=False)["policy"]


def test_a_run_writes_its_logs_plot_summary_and_checkpoint(tiny, tmp_path):
    summary = train("lmppo", settings(tiny), tmp_path, progress=False)
    assert summary["iterations"] == 4 and summary["episodes"] == 8
    assert summary["eval_before"] is not None and summary["eval_after"] is not None
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "learning_curve.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert any(path.name.startswith("events.out.tfevents") for path in tmp_path.iterdir())
    kinds = [r["kind"] for r in train_records(tmp_path)]
    assert kinds == ["eval", "train", "train", "eval", "train", "train", "eval"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"reward/extrinsic", "reward/critic", "kl/per_episode", "loss/policy", "eval/extrinsic"} <= tags
    assert "critic/calls" in tags and "critic/failures" in tags


def test_resume_after_an_interruption_continues_the_same_run(tiny, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    train("lmppo", settings(tiny), whole, progress=False)

    broken = tmp_path / "broken"
    real_step = LMPPO.step
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 3:  # killed during the third iteration, after the second checkpoint
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(LMPPO, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("lmppo", settings(tiny), broken, progress=False)
    assert torch.load(broken / "checkpoint.pt", weights_only=False)["iteration"] == 2
    monkeypatch.setattr(LMPPO, "step", real_step)
    summary = train("lmppo", settings(tiny), broken, resume=True, progress=False)
    assert summary["iterations"] == 4 and summary["episodes"] == 8  # no lost and no repeated steps
    assert train_records(broken) == train_records(whole)
    for name, tensor in weights(whole).items():
        torch.testing.assert_close(weights(broken)[name], tensor, rtol=0, atol=0)
    starts = [json.loads(line) for line in (broken / "environment.jsonl").read_text().splitlines()]
    assert [start["iteration"] for start in starts] == [0, 2]  # the start, and the resume after iteration 2
    assert starts[1]["versions"]["torch"] == torch.__version__ and starts[1]["torch_threads"] == torch.get_num_threads()
    assert [json.loads(line)["iteration"] for line in (whole / "environment.jsonl").read_text().splitlines()] == [0]


def test_the_environment_record_names_the_versions_and_the_checkout():
    from textgym.training.run_folder import environment

    record = environment()
    assert record["versions"]["textgym"] and record["versions"]["numpy"] == np.__version__
    assert record["python"] == sys.version.split()[0]
    assert record["cpu"]["capability"] == torch.backends.cpu.get_cpu_capability() and record["cpu"]["model"]
    top = Path(__file__).resolve().parents[2]
    if (top / ".git").exists():  # a checkout (CI's clone too): the commit, marked where tracked files changed
        head = subprocess.run(["git", "-C", str(top), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert record["git"].split("+")[0] == head.strip()


def test_a_folder_inside_another_checkout_is_not_taken_for_textgyms(tmp_path):
    from textgym.training.run_folder import _git_commit

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    inner = tmp_path / "venv" / "lib"
    inner.mkdir(parents=True)
    assert _git_commit(inner) is None  # a git repository encloses it, but its top is elsewhere
    assert _git_commit(tmp_path) is None  # the top, but no commit yet


def test_a_failed_checkpoint_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"iteration": 1})

    def crash(obj, target):
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"iteration": 2})
    assert torch.load(path, weights_only=False) == {"iteration": 1}


@pytest.mark.slow
def test_resume_after_a_real_kill_gives_the_uninterrupted_run(tiny, tmp_path):
    def command(out: Path, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "textgym.cli", "train", "TextDetox-critic-v0", "--model", tiny, "--out", str(out),
            "--iterations", "8", "--num-envs", "2", "--max-new-tokens", "4", "--eval-episodes", "0",
            "--freeze-layers", "1", "--lr", "1e-3", *extra,
        ]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(command(whole), check=True, env=env, capture_output=True)
    process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # really killed mid-run
    done = torch.load(checkpoint, weights_only=False)["iteration"]
    assert 1 <= done < 8
    subprocess.run(command(killed, "--resume"), check=True, env=env, capture_output=True)
    assert train_records(killed) == train_records(whole)
    for name, tensor in weights(whole).items():
        torch.testing.assert_close(weights(killed)[name], tensor, rtol=0, atol=0)


def test_sb3_runs_log_evaluate_and_resume(tiny, tmp_path):
    values = {
        "env_id": "TextDetox-critic-v0", "model": tiny, "iterations": 2, "n_steps": 4, "freeze_layers": 1,
        "learning_rate": 1e-3, "eval_episodes": 2, "env_kwargs": {"max_new_tokens": 4},
    }  # fmt: skip
    summary = train("sb3-a2c", values, tmp_path, progress=False)
    assert summary["agent"] == "sb3-a2c" and summary["iterations"] == 2 and summary["episodes"] == 2
    assert summary["eval_before"] is not None and summary["kl_after"] != 0  # it moved away from the reference
    assert (tmp_path / "checkpoint.zip").exists() and (tmp_path / "learning_curve.png").exists()
    resumed = train("sb3-a2c", {**values, "iterations": 3}, tmp_path, resume=True, progress=False)
    assert resumed["iterations"] == 3 and resumed["episodes"] == 3  # continued, not restarted
    starts = [json.loads(line) for line in (tmp_path / "environment.jsonl").read_text().splitlines()]
    steps = [json.loads(line)["iteration"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(starts) == 2 and starts[0]["iteration"] == 0 and starts[0]["versions"]["stable-baselines3"]
    assert 0 < starts[1]["iteration"] < max(steps) and starts[1]["iteration"] in steps  # SB3 counts timesteps
    with pytest.raises(ValueError, match="Unknown settings"):
        train("sb3-ppo", {**values, "kl_coef": 0.1}, tmp_path / "other", progress=False)
