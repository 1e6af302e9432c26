"""bfloat16 training through float32 master weights (textgym.agents.precision), on the optimizer and the agents."""

from __future__ import annotations

import pytest
import torch

from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.agents.precision import with_float32_master


def settings(tiny, **overrides):
    return {
        "env_id": "TextDetox-sparse-v0", "model": tiny, "num_envs": 4, "iterations": 2, "freeze_layers": 1,
        "eval_episodes": 0, "env_kwargs": {"max_new_tokens": 4}, "dtype": "bfloat16", "max_update_kl": None,
        "warmup_iterations": 0, **overrides,
    }  # fmt: skip


def test_small_steps_accumulate_in_the_master_and_move_the_bfloat16_weight():
    # 200 Adam steps of 1e-4 (each a twentieth of the bfloat16 spacing at 0.5): plain bfloat16 Adam rounds every
    # one away; the master weight follows float32 Adam and the model holds it rounded.
    start = torch.full((64,), 0.5)
    gradient = torch.linspace(-1.0, 1.0, 64).to(torch.bfloat16)
    float32 = start.clone().requires_grad_(True)
    plain = start.to(torch.bfloat16).requires_grad_(True)
    mixed = start.to(torch.bfloat16).requires_grad_(True)
    optimizers = [
        torch.optim.Adam([float32], lr=1e-4),
        torch.optim.Adam([plain], lr=1e-4),
        with_float32_master(torch.optim.Adam)([mixed], lr=1e-4),
    ]
    for _ in range(200):
        float32.grad, plain.grad, mixed.grad = gradient.float(), gradient.clone(), gradient.clone()
        for optimizer in optimizers:
            optimizer.step()
    assert torch.equal(plain.detach(), start.to(torch.bfloat16))  # the failure this module exists for
    (master,) = optimizers[2].master_weights
    assert master.dtype == torch.float32 and torch.allclose(master, float32.detach(), atol=1e-7)
    assert torch.equal(mixed.detach(), float32.detach().to(torch.bfloat16))
    assert (mixed.detach() != start.to(torch.bfloat16)).float().mean() > 0.9


def test_float32_parameters_are_stepped_directly():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = with_float32_master(torch.optim.AdamW)([weight], lr=0.1)
    weight.grad = torch.ones(3)
    optimizer.step()
    assert optimizer.master_weights == [] and optimizer.param_groups[0]["params"][0] is weight
    assert float(weight.detach()[0]) < 1.0
    assert with_float32_master(type(optimizer)) is type(optimizer)


@pytest.mark.parametrize("agent_class, config_class", [(GRPO, GRPOConfig), (LMPPO, LMPPOConfig)])
def test_a_bfloat16_agent_trains_its_master_weights_and_resumes_from_them(tiny, agent_class, config_class):
    extra = {"samples_per_prompt": 2} if agent_class is GRPO else {}
    agent = agent_class(config_class(**settings(tiny, **extra)))
    trainable = [p for p in agent.policy.lm.parameters() if p.requires_grad]
    assert {p.dtype for p in trainable} == {torch.bfloat16}
    start = [p.detach().float().clone() for p in trainable]
    for _ in range(2):
        agent.step()
    masters = agent.optimizer.master_weights
    assert len(masters) == len(trainable)
    moved = sum(int((m != s).sum()) for m, s in zip(masters, start, strict=True)) / sum(s.numel() for s in start)
    assert moved > 0.9  # Adam moves every weight that has a gradient; the bfloat16 copies mostly lag behind
    assert all(torch.equal(p.detach(), m.detach().to(torch.bfloat16)) for p, m in zip(trainable, masters, strict=True))
    assert any(not torch.equal(p.detach().float(), m.detach()) for p, m in zip(trainable, masters, strict=True))

    state = agent.state_dict()
    resumed = agent_class(config_class(**settings(tiny, **extra)))
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(resumed.optimizer.master_weights, masters, strict=True))
    stepped = [p for p in resumed.policy.lm.parameters() if p.requires_grad]
    assert all(torch.equal(a.detach(), b.detach()) for a, b in zip(stepped, trainable, strict=True))
    agent.close()
    resumed.close()


def test_an_undone_update_restores_the_master_weights_too(tiny):
    # A trust region no step can stay inside: every step is undone, and the masters must be back at the start,
    # or the next step would carry the undone ones into the model.
    agent = GRPO(GRPOConfig(**settings(tiny, samples_per_prompt=2, max_update_kl=1e-12, learning_rate=1e-3)))
    start = [p.detach().float().clone() for p in agent.policy.lm.parameters() if p.requires_grad]
    stats = agent.step()
    assert stats["ppo/steps"] == 0 and stats["ppo/undone_steps"] >= 1
    assert all(torch.equal(m.detach(), s) for m, s in zip(agent.optimizer.master_weights, start, strict=True))
    agent.close()
