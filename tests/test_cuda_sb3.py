"""SB3 PPO with the LM policy on a CUDA device: skipped cleanly where there is none (run by benchmarks/gpu_check.sh)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import PPO

from textgym.agents.sb3 import EpisodeRolloutBuffer, TextGymLMPolicy
from textgym.models import load_causal_lm

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

EVERY_TOKEN_EARNS = {"default_reward": 0.1, "label_rewards": {"toxic": 0.1}}


def make(tiny: str) -> gym.Env:
    return gym.make("TextDetox-critic-v0", model=tiny, max_new_tokens=4, **EVERY_TOKEN_EARNS)


def shared_snapshot(tiny: str) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in load_causal_lm(tiny).named_parameters()}


def assert_shared_untouched(tiny: str, before: dict[str, torch.Tensor]) -> None:
    for name, p in load_causal_lm(tiny).named_parameters():  # the env's scorers use this one, on the CPU
        assert p.device.type == "cpu" and p.dtype == torch.float32 and torch.equal(p, before[name]), name


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sb3_ppo_trains_on_cuda_and_leaves_the_shared_cpu_model_alone(tiny, dtype):
    before = shared_snapshot(tiny)
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=8, batch_size=8, n_epochs=1, learning_rate=1e-3, seed=0, device="cuda",
        rollout_buffer_class=EpisodeRolloutBuffer, policy_kwargs={"model": tiny, "freeze_layers": 1, "dtype": dtype},
    )  # fmt: skip
    lm = model.policy.net.lm
    assert {p.device.type for p in model.policy.parameters()} == {"cuda"}
    trained = lm.model.layers[1].mlp.up_proj.weight
    start = trained.detach().clone()
    model.learn(16)
    assert not torch.equal(start, trained)
    assert_shared_untouched(tiny, before)


def test_a_policy_built_on_the_cpu_moves_to_cuda_by_rebuilding(tiny):
    before = shared_snapshot(tiny)
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=8, batch_size=8, n_epochs=1, learning_rate=1e-3, seed=0, device="cpu",
        policy_kwargs={"model": tiny, "freeze_layers": 1, "device": "cpu"},
    )  # fmt: skip
    model.learn(8)  # trained weights and optimizer state that the move must carry over
    trained = {name: p.detach().clone() for name, p in model.policy.net.trainable_state().items()}
    model.policy.cuda()  # as .to("cuda"): a rebuild, not a tensor-by-tensor move
    assert {p.device.type for p in model.policy.parameters()} == {"cuda"}
    for name, tensor in model.policy.net.trainable_state().items():
        torch.testing.assert_close(tensor.cpu(), trained[name].cpu())
    assert all(s["exp_avg"].device.type == "cuda" for s in model.policy.optimizer.state.values())
    assert_shared_untouched(tiny, before)
