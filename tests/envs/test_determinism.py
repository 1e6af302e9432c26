"""Seeding and prompt selection of TextGenerationEnv: same seed and actions, same episode; options pick prompts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym
from textgym.error import DataError
from textgym.tasks import PromptItem

IDS = textgym.registered_ids()
MAX_NEW_TOKENS = 4


def _make(env_id: str) -> gym.Env:
    return gym.make(env_id, max_new_tokens=MAX_NEW_TOKENS)


def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list:
    """Runs the actions from reset(seed), resetting (without a seed) whenever an episode ends."""
    obs, info = env.reset(seed=seed)
    record = [("reset", obs, info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(int(action))
        record.append(("step", obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            record.append(("reset", obs, info))
    return record


COUNTERS = ("critic_stats", "reward_stats")
"""Counts of work, not of the episode: critic_stats are the process's shared CachedCritic's; reward_stats are the
member's (per member object today, though rewards.base documents them per process), so neither need agree."""


def _comparable(rest: tuple) -> tuple:
    """Infos with arrays as lists, and without the work counters (see COUNTERS)."""
    return tuple(
        {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in part.items() if k not in COUNTERS}
        if isinstance(part, dict)
        else part
        for part in rest
    )


def _assert_same_record(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a[0] == b[0]
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(a[1][key], b[1][key])
        assert _comparable(a[2:]) == _comparable(b[2:])  # rewards, flags and infos, exactly


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_and_actions_give_identical_episodes(env_id):
    env_a, env_b = _make(env_id), _make(env_id)
    vocab_size = env_a.unwrapped.vocab_size
    actions = np.random.default_rng(2024).integers(vocab_size, size=8)
    actions[actions == env_a.unwrapped.eos_token_id] = 5
    actions[5] = env_a.unwrapped.eos_token_id  # second episode ends at EOS after 2 tokens, the first by length

    record_a = _rollout(env_a, seed=7, actions=actions)
    record_b = _rollout(env_b, seed=7, actions=actions)

    _assert_same_record(record_a, record_b)
    ends = [entry for entry in record_a if entry[0] == "step" and entry[3]]
    assert [entry[5]["length_limit"] for entry in ends] == [True, False]
    for entry in ends:
        if "token_rewards" in entry[5]:  # critic ids: the last reward is the episode's total of token rewards
            assert entry[2] == pytest.approx(sum(entry[5]["token_rewards"]), abs=1e-9)
        else:
            assert 0.0 <= entry[2] <= 1.0 and entry[2] == entry[5]["extrinsic_score"]
    # Sanity: the record is not trivially equal, the episodes did draw prompts and write the actions.
    assert env_a.unwrapped.generated_ids == [int(a) for a in actions[6:]]


@pytest.mark.parametrize("env_id", IDS)
def test_reset_with_the_same_seed_repeats_the_prompt_sequence(env_id):
    env = _make(env_id)

    def prompt_indices(seed: int) -> list[int]:
        indices = [env.reset(seed=seed)[1]["prompt_index"]]
        indices += [env.reset()[1]["prompt_index"] for _ in range(5)]
        return indices

    first = prompt_indices(11)
    assert prompt_indices(11) == first
    assert all(0 <= index < len(env.unwrapped.items) for index in first)
    assert len(set(first)) > 1  # unseeded resets continue the generator, they do not repeat the seeded prompt


@pytest.mark.parametrize("env_id", IDS)
def test_different_seeds_draw_different_prompts(env_id):
    env_a, env_b = _make(env_id), _make(env_id)
    draws_a = [env_a.reset(seed=0)[1]["prompt_index"]] + [env_a.reset()[1]["prompt_index"] for _ in range(5)]
    draws_b = [env_b.reset(seed=1)[1]["prompt_index"]] + [env_b.reset()[1]["prompt_index"] for _ in range(5)]
    assert draws_a != draws_b
    # Over several seeds the first prompt is not always the same one.
    firsts = {env_a.reset(seed=seed)[1]["prompt_index"] for seed in range(6)}
    assert len(firsts) > 1


@pytest.mark.parametrize("env_id", IDS)
def test_prompt_option_is_used(env_id):
    env = _make(env_id)
    unwrapped = env.unwrapped
    source = "My neighbour keeps parking in front of my garage"
    expected_prompt = unwrapped.task.format_prompt(PromptItem(source))

    obs, info = env.reset(seed=3, options={"prompt": source})

    assert info == {"prompt": expected_prompt, "prompt_index": -1, "prompt_truncated": False}
    assert unwrapped.item.source == source and unwrapped.item.reference is None
    n = int(obs["attention_mask"].sum())
    assert unwrapped.tokenizer.decode(obs["input_ids"][-n:]) == expected_prompt
    assert env.render() == expected_prompt

    # The dict form carries a reference, and the seed does not override the given prompt.
    obs2, info2 = env.reset(seed=4, options={"prompt": {"source": source, "reference": "Parking dispute."}})
    assert info2["prompt"] == expected_prompt and info2["prompt_index"] == -1
    assert unwrapped.item.reference == "Parking dispute."
    np.testing.assert_array_equal(obs2["input_ids"], obs["input_ids"])


@pytest.mark.parametrize("env_id", IDS)
def test_prompt_index_option(env_id):
    env = _make(env_id)
    unwrapped = env.unwrapped
    last = len(unwrapped.items) - 1
    for seed, index in ((0, 0), (1, 0), (0, last), (5, np.int64(3))):
        _, info = env.reset(seed=seed, options={"prompt_index": index})
        assert info["prompt_index"] == int(index)
        assert type(info["prompt_index"]) is int
        assert unwrapped.item is unwrapped.items[int(index)]
        assert info["prompt"] == unwrapped.task.format_prompt(unwrapped.items[int(index)])
    with pytest.raises(DataError, match=r"prompt_index must be an integer in \[0, \d+\)"):
        env.reset(options={"prompt_index": last + 1})
