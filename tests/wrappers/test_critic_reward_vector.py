"""The vector critic wrapper against SyncVectorEnv of single critic wrappers, with separate critics and caches."""

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from tests.wrappers.helpers import critic_wrapper
from textgym.critics.attribution import AttributionCritic
from textgym.models import load_tokenizer
from textgym.wrappers import CriticRewardVectorWrapper

TEXT = " you stupid idiot, I hate you. Great film, lovely day. Thanks"


def _actions(step: int, num_envs: int, words: list[int], eos: int) -> np.ndarray:
    actions = np.array([words[(step + 2 * i) % len(words)] for i in range(num_envs)])
    if step in (3, 9):
        actions[1] = eos  # one sub-env ends early, twice
    return actions


@pytest.mark.parametrize("mode", ["episode", "prefix"])
def test_vector_wrapper_equals_sync_of_single_wrappers(mode):
    tokenizer = load_tokenizer()
    words = tokenizer(TEXT, add_special_tokens=False).input_ids
    kwargs = {"mode": mode, "max_new_tokens": 7}
    vec = gym.make_vec("TextDetox-critic-v0", num_envs=3, critic=AttributionCritic("detox"), **kwargs)
    sync = gym.make_vec(
        "TextDetox-critic-v0", num_envs=3, vectorization_mode="sync", critic=AttributionCritic("detox"), **kwargs
    )
    assert isinstance(vec, CriticRewardVectorWrapper)
    sync_critics = {id(critic_wrapper(env).critic) for env in sync.envs}
    assert id(vec.critic) not in sync_critics  # separate cached critics: nothing is shared through a cache
    vec.reset(seed=5)
    sync.reset(seed=5)
    returns_v, returns_s, ended, flagged = np.zeros(3), np.zeros(3), 0, 0
    episode_v = np.zeros(3)  # the running return of each sub-env's current episode
    online = 0  # episodes that were paid before their last step
    for step in range(16):
        actions = _actions(step, 3, words, tokenizer.eos_token_id)
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(actions)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(actions)
        np.testing.assert_array_equal(obs_v["input_ids"], obs_s["input_ids"])
        np.testing.assert_array_equal(term_v, term_s)
        np.testing.assert_allclose(rew_v, rew_s, atol=1e-6)
        returns_v += rew_v
        returns_s += rew_s
        episode_v += rew_v
        for i in np.flatnonzero(term_v):
            ended += 1
            np.testing.assert_allclose(info_v["token_rewards"][i], info_s["token_rewards"][i], atol=1e-6)
            assert info_v["critic_spans"][i] == info_s["critic_spans"][i]
            flagged += bool(info_v["critic_spans"][i])
            # In both modes the shares sum to the episode's return; in episode mode it is all paid on the last step.
            assert episode_v[i] == pytest.approx(sum(info_v["token_rewards"][i]), abs=1e-9)
            paid_early = episode_v[i] - rew_v[i]
            if mode == "episode":
                assert paid_early == pytest.approx(0.0, abs=1e-12)
            online += abs(paid_early) > 1e-9
            episode_v[i] = 0.0
    assert ended >= 5
    assert flagged >= 1 and returns_v.min() < 0  # the toxic words were penalised
    assert online >= 1 if mode == "prefix" else online == 0
    np.testing.assert_allclose(returns_v, returns_s, atol=1e-6)


def test_one_batched_critic_call_per_step():
    tokenizer = load_tokenizer()
    words = tokenizer(TEXT, add_special_tokens=False).input_ids
    critic = AttributionCritic("detox")
    calls = []
    real = critic.critique

    def spy(prompts, completions, extrinsic=None):
        calls.append(len(completions))
        return real(prompts, completions, extrinsic)

    critic.critique = spy
    vec = gym.make_vec("TextDetox-critic-v0", num_envs=4, critic=critic, max_new_tokens=5)
    vec.reset(seed=0)
    for step in range(5):
        vec.step(np.array([words[(step + i) % len(words)] for i in range(4)]))
    # All four end together on step 5: their four distinct texts go to the critic in one call.
    assert calls == [4]


def test_episode_and_prefix_returns_match_in_the_vector_form():
    tokenizer = load_tokenizer()
    words = tokenizer(TEXT, add_special_tokens=False).input_ids
    totals = {}
    for mode in ("episode", "prefix"):
        vec = gym.make_vec("TextDetox-critic-v0", num_envs=2, mode=mode, max_new_tokens=len(words))
        vec.reset(seed=1)
        total = np.zeros(2)
        for step in range(len(words)):
            _, rewards, _, _, _ = vec.step(np.array([words[step]] * 2))
            total += rewards
            if mode == "prefix" and step < len(words) - 1:
                totals.setdefault("prefix_paid_early", 0.0)
                totals["prefix_paid_early"] += abs(rewards).sum()
        totals[mode] = total
    np.testing.assert_allclose(totals["episode"], totals["prefix"], atol=1e-9)
    assert totals["prefix_paid_early"] > 0


def test_rejects_a_vector_env_without_next_step_autoreset():
    base = gym.make_vec(
        "TextDetox-sparse-v0", num_envs=2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": "SameStep"}
    )
    with pytest.raises(ValueError, match="next-step or disabled autoreset"):
        CriticRewardVectorWrapper(base)


@pytest.mark.parametrize("mode", ["episode", "prefix"])
def test_disabled_autoreset_rows_idle_and_match_a_single_wrapper(mode):
    """With autoreset disabled an ended row idles (no reward, no critique) and a reset restarts it cleanly."""
    tokenizer = load_tokenizer()
    words = tokenizer(TEXT, add_special_tokens=False).input_ids
    kwargs = {"mode": mode, "max_new_tokens": 6}
    vec = gym.make_vec(
        "TextDetox-critic-v0", num_envs=2, critic=AttributionCritic("detox"), autoreset_mode="disabled", **kwargs
    )
    single = gym.make("TextDetox-critic-v0", critic=AttributionCritic("detox"), **kwargs)
    for round_ in range(2):  # the second round checks that reset() after idling starts a clean episode
        vec.reset(seed=3)
        single.reset(seed=3)
        plan = [words[k] for k in range(6)]
        plan_row1 = [words[0], tokenizer.eos_token_id]  # row 1 ends at its second token, then idles
        total_vec, total_single, idle_rewards = 0.0, 0.0, []
        for step in range(6):
            row1 = plan_row1[step] if step < 2 else words[1]  # actions of an idle row are ignored
            _, rewards, terms, _, infos = vec.step(np.array([plan[step], row1]))
            _, reward, term, _, info = single.step(plan[step])
            total_vec += rewards[0]
            total_single += reward
            if step >= 2:
                idle_rewards.append(rewards[1])
                assert not terms[1]
            if step == 1:
                assert terms[1]
        assert term and terms[0]
        assert total_vec == pytest.approx(total_single, abs=1e-9), round_
        assert infos["token_rewards"][0] == pytest.approx(info["token_rewards"], abs=1e-9)
        assert idle_rewards == [0.0] * 4
