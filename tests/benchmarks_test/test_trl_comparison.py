"""benchmarks/trl_comparison.py without running it: the command line, TRL's reward wrapper, the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from textgym.tasks import PromptItem

PATH = Path(__file__).parents[2] / "benchmarks" / "trl_comparison.py"
spec = importlib.util.spec_from_file_location("trl_comparison", PATH)
bench = sys.modules.setdefault("trl_comparison", importlib.util.module_from_spec(spec))  # dataclasses need it
spec.loader.exec_module(bench)


def test_the_reward_scores_each_completion_with_its_own_prompt_item_and_ignores_trl_extras():
    items = [PromptItem("bad film"), PromptItem("good film"), PromptItem("fine film")]
    seen = []

    def scorer(batch, completions):
        seen.append((list(batch), list(completions)))
        return [len(text) / 10 for text in completions]

    reward = bench.trl_reward(items, scorer)
    out = reward(
        prompts=["good film", "bad film"], completions=[" yes", " no!"], completion_ids=[[1], [2]],
        item_index=[1, 0], trainer_state=None, log_extra=print, log_metric=print,
    )  # fmt: skip
    assert out == [0.4, 0.4]
    assert seen == [([items[1], items[0]], [" yes", " no!"])]


def test_the_settings_follow_the_command_line():
    args = bench.parse_args(["--completions", "16", "--max-new-tokens", "8", "--variants", "trl-grpo, rloo-sparse"])
    settings = bench.settings_of(args)
    assert args.variants == ["trl-grpo", "rloo-sparse"]
    assert (settings.completions, settings.steps, settings.max_new_tokens, settings.group) == (16, 2, 8, 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--completions", "12"], "multiple of --batch"),
        (["--group", "3"], "divide --batch"),
        (["--variants", "trl-ppo"], "unknown variants"),
    ],
)
def test_inconsistent_budgets_are_refused_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_missing_trl_is_named_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a))
    with pytest.raises(SystemExit, match=r"pip install 'textgym\[trl\]'"):
        bench.main(["--variants", "trl-grpo"])


def test_the_table_gives_throughput_against_trl_and_gain_per_completion_over_seeds():
    common = {"trainable_M": 42.5, "peak_rss_gib": 2.0, "library": "x"}
    results = {
        "trl-grpo": {
            0: {
                "completions": 16,
                "tokens": 320,
                "train_s": 8.0,
                "train_cpu_s": 4.0,
                "eval_before": 0.4,
                "eval_after": 0.5,
                **common,
            },
            1: {
                "completions": 16,
                "tokens": 320,
                "train_s": 8.0,
                "train_cpu_s": 4.0,
                "eval_before": 0.4,
                "eval_after": 0.6,
                **common,
            },
        },
        "lmppo-sparse": {
            0: {
                "completions": 16,
                "tokens": 160,
                "train_s": 16.0,
                "train_cpu_s": 2.0,
                "eval_before": 0.4,
                "eval_after": 0.44,
                **common,
            },
            1: {
                "completions": 16,
                "tokens": 160,
                "train_s": 16.0,
                "train_cpu_s": 2.0,
                "eval_before": 0.4,
                "eval_after": 0.44,
                **common,
            },
        },
        "rloo-sparse": {0: {"error": "exit 1: boom"}},
    }
    rows = bench.table(results)
    assert rows[0]["vs TRL GRPO"] == 1.0 and rows[0]["seeds"] == 2
    assert rows[0]["gain per 100 completions"] == "0.937 ± 0.44"  # 0.625 and 1.25 (0.9375 rounds to even)
    assert rows[1]["completions/s"] == "1 ± 0" and rows[1]["vs TRL GRPO"] == 0.5
    assert rows[1]["CPU vs TRL GRPO"] == 2.0 and rows[1]["completions/CPU-s"] == "8 ± 0"
    assert rows[1]["tokens/s vs LM-PPO sparse"] == 1.0 and rows[0]["tokens/s vs LM-PPO sparse"] == 4.0
    assert rows[1]["gain per 100 completions"] == "0.25 ± 0"
    assert rows[2]["status"] == "seed 0: exit 1: boom" and rows[2]["completions"] == ""
    assert list(rows[2]) == list(rows[0])
