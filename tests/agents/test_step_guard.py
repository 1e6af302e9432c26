"""The trust region of every update: no update ends more than max_update_kl from the rollout policy."""

from __future__ import annotations

import pytest
import torch

from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.agents.rloo import RLOO, RLOOConfig


def settings(tiny, **overrides):
    return {
        "env_id": "TextDetox-critic-v0", "model": tiny, "num_envs": 4, "iterations": 3, "freeze_layers": 1,
        "eval_episodes": 0, "device": "cpu", "learning_rate": 0.05, "warmup_iterations": 0,
        "env_kwargs": {"max_new_tokens": 6, "default_reward": 0.1, "label_rewards": {"toxic": -0.3}}, **overrides,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "config", "extra"),
    [
        (LMPPO, LMPPOConfig, {"epochs": 3}),
        (GRPO, GRPOConfig, {"samples_per_prompt": 2, "epochs": 2, "minibatches": 2}),
        (RLOO, RLOOConfig, {"samples_per_prompt": 2}),
    ],
)
def test_a_huge_learning_rate_is_held_inside_the_bound(tiny, cls, config, extra):
    bound = 1e-3
    agent = cls(config(**settings(tiny, max_update_kl=bound, **extra)))
    undone = 0
    for _ in range(3):
        stats = agent.step()
        assert stats["ppo/post_update_kl"] <= bound
        undone += stats["ppo/undone_steps"]
    assert undone >= 1  # lr 0.05 leaves the region: steps were undone


def test_an_update_undone_whole_is_logged_with_the_fix(tiny, caplog):
    agent = LMPPO(LMPPOConfig(**settings(tiny, max_update_kl=1e-9, learning_rate=1.0)))
    stats = agent.step()
    assert stats["ppo/steps"] == 0 and stats["ppo/undone_steps"] >= 1
    assert "Lower the learning rate" in caplog.text


@pytest.mark.parametrize(
    ("cls", "config", "extra", "measures"),
    [
        (LMPPO, LMPPOConfig, {}, 0),  # the second minibatch's pre-step KL undoes the first step: nothing to measure
        (GRPO, GRPOConfig, {"samples_per_prompt": 2}, 1),  # on-policy, one step: measured after it, then undone
    ],
)
def test_an_update_undone_whole_is_back_at_the_start_and_not_measured_there(tiny, cls, config, extra, measures):
    agent = cls(config(**settings(tiny, max_update_kl=1e-9, learning_rate=1.0, **extra)))
    start = [p.detach().clone() for p in agent.policy.parameters()]
    measured = []
    post_update_kl = agent.post_update_kl
    agent.post_update_kl = lambda batch, old: measured.append(post_update_kl(batch, old)) or measured[-1]
    stats = agent.step()
    assert stats["ppo/steps"] == 0 and stats["ppo/undone_steps"] >= 1
    assert all(torch.equal(p, q) for p, q in zip(agent.policy.parameters(), start, strict=True))
    assert len(measured) == measures and all(kl > 1e-9 for kl in measured)  # the start's KL is 0: not measured
    assert stats["ppo/post_update_kl"] == 0.0


def test_without_a_bound_the_same_steps_go_far(tiny):
    agent = LMPPO(LMPPOConfig(**settings(tiny, max_update_kl=None, epochs=3)))
    stats = agent.step()
    assert stats["ppo/undone_steps"] == 0 and stats["ppo/steps"] == 6
    assert stats["ppo/post_update_kl"] > 1e-3
