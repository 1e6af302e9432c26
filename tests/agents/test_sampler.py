import numpy as np
import pytest
import torch

from tests.tiny_model import save_tiny_causal_lm
from textgym.agents.sampler import LMSampler
from textgym.models import load_causal_lm, load_tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_causal_lm(str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))))


def left_padded(texts, width=12):
    tokenizer = load_tokenizer()
    ids = np.full((len(texts), width), tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = tokenizer(text).input_ids[-width:]
        ids[row, width - len(tokens) :] = tokens
        mask[row, width - len(tokens) :] = 1
    return ids, mask


def greedy_without_cache(model, ids, mask, steps):
    """Reference: recompute the whole left-padded sequence at every step."""
    ids, mask, out = torch.as_tensor(ids), torch.as_tensor(mask), []
    for _ in range(steps):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            token = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1].argmax(-1)
        out.append(token.numpy())
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(token[:, None])], dim=1)
    return np.stack(out, axis=1)


def run(sampler, ids, mask, steps):
    tokens = [sampler.start(ids, mask)]
    for _ in range(steps - 1):
        tokens.append(sampler.next(tokens[-1]))
    return np.stack(tokens, axis=1)


def test_cached_greedy_equals_full_recomputation(tiny):
    ids, mask = left_padded(["The film was", "A much longer opening line for this review"])
    sampler = LMSampler(tiny, len(load_tokenizer()), temperature=0)
    np.testing.assert_array_equal(run(sampler, ids, mask, 6), greedy_without_cache(tiny, ids, mask, 6))


def test_tiny_top_p_and_top_k_one_are_greedy(tiny):
    ids, mask = left_padded(["The film was", "I hated"])
    greedy = run(LMSampler(tiny, len(load_tokenizer()), temperature=0), ids, mask, 5)
    np.testing.assert_array_equal(run(LMSampler(tiny, len(load_tokenizer()), top_p=1e-9), ids, mask, 5), greedy)
    np.testing.assert_array_equal(run(LMSampler(tiny, len(load_tokenizer()), top_k=1), ids, mask, 5), greedy)


def test_same_seed_same_tokens_other_seed_other_tokens(tiny):
    ids, mask = left_padded(["The film was", "I hated"])
    first = run(LMSampler(tiny, len(load_tokenizer()), seed=3), ids, mask, 8)
    again = run(LMSampler(tiny, len(load_tokenizer()), seed=3), ids, mask, 8)
    other = run(LMSampler(tiny, len(load_tokenizer()), seed=4), ids, mask, 8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_actions_stay_inside_the_action_space(tiny):
    ids, mask = left_padded(["The film was"] * 4)
    tokens = run(LMSampler(tiny, 100, seed=0), ids, mask, 10)
    assert tokens.max() < 100


def test_bad_settings_and_order_raise(tiny):
    with pytest.raises(ValueError, match="top_p"):
        LMSampler(tiny, 10, top_p=0)
    with pytest.raises(RuntimeError, match="start"):
        LMSampler(tiny, 10).next(np.array([1]))
