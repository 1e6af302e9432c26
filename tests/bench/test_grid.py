"""The benchmark grid: cells, run names, how settings, agents' settings and variants combine, grid files."""

from __future__ import annotations

import json

import pytest

from textgym.bench.grid import VARIANTS, Grid, parse_assignment, split_env_id, with_reward
from textgym.error import SettingsError, UnknownNameError


def test_the_lists_expand_to_one_cell_per_combination_in_a_stable_order():
    grid = Grid(
        env_ids=["TextDetox-sparse-v0", "TextDetox-critic-v0"], agents=["lmppo", "rloo"], seeds=[0, 1], budgets=[2],
        settings={"num_envs": 2, "env_kwargs": {"max_new_tokens": 3}},
    )  # fmt: skip
    cells = grid.cells()
    assert len(cells) == 2 * 2 * 2
    assert [c.name for c in cells[:4]] == [
        "TextDetox-v0.sparse.lmppo.it2.seed0",
        "TextDetox-v0.sparse.lmppo.it2.seed1",
        "TextDetox-v0.sparse.rloo.it2.seed0",
        "TextDetox-v0.sparse.rloo.it2.seed1",
    ]
    critic = cells[-1]
    assert (critic.env_id, critic.family, critic.variant, critic.agent, critic.seed) == (
        "TextDetox-critic-v0", "TextDetox-v0", "critic", "rloo", 1,
    )  # fmt: skip
    assert critic.config == {
        "num_envs": 2, "env_kwargs": {"max_new_tokens": 3}, "env_id": "TextDetox-critic-v0", "seed": 1,
        "iterations": 2,
    }  # fmt: skip


def test_variants_set_the_reward_kind_and_merge_their_env_kwargs_over_the_shared_ones():
    grid = Grid(
        env_ids=["TextSentiment-sparse-v0"], variants=dict.fromkeys(VARIANTS), budgets=[3, 6],
        settings={"kl_coef": 0.1, "env_kwargs": {"max_new_tokens": 5, "mode": "prefix"}},
    )  # fmt: skip
    cells = {c.name: c for c in grid.cells()}
    assert len(cells) == len(VARIANTS) * 2
    for reward in ("uniform", "potential", "attention", "occlusion"):  # one variant per reward wrapper
        assert cells[f"TextSentiment-v0.{reward}.lmppo.it3.seed0"].env_id == f"TextSentiment-{reward}-v0"
    assert cells["TextSentiment-v0.potential-prefix.lmppo.it3.seed0"].config["env_kwargs"]["mode"] == "prefix"
    sparse = cells["TextSentiment-v0.sparse.lmppo.it3.seed0"]
    assert sparse.env_id == "TextSentiment-sparse-v0"
    assert sparse.config["env_kwargs"] == {"max_new_tokens": 5, "mode": "prefix"}
    episode = cells["TextSentiment-v0.critic-episode.lmppo.it6.seed0"]
    assert episode.env_id == "TextSentiment-critic-v0" and episode.iterations == 6
    assert episode.config["env_kwargs"] == {"max_new_tokens": 5, "mode": "episode"}  # the variant wins
    assert cells["TextSentiment-v0.critic-prefix.lmppo.it3.seed0"].config["env_kwargs"]["mode"] == "prefix"
    self_critique = cells["TextSentiment-v0.self-critique.lmppo.it3.seed0"].config
    assert self_critique["self_critique"] is True and self_critique["kl_coef"] == 0.1
    assert "reward" not in self_critique  # a grid key, not an agent setting


def test_two_env_ids_that_a_variant_maps_to_the_same_run_give_one_cell():
    grid = Grid(env_ids=["TextDetox-sparse-v0", "TextDetox-critic-v0"], variants={"sparse": None})
    assert [c.name for c in grid.cells()] == ["TextDetox-v0.sparse.lmppo.it12.seed0"]


def test_agent_settings_apply_to_their_agent_only_and_sb3_agents_drop_shared_settings_they_do_not_take():
    grid = Grid(
        env_ids=["TextDetox-critic-v0"], agents=["lmppo", "sb3-a2c"],
        settings={"kl_coef": 0.2, "num_envs": 2}, agent_settings={"sb3-a2c": {"n_steps": 4}},
    )  # fmt: skip
    lmppo, a2c = grid.cells()
    assert lmppo.config["kl_coef"] == 0.2 and "n_steps" not in lmppo.config and lmppo.dropped == ()
    assert a2c.config["n_steps"] == 4 and a2c.config["num_envs"] == 2
    assert "kl_coef" not in a2c.config and a2c.dropped == ("kl_coef",)


def test_a_grid_file_in_yaml_or_json_gives_the_same_cells(tmp_path):
    data = {
        "env_ids": ["TextDetox-sparse-v0"],
        "variants": {
            "sparse": None,
            "critic-prefix": {"kl_coef": 0.3},
            "judge": {"reward": "critic", "env_kwargs": {"critic": "lm-judge"}},
        },
        "seeds": [0, 1],
        "budgets": 4,
        "settings": {"num_envs": 2},
    }  # fmt: skip
    (tmp_path / "grid.json").write_text(json.dumps(data))
    import yaml

    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    from_json, from_yaml = Grid.from_file(tmp_path / "grid.json"), Grid.from_file(tmp_path / "grid.yaml")
    assert from_json.cells() == from_yaml.cells()
    cells = {c.name: c for c in from_json.cells()}
    assert len(cells) == 3 * 2
    prefix = cells["TextDetox-v0.critic-prefix.lmppo.it4.seed1"].config
    assert prefix["kl_coef"] == 0.3 and prefix["env_kwargs"] == {"mode": "prefix"}  # the built-in, then the file's
    judge = cells["TextDetox-v0.judge.lmppo.it4.seed0"]
    assert judge.env_id == "TextDetox-critic-v0" and judge.config["env_kwargs"] == {"critic": "lm-judge"}


def test_set_assigns_shared_settings_and_keys_of_dict_settings():
    grid = Grid(env_ids=["TextDetox-critic-v0"], settings={"env_kwargs": {"max_new_tokens": 3}})
    grid.set(*parse_assignment("env_kwargs.mode=prefix"))
    grid.set(*parse_assignment("learning_rate=1e-3"))
    grid.set(*parse_assignment('env_kwargs.critic_kwargs={"batch_size": 2}'))
    config = grid.cells()[0].config
    assert config["learning_rate"] == 1e-3
    assert config["env_kwargs"] == {"max_new_tokens": 3, "mode": "prefix", "critic_kwargs": {"batch_size": 2}}


def test_env_id_names_split_and_swap_their_reward_kind():
    assert split_env_id("TextDetox-critic-v0") == ("TextDetox-v0", "critic")
    assert split_env_id("TextSentiment-attention-v0") == ("TextSentiment-v0", "attention")
    assert split_env_id("MyTask-v3") == ("MyTask-v3", None)
    assert split_env_id("CartPole-v1") == ("CartPole-v1", None)  # registered, but not textgym's
    assert with_reward("TextSummarize-sparse-v0", "critic") == "TextSummarize-critic-v0"
    with pytest.raises(SettingsError, match="needs a registered textgym id"):
        with_reward("MyTask-v3", "sparse")


def test_invalid_grids_say_what_to_fix(tmp_path):
    with pytest.raises(UnknownNameError, match="Did you mean 'critic-prefix'"):
        Grid(env_ids=["TextDetox-sparse-v0"], variants={"critic-prefx": None})
    with pytest.raises(UnknownNameError, match="Did you mean 'lmppo'"):
        Grid(env_ids=["TextDetox-sparse-v0"], agents=["lmpp"])
    with pytest.raises(SettingsError, match="no seeds"):
        Grid(env_ids=["TextDetox-sparse-v0"], seeds=[])
    with pytest.raises(SettingsError, match="Budgets are iteration counts >= 1"):
        Grid(env_ids=["TextDetox-sparse-v0"], budgets=[0])
    with pytest.raises(SettingsError, match="'seed' is a grid axis"):
        Grid(env_ids=["TextDetox-sparse-v0"]).set("seed", 3)
    with pytest.raises(SettingsError, match="Unknown grid fields \\['budget'\\]"):
        Grid.from_dict({"env_ids": ["TextDetox-sparse-v0"], "budget": 3})
    with pytest.raises(SettingsError, match="reward must be one of .*'attention'.*got 'dense'"):
        Grid(env_ids=["TextDetox-sparse-v0"], variants={"odd": {"reward": "dense"}})
    with pytest.raises(SettingsError, match="No grid file"):
        Grid.from_file(tmp_path / "missing.yaml")
    with pytest.raises(SettingsError, match="Expected KEY=VALUE"):
        parse_assignment("num_envs")
    clash = Grid(env_ids=["TextDetox-sparse-v0", "TextDetox-critic-v0"], variants={"low-kl": {"kl_coef": 0.01}})
    with pytest.raises(SettingsError, match="Two cells are named 'TextDetox-v0.low-kl.lmppo.it12.seed0'"):
        clash.cells()  # the variant keeps each id's reward kind, so its name must say which
