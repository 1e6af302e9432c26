"""SB3 runs: settings (a validated dataclass) reach SB3; LM-PPO's gamma and lambda and the fast paths by default."""

from __future__ import annotations

import json

import pytest
import torch
from stable_baselines3 import A2C, PPO

from textgym.agents.lm_ppo import LMPPOConfig
from textgym.agents.sb3 import EpisodeRolloutBuffer
from textgym.error import SettingsError, UnknownNameError
from textgym.training import train
from textgym.training.sb3_config import SB3Config, SB3PPOConfig


def one_rollout(tiny: str, **overrides) -> dict:
    return {
        "env_id": "TextDetox-critic-v0", "model": tiny, "iterations": 1, "n_steps": 2, "freeze_layers": 1,
        "eval_episodes": 0, "env_kwargs": {"max_new_tokens": 2}, **overrides,
    }  # fmt: skip


@pytest.mark.parametrize("agent, algorithm", [("sb3-ppo", PPO), ("sb3-a2c", A2C)])
def test_sb3_discounts_like_lm_ppo_by_default(tiny, tmp_path, agent, algorithm):
    train(agent, one_rollout(tiny), tmp_path, progress=False)
    model = algorithm.load(tmp_path / "checkpoint.zip", device="cpu")
    assert (model.gamma, model.gae_lambda) == (LMPPOConfig.gamma, LMPPOConfig.lam) == (1.0, 0.95)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["gamma"], config["lam"]) == (1.0, 0.95)  # shown in the run's config


def test_sb3_takes_its_settings_from_the_config(tiny, tmp_path):
    train(
        "sb3-ppo",
        one_rollout(tiny, gamma=0.9, lam=0.8, batch_size=64, n_epochs=3, device="cpu"),
        tmp_path,
        progress=False,
    )
    model = PPO.load(tmp_path / "checkpoint.zip", device="cpu")
    assert (model.gamma, model.gae_lambda, model.n_epochs) == (0.9, 0.8, 3)
    assert model.batch_size == 2  # cut to n_steps
    assert model.device == torch.device("cpu")
    # The fast paths are the loop's defaults: episode minibatches, and the policy's cache and prefix sharing.
    assert model.rollout_buffer_class is EpisodeRolloutBuffer
    assert model.policy.kv_cache and model.policy.group_prefixes


def test_sb3_settings_are_validated_with_a_fix():
    assert SB3Config().gamma == 1.0 and SB3PPOConfig().lam == 0.95
    with pytest.raises(SettingsError, match="Invalid settings of SB3Config: need n_steps >= 1; 0 <= gamma <= 1"):
        SB3Config(gamma=1.5, n_steps=0)
    with pytest.raises(SettingsError, match="n_epochs >= 1"):
        SB3PPOConfig(n_epochs=0)
    with pytest.raises(UnknownNameError, match="Did you mean .bfloat16."):
        SB3Config(dtype="bfloat")
    if not torch.cuda.is_available():
        with pytest.raises(SettingsError, match="needs CUDA"):
            SB3Config(device="cuda")


def test_a2c_takes_no_ppo_settings(tiny, tmp_path):
    with pytest.raises(SettingsError, match=r"Unknown settings \['batch_size'\] for SB3Config \(sb3-a2c\)"):
        train("sb3-a2c", one_rollout(tiny, batch_size=4), tmp_path, progress=False)


def test_sb3_trains_on_several_envs_in_one_batch(tiny, tmp_path):
    summary = train("sb3-ppo", one_rollout(tiny, train_envs=2, iterations=2, batch_size=4), tmp_path, progress=False)
    model = PPO.load(tmp_path / "checkpoint.zip", device="cpu")
    assert model.n_envs == 2 and model.num_timesteps == 2 * 2 * 2  # iterations x n_steps x train_envs
    assert model.batch_size == 4 and summary["episodes"] == 4  # episodes of 2 tokens, 2 envs, 2 rollouts
    with pytest.raises(SettingsError, match="train_envs >= 1"):
        SB3Config(train_envs=0)


def test_sb3_envs_get_the_policy_device_and_dtype_for_their_scorer_and_critic(tiny, tmp_path, monkeypatch):
    import gymnasium as gym

    made = []
    real = gym.make

    def recording_make(env_id, **kwargs):
        made.append(kwargs)
        return real(env_id, **kwargs)

    monkeypatch.setattr(gym, "make", recording_make)
    train("sb3-a2c", one_rollout(tiny, device="cpu", dtype="bfloat16"), tmp_path, progress=False)
    assert made and all((kwargs["device"], kwargs["dtype"]) == ("cpu", "bfloat16") for kwargs in made)
