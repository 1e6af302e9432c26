"""GRPO and the group advantages it shares with RLOO: hand-computed cases, dense credit, training end to end."""

from __future__ import annotations

import pytest
import torch

from textgym.agents.group import group_advantages, returns_to_go
from textgym.agents.grpo import GRPO, GRPOConfig, k3_kl
from textgym.agents.rloo import RLOO, RLOOConfig
from textgym.error import SettingsError

REWARDS = torch.tensor([[0.5, 0.0, 1.0], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
VALID = torch.tensor([[True, True, True], [True, True, False], [True, True, True], [True, False, False]])


def grpo_config(tiny, **overrides):
    settings = {
        "env_id": "TextDetox-critic-v0", "model": tiny, "num_envs": 4, "iterations": 2, "freeze_layers": 1,
        "samples_per_prompt": 2, "eval_episodes": 2, "device": "cpu",
        "env_kwargs": {"max_new_tokens": 5, "default_reward": 0.1, "label_rewards": {"toxic": 0.1}},
    }  # fmt: skip
    return GRPOConfig(**{**settings, **overrides})


def test_returns_to_go_by_hand():
    expected = torch.tensor([[1.5, 1.0, 1.0], [0.5, 0.5, 0.0], [2.0, 2.0, 2.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(returns_to_go(REWARDS, VALID), expected)


def test_grpo_sequence_advantages_are_group_normalised_returns():
    got = group_advantages(REWARDS, VALID, group=2, credit="sequence", scale=True, eps=0.0)
    # Group 1 returns 1.5 and 0.5 (mean 1, std 0.7071); group 2 returns 2 and 1 (mean 1.5, std 0.7071).
    s = 0.5**0.5
    expected = torch.tensor([[0.5 / s] * 3, [-0.5 / s, -0.5 / s, 0], [0.5 / s] * 3, [-0.5 / s, 0, 0]])
    torch.testing.assert_close(got, expected)


def test_returns_to_go_credit_by_hand_and_equal_to_sequence_under_sparse_rewards():
    got = group_advantages(REWARDS, VALID, group=2, credit="returns-to-go", scale=True, eps=0.0)
    s = 0.5**0.5
    expected = torch.tensor(
        [[0.5 / s, 0.0, 0.0], [-0.5 / s, -0.5 / s, 0.0], [0.5 / s, 0.5 / s, 0.5 / s], [-0.5 / s, 0.0, 0.0]]
    )
    torch.testing.assert_close(got, expected)
    sparse = torch.zeros_like(REWARDS)
    lengths = VALID.sum(1)
    sparse[torch.arange(4), lengths - 1] = REWARDS.sum(1)
    torch.testing.assert_close(
        group_advantages(sparse, VALID, 2, "returns-to-go", scale=True),
        group_advantages(sparse, VALID, 2, "sequence", scale=True),
    )


def test_rloo_leave_one_out_returns_to_go_by_hand():
    got = group_advantages(REWARDS, VALID, group=2, credit="returns-to-go", leave_one_out=True)
    # Row 0's baseline is row 1's return 0.5 and vice versa; rows 2 and 3: 1.0 and 2.0.
    expected = torch.tensor([[1.0, 0.5, 0.5], [-1.0, -1.0, 0.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    torch.testing.assert_close(got, expected)


def test_group_advantages_reject_bad_groups():
    with pytest.raises(ValueError, match="divide"):
        group_advantages(REWARDS, VALID, group=3)
    with pytest.raises(KeyError, match="Did you mean 'returns-to-go'"):
        group_advantages(REWARDS, VALID, group=2, credit="returns_to_go")


def test_k3_is_zero_at_equality_and_positive_elsewhere():
    logp = torch.tensor([-1.0, -2.0, -0.5])
    assert torch.equal(k3_kl(logp, logp), torch.zeros(3))
    assert (k3_kl(logp, logp - 0.3) > 0).all() and (k3_kl(logp, logp + 0.3) > 0).all()


def test_grpo_groups_prompts_trains_and_is_deterministic(tiny):
    def run(seed):
        agent = GRPO(grpo_config(tiny, seed=seed))
        batch = agent.rollout(agent.seeds(0))
        assert batch.prompts[0] == batch.prompts[1] and batch.prompts[2] == batch.prompts[3]
        before = agent.policy.lm.model.layers[1].mlp.up_proj.weight.detach().clone()
        stats = agent.update(batch)
        assert not torch.equal(before, agent.policy.lm.model.layers[1].mlp.up_proj.weight)
        assert stats["ppo/clipfrac"] == 0.0 and stats["ppo/approx_kl"] == 0.0  # on-policy: ratio 1
        assert stats["kl/per_episode"] == 0.0 and stats["ppo/post_update_kl"] > 0
        return stats, agent.policy.trainable_state()

    (a, state_a), (b, state_b) = run(1), run(1)
    assert a == b
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name])


def test_grpo_with_several_epochs_stops_early_on_kl(tiny):
    agent = GRPO(grpo_config(tiny, epochs=4, minibatches=2, learning_rate=0.05, warmup_iterations=0,
                             max_update_kl=1e-6))  # fmt: skip
    stats = agent.update(agent.rollout(agent.seeds(0)))
    assert stats["ppo/early_stop"] == 1.0 and stats["ppo/steps"] < 8


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [({"samples_per_prompt": 3}, "samples_per_prompt"), ({"credit": "token"}, "credit"), ({"epochs": 0}, "epochs")],
)
def test_grpo_settings_errors(overrides, rule):
    with pytest.raises(SettingsError, match=rule):
        GRPOConfig(num_envs=4, device="cpu", **overrides)


def test_rloo_returns_to_go_credit_trains(tiny):
    settings = {k: v for k, v in grpo_config(tiny).__dict__.items() if k in RLOOConfig.__dataclass_fields__}
    agent = RLOO(RLOOConfig(**{**settings, "credit": "returns-to-go"}))
    stats = agent.step()
    assert stats["kl/per_episode"] == 0.0 and stats["grad/norm"] > 0
