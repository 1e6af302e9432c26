"""Rows that share a prompt run it once: the sampler's first pass and the group agents' packed passes."""

from __future__ import annotations

import logging

import pytest
import torch

from textgym.agents import shared_prompts
from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_agent import LMAgent
from textgym.agents.rloo import RLOO, RLOOConfig
from textgym.left_padding import shared_rows
from textgym.models import DEFAULT_POLICY_MODEL


def make(tiny, cls=GRPO, config=GRPOConfig, **overrides):
    settings = {
        "env_id": "TextSummarize-sparse-v0", "model": tiny, "num_envs": 6, "iterations": 2, "freeze_layers": 1,
        "samples_per_prompt": 3, "eval_episodes": 0, "device": "cpu", "env_kwargs": {"max_new_tokens": 6},
    }  # fmt: skip
    return cls(config(**{**settings, **overrides}))


def logprobs_and_gradient(agent, batch, forward):
    agent.optimizer.zero_grad()
    logprobs = agent.logprobs(batch, forward(batch)[0]) * batch.valid
    logprobs.sum().backward()
    gradient = torch.cat([p.grad.flatten() for p in agent.policy.lm.parameters() if p.requires_grad])
    return logprobs.detach(), gradient


def test_shared_rows_finds_each_distinct_row_and_where_it_repeats():
    ids = torch.tensor([[0, 5, 6], [1, 2, 3], [0, 5, 6], [1, 2, 3], [1, 2, 4]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    first, inverse = shared_rows(ids, mask)
    assert first.tolist() == [0, 1, 4] and inverse.tolist() == [0, 1, 0, 1, 2]
    assert torch.equal(ids[first][inverse], ids)
    same_ids_other_mask = torch.tensor([[1, 5, 6], [0, 5, 6]]), torch.tensor([[1, 1, 1], [0, 1, 1]])
    assert shared_rows(*same_ids_other_mask) is None
    assert shared_rows(ids[:2], mask[:2]) is None


@pytest.mark.parametrize("freeze_layers", [1, 0])  # with the shared trunk's states, and from the token ids
def test_packed_passes_equal_the_unpacked_ones_logits_gradients_and_reference(tiny, freeze_layers):
    agent = make(tiny, freeze_layers=freeze_layers)
    assert agent.packing.enabled and agent.trunk.enabled == bool(freeze_layers)
    batch = agent.rollout(agent.seeds(0))
    assert batch.context_mask.sum(1).unique().numel() > 1  # the prompts are left-padded to different lengths
    assert agent.packing.applies(batch)
    packed, packed_gradient = logprobs_and_gradient(agent, batch, agent.forward)
    plain, plain_gradient = logprobs_and_gradient(agent, batch, lambda b: LMAgent.forward(agent, b))
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed_gradient, plain_gradient, atol=1e-6, rtol=1e-4)
    assert packed_gradient.abs().sum() > 0
    valid = batch.valid
    torch.testing.assert_close(
        agent.reference_logits(batch)[valid], LMAgent.reference_logits(agent, batch)[valid], atol=1e-5, rtol=1e-4
    )


def test_a_row_that_ended_early_is_packed_right(tiny):
    agent = make(tiny)
    batch = agent.rollout(agent.seeds(0))
    batch.valid[1, 2:] = False  # as if the second completion had ended at its second token
    batch.tokens[1, 2:] = agent.envs.get_attr("pad_token_id")[0]
    packed = agent.logprobs(batch, agent.forward(batch)[0]) * batch.valid
    plain = agent.logprobs(batch, LMAgent.forward(agent, batch)[0]) * batch.valid
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-4)


def test_batches_that_are_not_whole_groups_of_one_prompt_run_unpacked(tiny):
    agent = make(tiny)
    batch = agent.rollout(agent.seeds(0))
    assert agent.packing.applies(batch)
    assert not agent.packing.applies(batch.rows(torch.tensor([0, 3, 1, 4, 2, 5])))  # shuffled minibatch rows
    assert not agent.packing.applies(batch.rows(torch.arange(4)))  # not whole groups
    agent.packing.window = batch.start + batch.length - 1  # a sliding window shorter than the sequences
    assert not agent.packing.applies(batch)


def test_the_sampler_runs_each_distinct_prompt_once_and_samples_the_same_tokens(tiny):
    first_pass_rows = []

    def run(share):
        agent = make(tiny, share_prompts=share, seed=3)
        handle = agent.policy.lm.register_forward_pre_hook(
            lambda module, args, kwargs: first_pass_rows.append(kwargs["input_ids"].shape) or None, with_kwargs=True
        )
        batch = agent.rollout(agent.seeds(0))
        handle.remove()
        return batch

    shared, plain = run(True), run(False)
    prompt_width = shared.start
    first = [shape[0] for shape in first_pass_rows if shape[1] == prompt_width]
    assert first == [2, 6]  # two distinct prompts, then all six rows without sharing
    assert torch.equal(shared.tokens, plain.tokens) and shared.completions == plain.completions
    torch.testing.assert_close(shared.trunk, plain.trunk, atol=1e-5, rtol=1e-4)


def test_rloo_packs_too_and_trains_the_same_as_unpacked(tiny):
    states = []
    for share in (True, False):
        agent = make(tiny, cls=RLOO, config=RLOOConfig, share_prompts=share, seed=5)
        assert (agent.packing is not None) == share
        agent.step()
        states.append(agent.policy.trainable_state())
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], atol=1e-6, rtol=1e-4)


def test_a_decoder_that_does_not_honour_the_packed_mask_is_not_packed(tiny, monkeypatch, caplog):
    real = shared_prompts.packed_logits
    # The fault a decoder without custom 4D masks would cause: the packed logits differ from the unpacked ones.
    monkeypatch.setattr(shared_prompts, "packed_logits", lambda *args: real(*args) + 1.0)
    with caplog.at_level(logging.WARNING, logger="textgym.agents.shared_prompts"):
        agent = make(tiny)
    assert not agent.packing.enabled and "does not reproduce" in caplog.text
    batch = agent.rollout(agent.seeds(0))
    assert not agent.packing.applies(batch)
    agent.update(batch)  # trains on the unpacked passes


def test_packed_passes_of_the_real_default_model_on_real_posts():
    agent = make(
        DEFAULT_POLICY_MODEL, num_envs=4, samples_per_prompt=2, freeze_layers=None, env_kwargs={"max_new_tokens": 3}
    )
    assert agent.packing.enabled and agent.trunk.enabled
    batch = agent.rollout(agent.seeds(0))
    assert batch.start > 50 and agent.packing.applies(batch)  # posts: the prompt is most of every row
    with torch.no_grad():
        packed = agent.logprobs(batch, agent.forward(batch)[0]) * batch.valid
        plain = agent.logprobs(batch, LMAgent.forward(agent, batch)[0]) * batch.valid
    torch.testing.assert_close(packed, plain, atol=1e-4, rtol=1e-4)
    assert agent.ref_logprobs(batch).abs().sum() > 0
