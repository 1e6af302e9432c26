"""Sampling with transposed weight copies: the same products, restored layers, never a stale copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textgym.agents import decode_weights
from textgym.agents.decode_weights import SMALL_ROWS, DecodeWeights, packed_products
from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.lm_compat import output_cache, with_cache
from textgym.models import load_causal_lm


def patched(model: nn.Module) -> list[nn.Module]:
    return [module for module in model.modules() if "forward" in vars(module)]


@torch.no_grad()
def test_a_cached_decode_step_inside_active_gives_the_plain_logits_and_the_layers_are_restored(tiny):
    model = load_causal_lm(tiny)
    ids = torch.tensor([[5, 9, 12, 7], [3, 3, 8, 11]])
    first = model(input_ids=ids, use_cache=True)
    step = {"input_ids": torch.tensor([[4], [6]]), "use_cache": True}
    plain = model(**step, **with_cache(model, output_cache(model(input_ids=ids, use_cache=True)))).logits
    weights = DecodeWeights()
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    with weights.active(model):
        assert set(map(id, patched(model))) == set(map(id, linears))
        fast = model(**step, **with_cache(model, output_cache(first))).logits
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    assert weights.builds == len({id(module.weight) for module in linears})  # a tied weight is copied once
    assert patched(model) == []


def test_a_trained_weight_is_copied_again_after_forget_trainable_and_a_frozen_one_when_written_in_place():
    layer, frozen = nn.Linear(4, 3), nn.Linear(4, 3).requires_grad_(False)
    weights = DecodeWeights(rows=1)  # the transposed layout, whose copies compare with the weights directly
    assert not weights.packed
    first = weights.copy(layer.weight)
    assert first.is_contiguous() and torch.equal(first, layer.weight.T)
    assert weights.copy(layer.weight) is first and weights.builds == 1  # unchanged: the same copy
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)  # writes without moving the version
    layer(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    kept = weights.copy(frozen.weight)
    weights.forget_trainable()
    second = weights.copy(layer.weight)
    assert torch.equal(second, layer.weight.T) and not torch.equal(second, first)
    assert weights.copy(frozen.weight) is kept and weights.builds == 3
    with torch.no_grad():
        frozen.weight.add_(1.0)
    assert torch.equal(weights.copy(frozen.weight), frozen.weight.T) and weights.builds == 4


@pytest.mark.skipif(not packed_products(), reason="this torch has no oneDNN packed products")
@torch.no_grad()
def test_packed_copies_give_the_layers_products_and_follow_a_trained_weight():
    layer = nn.Linear(16, 24)
    weights = DecodeWeights(rows=8)
    assert weights.packed
    x = torch.randn(8, 1, 16)
    torch.testing.assert_close(weights.product(x, layer), layer(x), atol=1e-5, rtol=1e-5)
    assert weights.copy(layer.weight).is_mkldnn  # oneDNN's layout
    layer.weight.add_(1.0)  # a step written in place: the copy is made again
    torch.testing.assert_close(weights.product(x, layer), layer(x), atol=1e-5, rtol=1e-5)
    assert weights.builds == 2


def test_without_working_packed_products_a_store_keeps_the_transposed_layout(monkeypatch):
    def wrong(x, packed, bias):
        return torch.zeros(*x.shape[:-1], 24)

    monkeypatch.setattr(decode_weights, "_packed_product", wrong)  # a kernel that gives another product
    assert not decode_weights.packed_products.__wrapped__()

    def missing(weight):
        raise RuntimeError("no mkldnn")

    monkeypatch.setattr(decode_weights, "_pack", missing)
    assert not decode_weights.packed_products.__wrapped__()
    monkeypatch.setattr(decode_weights, "packed_products", lambda: False)
    assert not DecodeWeights(rows=8).packed


@torch.no_grad()
def test_long_inputs_run_as_they_are():
    layer = nn.Linear(4, 3)
    weights = DecodeWeights()
    with weights.active(layer):
        few = layer(torch.ones(SMALL_ROWS, 4))
        assert weights.builds == 1
        many = layer(torch.ones(2, SMALL_ROWS, 4))  # a prompt's first pass
        assert weights.builds == 1
    torch.testing.assert_close(many[0, 0], few[0], atol=1e-5, rtol=1e-5)


def test_with_gradients_on_the_layers_run_as_they_are():
    layer = nn.Linear(4, 3)
    weights = DecodeWeights()
    with weights.active(layer):
        out = layer(torch.ones(2, 4))
    out.sum().backward()
    assert layer.weight.grad is not None and weights.builds == 0


def test_the_agent_samples_the_same_tokens_with_and_without_and_refreshes_only_what_trained(tiny):
    settings = {
        "env_id": "TextDetox-sparse-v0", "model": tiny, "num_envs": 4, "samples_per_prompt": 2, "iterations": 2,
        "freeze_layers": 1, "eval_episodes": 0, "device": "cpu", "env_kwargs": {"max_new_tokens": 6},
    }  # fmt: skip
    fast, plain = GRPO(GRPOConfig(**settings)), GRPO(GRPOConfig(**settings, transposed_decode=False))
    assert plain.decode is None
    for iteration in range(2):
        a, b = fast.rollout(fast.seeds(iteration)), plain.rollout(plain.seeds(iteration))
        assert torch.equal(a.tokens, b.tokens)
        torch.testing.assert_close(a.trunk, b.trunk, atol=1e-5, rtol=1e-5)
        built = fast.decode.builds
        fast.update(a)
        plain.update(b)
    # the second rollout copied again exactly the linear weights that the first update changed
    trainable = {id(m.weight) for m in fast.policy.lm.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad}
    assert built - len({id(m.weight) for m in fast.policy.lm.modules() if isinstance(m, nn.Linear)}) == len(trainable)


def test_installed_layers_run_as_they_are_until_switched_on():
    layer, x = nn.Linear(4, 3), torch.ones(2, 4)
    weights = DecodeWeights()
    with torch.no_grad(), weights.installed(layer):
        assert "forward" in vars(layer)
        plain = layer(x)
        assert weights.builds == 0
        with weights.switched_on():
            fast = layer(x)
        assert weights.builds == 1 and not weights.on
    torch.testing.assert_close(fast, plain)
    assert "forward" not in vars(layer)


def test_a_batch_installs_the_copies_once_and_the_env_steps_with_them_switched_off(tiny):
    settings = {
        "env_id": "TextDetox-sparse-v0", "model": tiny, "num_envs": 4, "samples_per_prompt": 2,
        "freeze_layers": 1, "eval_episodes": 0, "device": "cpu", "env_kwargs": {"max_new_tokens": 6},
    }  # fmt: skip
    agent = GRPO(GRPOConfig(**settings))
    installs, during_steps = [], []
    install, step = agent.decode.installed, agent.envs.step

    def counted_install(model):
        installs.append(model)
        return install(model)

    def watched_step(actions):  # a critic or scorer that is the policy itself would run here
        during_steps.append(agent.decode.on)
        return step(actions)

    agent.decode.installed, agent.envs.step = counted_install, watched_step
    batch = agent.rollout(agent.seeds(0))
    assert installs == [agent.policy.lm] and len(during_steps) == batch.tokens.shape[1] and not any(during_steps)
    assert agent.decode.builds > 0 and patched(agent.policy.lm) == []
