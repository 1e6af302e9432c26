"""The agent registry: every entry loads, names and settings are checked, and one line makes a new agent usable."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import pytest

from tests.tiny_model import save_tiny_causal_lm
from textgym.agents.lm_ppo import LMPPOConfig
from textgym.bench.grid import Grid
from textgym.cli import main
from textgym.error import SettingsError, UnknownNameError
from textgym.training import AGENTS, LOOPS, AgentSpec, RunFolder, agent_spec, make_agent, make_config


@dataclass
class ToyPPOConfig(LMPPOConfig):
    """LM-PPO with one more setting (a stand-in for a new agent's config).

    Attributes:
        toy_knob: A setting only the toy agent has.
    """

    toy_knob: int = 1


TOY = AgentSpec(
    name="toy-ppo", config=f"{__name__}:ToyPPOConfig", agent="textgym.agents.lm_ppo:LMPPO", loop="lm", help="a toy"
)


def test_every_entry_loads_its_config_and_agent_and_names_a_loop():
    assert list(AGENTS) == ["lmppo", "rloo", "grpo", "sb3-ppo", "sb3-a2c"]
    for spec in AGENTS.values():
        assert spec.loop in LOOPS and spec.help
        assert spec.setting_names() == {f.name for f in fields(spec.config_class())}
        assert callable(spec.agent_class())
        assert {"env_id", "seed", "iterations", "model", "env_kwargs"} <= spec.setting_names()


def test_names_and_settings_are_checked_with_a_fix():
    with pytest.raises(UnknownNameError, match="Did you mean 'sb3-ppo'"):
        agent_spec("sb3_ppo")
    with pytest.raises(SettingsError, match=r"Unknown settings \['kl_coef'\] for SB3PPOConfig \(sb3-ppo\)"):
        make_config("sb3-ppo", {"kl_coef": 0.1})
    assert make_config("rloo", {"samples_per_prompt": 2}).samples_per_prompt == 2
    with pytest.raises(SettingsError, match="trains in its library's loop"):
        make_agent("sb3-a2c", {})


def test_the_run_folder_names_its_files_and_cuts_metrics_back_to_a_checkpoint(tmp_path):
    run = RunFolder(tmp_path / "run", "sb3").create()
    assert run.checkpoint.name == "checkpoint.zip" and RunFolder(run.path).checkpoint.name == "checkpoint.pt"
    assert not run.has_checkpoint()
    run.write_config("sb3-ppo", {"seed": 0})
    assert run.read_config() == {"agent": "sb3-ppo", "seed": 0}
    run.start_metrics()
    for kind, iteration in (("eval", 0), ("train", 1), ("train", 2), ("eval", 2), ("train", 3)):
        run.log({"kind": kind, "iteration": iteration})
    run.cut_metrics(1, kinds=("train",))
    assert [(r["kind"], r["iteration"]) for r in run.records()] == [("eval", 0), ("train", 1), ("eval", 2)]
    run.cut_metrics(1)
    assert [r["iteration"] for r in run.records("eval")] == [0]


def test_one_registry_line_makes_an_agent_trainable_from_the_cli_and_the_bench(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(AGENTS, TOY.name, TOY)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "toy-ppo a toy" in help_text and "settings of toy-ppo (ToyPPOConfig): --toy-knob INT" in help_text
    assert [cell.agent for cell in Grid(env_ids=["TextDetox-sparse-v0"], agents=["toy-ppo"]).cells()] == ["toy-ppo"]
    tiny = save_tiny_causal_lm(tmp_path / "tiny")
    argv = ["train", "TextDetox-sparse-v0", "--agent", "toy-ppo", "--toy-knob", "3", "--model", str(tiny)]
    argv += ["--iterations", "1", "--num-envs", "2", "--max-new-tokens", "2", "--eval-episodes", "0"]
    assert main([*argv, "--freeze-layers", "1", "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["agent"] == "toy-ppo" and config["toy_knob"] == 3
