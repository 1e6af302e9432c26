"""Device and dtype settings of the LM agents, tested on the CPU (the CUDA runs are in tests/test_cuda_agents.py)."""

from __future__ import annotations

import pytest
import torch

from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.devices import resolve_device, resolve_dtype
from textgym.error import SettingsError, UnknownNameError

NO_CUDA = not torch.cuda.is_available()


def settings(tiny, **overrides):
    return {
        "env_id": "TextDetox-critic-v0", "model": tiny, "num_envs": 4, "iterations": 1, "freeze_layers": 1,
        "eval_episodes": 2, "env_kwargs": {"max_new_tokens": 4}, **overrides,
    }  # fmt: skip


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(device):
    with pytest.raises(SettingsError, match=r"needs CUDA.*Use device='cpu'"):
        LMPPOConfig(device=device)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu"])
def test_unknown_devices_list_the_valid_ones(name):
    with pytest.raises(SettingsError, match="Valid devices: auto, cpu, cuda, cuda:N"):
        resolve_device(name)


def test_unknown_dtype_suggests_the_right_one():
    with pytest.raises(UnknownNameError, match="Did you mean 'bfloat16'"):
        LMPPOConfig(dtype="bfloat")


@pytest.mark.skipif(not NO_CUDA, reason="auto picks the GPU where there is one")
def test_auto_is_the_cpu_here(tiny):
    assert resolve_device("auto") == torch.device("cpu")
    agent = LMPPO(LMPPOConfig(**settings(tiny, device="auto")))
    assert next(agent.policy.parameters()).device.type == "cpu"


def test_bfloat16_policy_and_reference_train_on_the_cpu(tiny):
    agent = GRPO(GRPOConfig(**settings(tiny, device="cpu", dtype="bfloat16", samples_per_prompt=2)))
    assert resolve_dtype("bfloat16") == torch.bfloat16
    assert agent.policy.lm.model.layers[1].mlp.up_proj.weight.dtype == torch.bfloat16
    assert agent.reference.model.layers[1].mlp.up_proj.weight.dtype == torch.bfloat16
    assert agent.trunk.enabled
    # The env stays on the CPU; its scorer and critic models are told the agent's device and dtype.
    assert agent.envs.get_attr("device")[0] == "cpu" and agent.envs.get_attr("dtype")[0] == "bfloat16"
    stats = agent.step()
    assert all(torch.isfinite(torch.tensor(value)) for key, value in stats.items() if key.startswith(("loss", "kl")))
    # The float32 model that the env's scorers share is not touched by the bf16 copy.
    from textgym.models import load_causal_lm

    assert load_causal_lm(tiny).model.layers[1].mlp.up_proj.weight.dtype == torch.float32
