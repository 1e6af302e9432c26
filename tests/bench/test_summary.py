"""The benchmark summary against hand-computed values: curves, mean ± std, episodes to target, cost, plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from textgym.bench import report
from textgym.bench.plots import seed_band
from textgym.bench.summary import (
    collect,
    cumulative,
    episodes_to_target,
    learning_curve,
    mean_std,
    summarize,
    write_summary,
)


def train(episodes: int, reward: float, seconds: float = 1.0, calls: float | None = None) -> dict:
    record = {"kind": "train", "iteration": episodes // 2, "episodes": episodes, "reward/extrinsic": reward,
              "reward/critic": 0.0, "time/iteration_s": seconds}  # fmt: skip
    return record if calls is None else {**record, "critic/calls": calls}


def evaluation(episodes: int, reward: float) -> dict:
    return {"kind": "eval", "iteration": episodes // 2, "episodes": episodes, "eval/extrinsic": reward, "eval/kl": 0.0}


def write_run(out: Path, variant: str, seed: int, records: list[dict], finished: bool = True) -> None:
    env_id = "TextDetox-sparse-v0" if variant == "sparse" else "TextDetox-critic-v0"
    name = f"TextDetox-v0.{variant}.lmppo.it2.seed{seed}"
    run = out / "runs" / name
    run.mkdir(parents=True)
    cell = {"name": name, "env_id": env_id, "family": "TextDetox-v0", "variant": variant, "agent": "lmppo",
            "seed": seed, "iterations": 2, "config": {"env_id": env_id, "seed": seed, "iterations": 2}}  # fmt: skip
    (run / "cell.json").write_text(json.dumps(cell))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        trains = [r for r in records if r["kind"] == "train"]
        evals = [r for r in records if r["kind"] == "eval"]
        summary = {"episodes": trains[-1]["episodes"], "eval_before": evals[0]["eval/extrinsic"],
                   "eval_after": evals[-1]["eval/extrinsic"], "kl_after": 0.0,
                   "seconds": sum(r["time/iteration_s"] for r in trains)}  # fmt: skip
        (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def bench(tmp_path) -> Path:
    """Sparse finals 0.5 and 0.25 (target 0.375); critic seed 0 reaches it at 2 episodes, seed 1 never does."""
    write_run(tmp_path, "sparse", 0, [evaluation(0, 0.1), train(2, 0.2, 1.5), train(4, 0.3, 2.5), evaluation(4, 0.5)])
    write_run(tmp_path, "sparse", 1, [evaluation(0, 0.0), train(2, 0.1), train(4, 0.375), evaluation(4, 0.25)])
    write_run(tmp_path, "critic", 0, [evaluation(0, 0.1), train(2, 0.4, calls=3), train(4, 0.2, calls=7),
                                      evaluation(4, 0.6)])  # fmt: skip
    # resumed after the first iteration: the critic's counter restarted at 0
    write_run(tmp_path, "critic", 1, [evaluation(0, 0.1), train(2, 0.3, calls=2), train(4, 0.2, calls=1),
                                      evaluation(4, 0.3)])  # fmt: skip
    write_run(tmp_path, "critic-prefix", 0, [evaluation(0, 0.1), train(2, 0.1), train(4, 0.1), evaluation(4, 0.1)])
    write_run(tmp_path, "critic-prefix", 1, [evaluation(0, 0.1), train(2, 0.1)], finished=False)  # killed
    return tmp_path


def test_mean_and_population_std_over_seeds():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(math.sqrt(1.25)))
    assert mean_std([0.7]) == (0.7, 0.0)
    assert mean_std([]) == (None, None)
    assert mean_std([None, float("nan"), 2.0]) == (2.0, 0.0)


def test_a_counter_that_restarts_on_resume_is_summed():
    assert cumulative([2, 5, None, 1, 4]) == [2.0, 5.0, 5.0, 6.0, 9.0]
    assert cumulative([None, None]) == [0.0, 0.0]


def test_the_learning_curve_has_reward_against_episodes_and_cumulative_training_seconds():
    records = [evaluation(0, 0.1), train(2, 0.2, 1.5, calls=3), train(4, 0.3, 2.5, calls=7), evaluation(4, 0.5)]
    curve = learning_curve(records)
    assert [(r["kind"], r["episodes"], r["seconds"], r["reward"], r["critic_calls"]) for r in curve] == [
        ("eval", 0, 0.0, 0.1, 0.0),
        ("train", 2, 1.5, 0.2, 3.0),
        ("train", 4, 4.0, 0.3, 7.0),
        ("eval", 4, 4.0, 0.5, 7.0),
    ]


def test_episodes_to_target_is_the_first_train_or_eval_point_at_or_above_it():
    curve = learning_curve([evaluation(0, 0.1), train(2, 0.2), train(4, 0.6), evaluation(4, 0.3), train(6, 0.7)])
    assert episodes_to_target(curve, 0.6) == 4  # the train batch at 4 episodes
    assert episodes_to_target(curve, 0.3) == 4  # the eval at 4 episodes (the train batch at 2 is below)
    assert episodes_to_target(curve, 0.1) == 0  # already there before training
    assert episodes_to_target(curve, 0.9) is None  # never reached
    assert episodes_to_target(curve, None) is None
    assert episodes_to_target(learning_curve([train(2, float("nan")), train(4, 0.5)]), 0.4) == 4


def test_the_summary_table_matches_hand_computed_values(bench):
    rows = {row["variant"]: row for row in write_summary(bench)}
    sparse, critic, prefix = rows["sparse"], rows["critic"], rows["critic-prefix"]
    assert (sparse["eval_final_mean"], sparse["eval_final_std"], sparse["seeds"]) == (0.375, 0.125, 2)
    assert sparse["target"] == critic["target"] == prefix["target"] == 0.375
    # sparse seed 0 first reaches 0.375 with its eval at 4 episodes (train 0.3 there), seed 1 with its train batch at 4
    assert (sparse["episodes_to_target_mean"], sparse["episodes_to_target_std"], sparse["reached"]) == (4, 0, 2)
    assert critic["eval_final_mean"] == pytest.approx(0.45) and critic["eval_final_std"] == pytest.approx(0.15)
    assert (critic["episodes_to_target_mean"], critic["reached"]) == (2, 1)  # seed 1 never reaches it
    assert critic["critic_calls_mean"] == 5  # (7 + (2 + 1)) / 2
    assert sparse["seconds_mean"] == 3.0 and sparse["seconds_std"] == 1.0  # 4 and 2 seconds
    assert (prefix["seeds"], prefix["missing"], prefix["reached"]) == (1, 1, 0)
    assert prefix["episodes_to_target_mean"] is None

    markdown = (bench / "summary.md").read_text()
    assert "| TextDetox-v0 | sparse | lmppo | 2 | 2 | 0.050 | 0.375 ± 0.125 | 0.375 | 4 ± 0 |" in markdown
    assert "| 2 ± 0 (1/2) | 5 |" in markdown
    assert "| >4 |" in markdown and "1 (+1 unfinished)" in markdown
    assert "Unfinished cells (no summary.json): TextDetox-v0.critic-prefix.lmppo.it2.seed1." in markdown
    with open(bench / "summary.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["variant"] for r in table] == ["critic", "critic-prefix", "sparse"]
    assert float(table[2]["eval_final_std"]) == 0.125
    saved = json.loads((bench / "summary.json").read_text())
    assert len(saved["runs"]) == 5 and saved["missing"] == ["TextDetox-v0.critic-prefix.lmppo.it2.seed1"]


def test_each_run_gets_its_curve_as_csv_and_its_result_as_json(bench):
    write_summary(bench)
    run = bench / "runs" / "TextDetox-v0.critic.lmppo.it2.seed1"
    with open(run / "curve.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert [(r["kind"], r["episodes"], r["reward"], r["critic_calls"]) for r in curve] == [
        ("eval", "0", "0.1", "0.0"), ("train", "2", "0.3", "2.0"), ("train", "4", "0.2", "3.0"),
        ("eval", "4", "0.3", "3.0"),
    ]  # fmt: skip
    result = json.loads((run / "result.json").read_text())
    assert (result["eval_final"], result["critic_calls"], result["seconds"], len(result["curve"])) == (0.3, 3.0, 2.0, 4)


def test_an_explicit_target_replaces_the_sparse_variants_final_reward(bench):
    rows = {row["variant"]: row for row in summarize(*collect(bench), target=0.55)}
    assert rows["critic"]["target"] == 0.55
    assert (rows["critic"]["episodes_to_target_mean"], rows["critic"]["reached"]) == (4, 1)  # seed 0's eval 0.6
    assert rows["sparse"]["reached"] == 0


def test_no_sparse_variant_means_no_target():
    curve = learning_curve([evaluation(0, 0.1), train(2, 0.9), evaluation(2, 0.9)])
    run = {"family": "F", "agent": "lmppo", "iterations": 1, "variant": "critic", "env_id": "X", "seed": 0,
           "episodes": 2, "eval_before": 0.1, "eval_final": 0.9, "seconds": 1.0, "critic_calls": 0.0,
           "curve": curve}  # fmt: skip
    (row,) = summarize([run])
    assert row["target"] is None and row["episodes_to_target_mean"] is None


def test_seed_bands_interpolate_on_the_range_every_seed_covers():
    grid, mean, std = seed_band([([0, 2, 4], [0, 1, 2]), ([0, 4], [2, 2])])
    np.testing.assert_allclose(grid, [0, 2, 4])
    np.testing.assert_allclose(mean, [1, 1.5, 2])
    np.testing.assert_allclose(std, [1, 0.5, 0])
    grid, mean, _ = seed_band([([0, 2, 4], [0, 2, 4]), ([1, 3], [1, 3])])
    np.testing.assert_allclose(grid, [1, 2, 3])  # nothing outside [1, 3]
    np.testing.assert_allclose(mean, [1, 2, 3])
    assert seed_band([([0, 1], [0, 1]), ([2, 3], [0, 1])]) is None
    assert seed_band([]) is None


def test_report_writes_the_learning_curves_and_the_sample_efficiency_chart(bench):
    written = report(bench)
    names = sorted(path.name for path in written["plots"])
    assert names == ["curves-TextDetox-v0-lmppo-it2.png", "sample_efficiency.png"]
    for path in written["plots"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
