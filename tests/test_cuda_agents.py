"""The LM agents on a CUDA device: skipped cleanly where there is none (run by benchmarks/gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch

from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.agents.rloo import RLOO, RLOOConfig

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def settings(tiny, **overrides):
    return {
        "env_id": "TextDetox-critic-v0", "model": tiny, "num_envs": 4, "iterations": 2, "freeze_layers": 1,
        "eval_episodes": 4, "device": "cuda", "env_kwargs": {"max_new_tokens": 6}, **overrides,
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(
    ("cls", "config", "extra"),
    [
        (LMPPO, LMPPOConfig, {}),
        (RLOO, RLOOConfig, {"samples_per_prompt": 2}),
        (GRPO, GRPOConfig, {"samples_per_prompt": 2}),
    ],
)
def test_agents_train_on_cuda(tiny, cls, config, extra, dtype):
    agent = cls(config(**settings(tiny, dtype=dtype, **extra)))
    assert next(agent.policy.lm.parameters()).device.type == "cuda"
    assert agent.trunk.enabled
    for _ in range(2):
        stats = agent.step()
    assert torch.isfinite(torch.tensor(stats["loss/policy"]))
    if dtype == "bfloat16":  # stepped through float32 master weights on the GPU
        masters = agent.optimizer.master_weights
        assert masters and all(m.device.type == "cuda" and m.dtype == torch.float32 for m in masters)
    result = agent.evaluate()
    assert result["episodes"] == 4


def test_cuda_scoring_matches_the_cpu(tiny):
    cpu = LMPPO(LMPPOConfig(**settings(tiny, device="cpu")))
    gpu = LMPPO(LMPPOConfig(**settings(tiny)))
    batch = cpu.rollout(cpu.seeds(0))
    scores = cpu.score_batch(batch)
    moved = type(batch)(**{k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in batch.__dict__.items()})
    on_gpu = gpu.score_batch(moved)
    torch.testing.assert_close(on_gpu["ref_logprobs"].cpu(), scores["ref_logprobs"], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(on_gpu["logprobs"].cpu(), scores["logprobs"], atol=1e-3, rtol=1e-3)
