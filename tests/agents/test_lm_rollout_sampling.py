"""Lockstep KV-cached sampling of ``lm_rollout.collect`` on a real vector env with a tiny model."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.tiny_model import save_tiny_causal_lm
from textgym.agents.lm_policy import filter_logits, token_entropy
from textgym.agents.lm_rollout import collect
from textgym.models import load_causal_lm

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def tiny(tiny_path):
    return load_causal_lm(tiny_path)


@pytest.fixture
def envs(tiny_path):
    # Sparse detox: three different prompts of different lengths, so the rows are left-padded differently.
    vector_env = gym.make_vec(
        "TextDetox-sparse-v0", num_envs=len(SEEDS), vectorization_mode="vector_entry_point",
        autoreset_mode="disabled", model=tiny_path, max_new_tokens=6,
    )  # fmt: skip
    yield vector_env
    vector_env.close()


def greedy_without_cache(model, ids, mask, steps):
    """Reference: recompute the whole left-padded sequence at every step, no cache, no env."""
    ids, mask, out = torch.as_tensor(ids), torch.as_tensor(mask), []
    for _ in range(steps):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            token = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1].argmax(-1)
        out.append(token.numpy())
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(token[:, None])], dim=1)
    return np.stack(out, axis=1)


def tokens_of(batch):
    return [row[valid].tolist() for row, valid in zip(batch.tokens, batch.valid, strict=True)]


def test_cached_greedy_equals_full_recomputation(tiny, envs):
    obs, _ = envs.reset(seed=SEEDS)
    assert len({int(m.sum()) for m in obs["attention_mask"]}) > 1  # prompts of different lengths
    expected = greedy_without_cache(tiny, obs["input_ids"], obs["attention_mask"], 6)
    batch = collect(envs, tiny, torch.Generator().manual_seed(0), SEEDS, temperature=0)
    for row, tokens in enumerate(tokens_of(batch)):
        assert tokens == expected[row, : len(tokens)].tolist()
        assert len(tokens) == 6 or tokens[-1] == envs.get_attr("pad_token_id")[0]  # full length or ended at eos


def test_tiny_top_p_and_top_k_one_are_greedy(tiny, envs):
    greedy = tokens_of(collect(envs, tiny, torch.Generator().manual_seed(0), SEEDS, temperature=0))
    assert tokens_of(collect(envs, tiny, torch.Generator().manual_seed(1), SEEDS, top_p=1e-9)) == greedy
    assert tokens_of(collect(envs, tiny, torch.Generator().manual_seed(2), SEEDS, top_k=1)) == greedy


def test_same_generator_seed_same_tokens_other_seed_other_tokens(tiny, envs):
    first = tokens_of(collect(envs, tiny, torch.Generator().manual_seed(3), SEEDS))
    again = tokens_of(collect(envs, tiny, torch.Generator().manual_seed(3), SEEDS))
    other = tokens_of(collect(envs, tiny, torch.Generator().manual_seed(4), SEEDS))
    assert first == again
    assert first != other


def test_greedy_filter_keeps_only_the_top_token():
    logits = torch.tensor([[0.5, 2.0, -1.0], [3.0, 3.0, 0.0]])
    kept = torch.isfinite(filter_logits(logits, temperature=0))
    assert kept.tolist() == [[False, True, False], [True, True, False]]  # an exact tie keeps both


def test_token_entropy_is_the_categorical_entropy_over_the_vocabulary_or_the_support():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn((2, 3, 7), generator=generator) * 3  # 6 ids in the env's vocabulary, 1 the LM's extra
    full = torch.distributions.Categorical(logits=logits[..., :6] / 0.7).entropy()
    torch.testing.assert_close(token_entropy(logits, None, 0.7, 6), full)
    support = filter_logits(logits[..., :6], 1.0, 2, 1.0).isfinite()  # the two most likely ids of each position
    kept = torch.distributions.Categorical(logits=(logits[..., :6]).masked_fill(~support, float("-inf"))).entropy()
    torch.testing.assert_close(token_entropy(logits, support, 1.0, 6), kept)
    assert bool((kept <= np.log(2) + 1e-6).all())  # two ids: at most log 2
