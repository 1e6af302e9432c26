"""Soundness of the LM agents' loop (issue 10): each test here failed on the loop before the fix it checks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from textgym.agents.lm_eval import evaluate_lm, make_eval_envs
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.agents.lm_rollout import collect
from textgym.models import load_causal_lm

DETOX = "TextDetox-critic-v0"


def config(tiny: str, **overrides) -> LMPPOConfig:
    settings = {
        "env_id": DETOX,
        "model": tiny,
        "num_envs": 4,
        "iterations": 2,
        "freeze_layers": 1,
        "eval_episodes": 2,
        "device": "cpu",
        "env_kwargs": {"max_new_tokens": 5},
    }
    return LMPPOConfig(**{**settings, **overrides})


def test_reference_is_scored_over_the_full_vocabulary_so_greedy_top_k_still_pays_kl(tiny):
    # With top_k=1 the policy's processed distribution puts probability 1 on its token. Renormalising the
    # reference over that same support (the old code) made the KL exactly 0; over the full vocabulary it is
    # -log ref(token) > 0 per token.
    agent = LMPPO(config(tiny, top_k=1))
    batch = agent.rollout(agent.seeds(0))
    scores = agent.score_batch(batch)
    valid = batch.valid
    assert torch.all(scores["logprobs"][valid] == 0)  # log 1
    assert torch.all(scores["kl"][valid] > 0)
    ids, mask = (tensor[:, :-1] for tensor in batch.sequences)
    logits = agent.reference(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
    full = torch.log_softmax(logits.logits[:, -batch.tokens.shape[1] :].float(), -1)
    expected = full.gather(-1, batch.tokens.unsqueeze(-1)).squeeze(-1) * valid
    torch.testing.assert_close(scores["ref_logprobs"], expected, atol=1e-4, rtol=1e-4)


def test_reference_uses_the_sampling_temperature(tiny):
    agent = LMPPO(config(tiny, temperature=0.5))
    batch = agent.rollout(agent.seeds(0))
    ids, mask = (tensor[:, :-1] for tensor in batch.sequences)
    out = agent.reference(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
    expected = torch.log_softmax(out.logits[:, -batch.tokens.shape[1] :].float() / 0.5, -1)
    expected = expected.gather(-1, batch.tokens.unsqueeze(-1)).squeeze(-1) * batch.valid
    torch.testing.assert_close(agent.score_batch(batch)["ref_logprobs"], expected, atol=1e-4, rtol=1e-4)


def test_the_adaptive_kl_controller_reaches_its_target_within_a_run(tiny):
    # A plant where the KL per episode falls as the coefficient grows (KL = 0.3 / coef): from coef 0.05 (KL 6)
    # towards a target of 1.5, i.e. coef 0.2. Over a 20-iteration run of 8 episodes the default horizon lets it
    # get there; the old fixed horizon of 1000 episodes moved the coefficient by at most 0.16 % an iteration.
    def run(**horizon):
        agent = LMPPO(config(tiny, num_envs=8, iterations=20, kl_coef=0.05, target_kl=1.5, **horizon))
        for _ in range(20):
            agent.update_kl_coef(0.3 / agent.kl_coef)
        return agent.kl_coef

    assert 0.3 / run() == pytest.approx(1.5, rel=0.1)
    assert 0.3 / run(kl_horizon=1000) > 5  # the old default: nowhere near


def test_evaluation_enumerates_the_eval_prompts_without_replacement(tiny, tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"text": f"Train prompt {i}", "split": "train"} for i in range(2)]
    rows += [{"text": f"Held-out prompt {i}", "split": "eval"} for i in range(5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    envs = make_eval_envs("TextDetox-sparse-v0", tiny, 3, {"max_new_tokens": 2, "prompts_path": str(path)})
    lm = load_causal_lm(tiny)
    result = evaluate_lm(envs, lm, lm, episodes=7)
    assert result["prompt_indices"] == [0, 1, 2, 3, 4, 0, 1]  # every prompt once, then again
    envs.close()


class PastKeyValuesModel(torch.nn.Module):
    """A causal LM with the older transformers call convention (``past_key_values`` in and out).

    transformers 4.x and 5.0-5.18 cannot be installed beside 5.24 in one environment; this adapter presents the
    real tiny model through that convention to check that the sampler reads and passes both names.
    """

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, **kwargs):
        assert "cache" not in kwargs, "the older API has no 'cache' argument"
        out = self.inner(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=past_key_values,
            **kwargs,
        )  # fmt: skip
        return SimpleNamespace(logits=out.logits, past_key_values=out.cache)


def test_sampling_works_with_the_older_past_key_values_api(tiny):
    envs = gym.make_vec(
        "TextDetox-sparse-v0", num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode="disabled",
        model=tiny, max_new_tokens=4,
    )  # fmt: skip
    model = load_causal_lm(tiny)
    new = collect(envs, model, torch.Generator().manual_seed(0), [1, 2])
    old = collect(envs, PastKeyValuesModel(model), torch.Generator().manual_seed(0), [1, 2])
    assert torch.equal(new.tokens, old.tokens)
    envs.close()


def test_prefix_mode_rewards_are_credited_to_the_clause_tokens_like_episode_mode(tiny):
    # Prefix mode pays each clause on its boundary token; the final info's token_rewards say which tokens earned
    # it. LM agents credit those, so prefix vs episode differ only in when the critic is called.
    flagged = {"default_reward": 0.1, "label_rewards": {"toxic": -0.4}, "critic": "attribution"}
    runs = {}
    for mode in ("episode", "prefix"):
        agent = LMPPO(config(tiny, env_kwargs={"max_new_tokens": 8, "mode": mode, **flagged}))
        runs[mode] = agent.rollout(agent.seeds(0))
    for i, info in enumerate(runs["prefix"].infos):
        n = len(info["token_rewards"])
        torch.testing.assert_close(runs["prefix"].rewards[i, :n], torch.tensor(info["token_rewards"]))
    torch.testing.assert_close(runs["prefix"].rewards, runs["episode"].rewards)


def test_episodes_ending_at_eos_are_counted(tiny):
    agent = LMPPO(config(tiny))
    batch = agent.rollout(agent.seeds(0))
    eos_id = agent.envs.get_attr("eos_token_id")[0]
    lengths = batch.valid.sum(1)
    eos = [bool(batch.tokens[i, lengths[i] - 1] == eos_id) for i in range(len(lengths))]
    assert batch.terminated.tolist() == eos
    assert np.mean(batch.terminated) == pytest.approx(float(np.mean(eos)))


def test_inverse_cdf_sampling_draws_from_the_distribution_and_never_a_zero_probability_token():
    from textgym.agents.lm_rollout import sample

    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20_000, 1)
    draws = sample(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=6).double() / len(draws)
    assert counts[[0, 2, 5]].sum() == 0
    torch.testing.assert_close(counts, probs[0].double(), atol=0.015, rtol=0)


def test_the_logged_counts_are_the_batchs_latest_not_its_last_rows():
    # Row 1 ended first (2 episodes settled by then), row 0 last (all 3): the batch's count is 3.
    infos = [
        {"reward_stats": {"requests": 3, "evaluated": 3, "hit_rate": 0.0}, "reward_fallback": False},
        {"reward_stats": {"requests": 1, "evaluated": 1, "hit_rate": 0.0}, "reward_fallback": False},
        {"reward_stats": {"requests": 2, "evaluated": 2, "hit_rate": 0.0}, "reward_fallback": True},
    ]
    counts = LMPPO.critic_counts(SimpleNamespace(infos=infos))
    latest = {"dense/requests": 3.0, "dense/evaluated": 3.0, "dense/hit_rate": 0.0}
    assert counts == {**latest, "dense/fallback_episodes": 1.0}
