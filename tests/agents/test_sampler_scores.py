"""Old log-probs and values from the sampler's own passes: what a scoring pass computes, and the same training."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.tiny_model import tiny_agent
from textgym.agents.grpo import GRPO, GRPOConfig
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig


def agent(tiny, cls=LMPPO, config=LMPPOConfig, **overrides):
    return tiny_agent(tiny, cls, config, **overrides)


def without_sampler_scores(batch):
    return dataclasses.replace(batch, behaviour_logprobs=None, last_hidden=None)


@pytest.mark.parametrize("sampling", [{}, {"top_k": 5, "temperature": 0.8}, {"top_p": 0.7}])
def test_the_sampler_keeps_the_old_logprobs_and_values_a_scoring_pass_computes(tiny, sampling):
    lmppo = agent(tiny, **sampling)
    torch.nn.init.normal_(lmppo.policy.value_head.weight)  # the head starts at zero: make its values tell
    batch = lmppo.rollout(lmppo.seeds(0))
    assert batch.behaviour_logprobs is not None and batch.last_hidden is not None
    assert batch.last_hidden.shape == (*batch.tokens.shape, lmppo.policy.lm.config.hidden_size)
    kept, passed = lmppo.score_batch(batch), lmppo.score_batch(without_sampler_scores(batch))
    assert bool((passed["logprobs"] < -1e-3).any())  # real log-probabilities, not zeros
    for key in ("logprobs", "values", "kl"):
        torch.testing.assert_close(kept[key], passed[key], atol=1e-5, rtol=1e-4)
    rows = torch.tensor([2, 0])
    torch.testing.assert_close(batch.rows(rows).behaviour_logprobs, batch.behaviour_logprobs[rows])


def test_lmppo_trains_to_the_same_weights_with_the_sampler_scores_or_a_scoring_pass(tiny):
    kept, passed = agent(tiny, seed=3), agent(tiny, seed=3, sampler_scores=False)
    for iteration in range(2):
        a, b = kept.rollout(kept.seeds(iteration)), passed.rollout(passed.seeds(iteration))
        assert a.behaviour_logprobs is not None and b.behaviour_logprobs is None
        assert torch.equal(a.tokens, b.tokens)
        stats_a, stats_b = kept.update(a), passed.update(b)
        assert stats_a["ppo/steps"] == stats_b["ppo/steps"] > 0
    for (name, p), q in zip(kept.policy.named_parameters(), passed.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)


def test_grpo_keeps_the_sampler_scores_only_when_it_takes_several_steps_per_batch(tiny):
    one_step = agent(tiny, cls=GRPO, config=GRPOConfig, samples_per_prompt=2)
    assert one_step.rollout(one_step.seeds(0)).behaviour_logprobs is None  # its step's own pass gives them
    epochs = agent(tiny, cls=GRPO, config=GRPOConfig, samples_per_prompt=2, epochs=2)
    batch = epochs.rollout(epochs.seeds(0))
    kept, passed = epochs.score_batch(batch), epochs.score_batch(without_sampler_scores(batch))
    assert kept["values"] is None and passed["values"] is None
    torch.testing.assert_close(kept["logprobs"], passed["logprobs"], atol=1e-5, rtol=1e-4)


def test_a_batch_scored_again_after_an_update_gets_a_scoring_pass_not_the_stale_sampler_scores(tiny):
    lmppo = agent(tiny, max_update_kl=None)
    torch.nn.init.normal_(lmppo.policy.value_head.weight)
    batch = lmppo.rollout(lmppo.seeds(0))
    before = lmppo.score_batch(batch)
    lmppo.update(batch)
    assert batch.policy_version != lmppo.policy_version
    again, passed = lmppo.score_batch(batch), lmppo.score_batch(without_sampler_scores(batch))
    torch.testing.assert_close(again["values"], passed["values"])
    assert not torch.allclose(again["values"], before["values"])  # the weights did move
