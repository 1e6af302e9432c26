import json

import pytest

import textgym
from tests.tiny_model import save_tiny_causal_lm
from textgym.cli import main
from textgym.scorers.toxicity_bilstm import ToxicityScorer
from textgym.tasks import get_items


def test_list_prints_every_registered_id(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == textgym.registered_ids()
    assert all(len(line.split()) > 3 for line in lines)


def test_rollout_writes_summary_episodes_and_plot(tmp_path, capsys):
    policy = save_tiny_causal_lm(tmp_path / "tiny")
    argv = ["rollout", "TextDetox-sparse-v0", "--policy", str(policy), "--episodes", "3", "--batch-size", "2"]
    argv += ["--max-new-tokens", "4", "--seed", "5"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "TextDetox-sparse-v0" in capsys.readouterr().out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    episodes = json.loads((tmp_path / "a" / "episodes.json").read_text())
    assert (tmp_path / "a" / "rollout.png").stat().st_size > 1000
    assert len(episodes) == 3 and summary["results"]["TextDetox-sparse-v0"]["episodes"] == 3
    toxicity = ToxicityScorer()([episode["completion"] for episode in episodes])
    for episode, value in zip(episodes, toxicity, strict=True):
        assert episode["reward"] == pytest.approx(1 - value, abs=1e-6)  # float32 model, batch of 1 vs 3
        assert 1 <= episode["num_new_tokens"] <= 4
    prompts = {item.source for item in get_items("detox", "train")}
    assert all(episode["prompt"] in prompts for episode in episodes)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0  # same seed, same episodes
    assert json.loads((tmp_path / "b" / "episodes.json").read_text()) == episodes


def test_unknown_policy_is_a_clear_error(capsys):
    assert main(["rollout", "TextDetox-sparse-v0", "--policy", "smollm-135m", "--episodes", "1"]) == 2
    assert "Did you mean 'smollm2-135m-instruct'" in capsys.readouterr().err


def test_an_unknown_environment_id_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    assert main(["train", "TextDetox-critic-v9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown environment id 'TextDetox-critic-v9'. Did you mean 'TextDetox-critic-v0'?" in err
    # several ids: all are checked before the first one runs
    assert main(["rollout", "TextDetox-sparse-v0", "TextDetox-critc-v0", "--out", str(tmp_path / "roll")]) == 2
    assert "Did you mean 'TextDetox-critic-v0'?" in capsys.readouterr().err
    assert not (tmp_path / "roll").exists()
    assert main(["eval", "TextDetox-critc-v0", "--policy", "no-such-policy"]) == 2  # the id, before the policy
    assert "Unknown environment id 'TextDetox-critc-v0'" in capsys.readouterr().err


def test_compare_checks_every_id_before_it_trains_the_first(tmp_path, capsys):
    assert main(["compare", "TextDetox-sparse-v0", "TextDetox-sparse-v9", "--out", str(tmp_path / "cmp")]) == 2
    assert "Unknown environment id 'TextDetox-sparse-v9'" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()  # the first id did not train


def test_bad_critic_eval_and_bench_inputs_are_clear_errors(tmp_path, capsys):
    assert main(["critic-eval", "--task", "detx"]) == 2
    assert "Unknown task 'detx'. Did you mean 'detox'?" in capsys.readouterr().err
    for bad in ("{trim: false}", "[1]"):  # argparse's own error, as for train's JSON flags
        with pytest.raises(SystemExit) as exit_info:
            main(["critic-eval", "--task", "detox", "--critic-kwargs", bad])
        assert exit_info.value.code == 2
        assert f"argument --critic-kwargs: invalid JSON dict value: '{bad}'" in capsys.readouterr().err
    grid = tmp_path / "grid.yaml"
    grid.write_text("env_ids: [TextDetox-sparse-v0\n")
    assert main(["bench", "--grid", str(grid), "--out", str(tmp_path / "bench")]) == 2
    assert "grid.yaml is not valid YAML" in capsys.readouterr().err


def test_compare_trains_each_id_and_prints_the_before_after_table(tmp_path, capsys):
    policy = save_tiny_causal_lm(tmp_path / "tiny")
    argv = ["compare", "TextDetox-critic-v0", "TextDetox-sparse-v0", "--model", str(policy), "--iterations", "2"]
    argv += ["--num-envs", "2", "--max-new-tokens", "3", "--eval-episodes", "2", "--eval-every", "1"]
    argv += ["--freeze-layers", "1", "--out", str(tmp_path / "cmp")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "TextDetox-critic-v0" in out and "TextDetox-sparse-v0" in out and "before" in out
    summaries = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [s["env_id"] for s in summaries] == ["TextDetox-critic-v0", "TextDetox-sparse-v0"]
    assert all(s["episodes"] == 4 and s["eval_after"] is not None for s in summaries)
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000
    config = json.loads((tmp_path / "cmp" / "TextDetox-critic-v0-seed0" / "config.json").read_text())
    assert config["agent"] == "lmppo" and config["freeze_layers"] == 1 and config["env_kwargs"]["max_new_tokens"] == 3


def test_the_main_job_runs_the_rewards_grid_settings_of_its_two_cells():
    # The README reads the grid's LM-PPO sentiment critic and sparse runs as the main job's seeds.
    from pathlib import Path

    from textgym.bench.grid import Grid
    from textgym.cli import build_parser
    from textgym.cli_train import COMPARE_IDS, MAIN_JOB, agent_config

    grid = Grid.from_file(Path(__file__).parents[1] / "benchmarks" / "grids" / "rewards.yaml")
    cells = {(cell.env_id, cell.agent, cell.seed, cell.iterations): cell for cell in grid.cells()}
    args = build_parser().parse_args(["compare"])
    for env_id in COMPARE_IDS:
        main_job = agent_config(args, env_id, 1, MAIN_JOB)
        assert main_job.pop("env_kwargs") == {}  # the task's own episode length, as in the grid
        assert main_job == cells[(env_id, args.agent, 1, MAIN_JOB["iterations"])].config


def test_train_rloo_and_bad_settings(tmp_path, capsys):
    policy = save_tiny_causal_lm(tmp_path / "tiny")
    argv = ["train", "TextDetox-sparse-v0", "--agent", "rloo", "--model", str(policy), "--iterations", "1"]
    argv += ["--num-envs", "4", "--max-new-tokens", "3", "--eval-episodes", "0", "--freeze-layers", "1"]
    assert main([*argv, "--set", "samples_per_prompt=2", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["episodes"] == 4
    assert main([*argv, "--set", "no_such_setting=1", "--out", str(tmp_path / "bad")]) == 2
    assert "Unknown settings ['no_such_setting']" in capsys.readouterr().err


def test_train_grpo_on_the_sentiment_critic_id_with_device_and_dtype(tmp_path, capsys):
    policy = save_tiny_causal_lm(tmp_path / "tiny")
    argv = ["train", "TextSentiment-critic-v0", "--agent", "grpo", "--model", str(policy), "--iterations", "1"]
    argv += ["--num-envs", "4", "--samples-per-prompt", "2", "--max-new-tokens", "3", "--eval-episodes", "0"]
    argv += ["--device", "cpu", "--dtype", "float32", "--out", str(tmp_path / "g")]
    assert main(argv) == 0
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert (config["agent"], config["device"], config["dtype"], config["samples_per_prompt"]) == (
        "grpo", "cpu", "float32", 2,
    )  # fmt: skip


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_train_on_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    argv = ["train", "TextSentiment-critic-v0", "--device", "cuda", "--out", str(tmp_path / "c")]
    assert main(argv) == 2
    assert "device='cuda' needs CUDA" in capsys.readouterr().err
