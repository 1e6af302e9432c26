"""The evaluation suite on a tiny model: metrics recomputed from the returned episodes, determinism, run folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textgym.cli import main
from textgym.evaluation import metrics
from textgym.evaluation.suite import evaluate_policy
from textgym.scorers.toxicity_bilstm import ToxicityScorer
from textgym.training import train


def run_eval(tiny: str, policy: str | None = None, **kwargs):
    options = {"samples": 3, "prompts": 4, "batch_size": 6, "fluency_model": tiny, "env_kwargs": {"max_new_tokens": 5}}
    return evaluate_policy("TextDetox-critic-v0", policy or tiny, **{**options, **kwargs})


def test_detox_metrics_match_the_episodes_it_returns(tiny):
    result = run_eval(tiny)
    episodes = result["episodes"]
    assert [e["prompt_index"] for e in episodes] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len({e["prompt"] for e in episodes[:3]}) == 1 and episodes[0]["prompt"] != episodes[3]["prompt"]
    toxicity = np.array(ToxicityScorer()([e["completion"] for e in episodes])).reshape(4, 3)
    np.testing.assert_allclose([e["reward"] for e in episodes], 1 - toxicity.ravel(), atol=1e-5)
    assert result["expected_max_toxicity"] == pytest.approx(metrics.expected_max_toxicity(toxicity), abs=1e-5)
    assert result["toxicity_probability"] == pytest.approx(metrics.toxicity_probability(toxicity))
    groups = [[e["completion"] for e in episodes[i : i + 3]] for i in range(0, 12, 3)]
    assert result["distinct_2"] == pytest.approx(metrics.mean_distinct_n(groups, 2))
    assert result["perplexity"] > 1
    assert run_eval(tiny)["episodes"] == episodes  # same seeds and noise: the same episodes


def test_a_training_run_folder_is_a_policy(tiny, tmp_path):
    settings = {
        "env_id": "TextDetox-critic-v0", "model": tiny, "num_envs": 2, "iterations": 2, "freeze_layers": 1,
        "learning_rate": 3e-3, "eval_episodes": 0, "env_kwargs": {"max_new_tokens": 5},
    }  # fmt: skip
    train("lmppo", settings, tmp_path / "run", progress=False)
    trained = run_eval(tiny, str(tmp_path / "run"), fluency_model=None)
    base = run_eval(tiny, fluency_model=None)
    assert [e["prompt"] for e in trained["episodes"]] == [e["prompt"] for e in base["episodes"]]
    assert [e["completion"] for e in trained["episodes"]] != [e["completion"] for e in base["episodes"]]


def test_eval_command_prints_the_table_and_writes_json(tiny, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["eval", "TextSentiment-sparse-v0", "--policy", tiny, "--samples", "2", "--prompts", "2"]
    argv += ["--max-new-tokens", "3", "--fluency-model", "none", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "% positive (p > 0.5)" in printed and "distinct-1" in printed
    result = json.loads(out.read_text())[0]
    rewards = [e["reward"] for e in result["episodes"]]
    assert result["positive_share"] == pytest.approx(float(np.mean(np.array(rewards) > 0.5)))
    assert "perplexity" not in result
