"""TextGenerationVectorEnv: the default of gym.make_vec, equal to SyncVectorEnv on the same seeds and actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import textgym
from textgym.envs.vector_env import TextGenerationVectorEnv
from textgym.error import EpisodeFinishedError, InvalidActionError

IDS = [env_id for env_id in textgym.registered_ids() if env_id.endswith("-sparse-v0")]  # the base env
DETOX = "TextDetox-sparse-v0"
NUM_ENVS = 3
MAX_NEW_TOKENS = 5
NUM_STEPS = 15
# Word tokens of the default tokenizer, never EOS: actions are drawn among them so every step writes a real token.
WORDS = " the cat sat on a warm mat and then the dog came over to say hello"


def _make_pair(env_id: str, **kwargs):
    vec = gym.make_vec(env_id, num_envs=NUM_ENVS, max_new_tokens=MAX_NEW_TOKENS, **kwargs)
    sync = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="sync", max_new_tokens=MAX_NEW_TOKENS, **kwargs)
    return vec, sync


def _actions(vec) -> np.ndarray:
    """A (NUM_STEPS, NUM_ENVS) plan with EOS at chosen places, so episodes end at different steps."""
    sub = vec.envs[0]
    words = np.array(sub.tokenizer(WORDS, add_special_tokens=False).input_ids)
    actions = np.random.default_rng(0).choice(words, size=(NUM_STEPS, NUM_ENVS))
    eos = sub.eos_token_id
    actions[1, 0] = eos  # env 0 ends at step 1 (2 tokens), autoresets at step 2
    actions[4, 0] = eos  # env 0 ends again at step 4 (2 tokens), autoresets at step 5
    actions[3, 1] = eos  # env 1 ends at step 3, autoresets at 4, ends by length at step 9 with env 2
    actions[9, 2] = eos  # env 2 ends by length at step 4, autoresets at 5, ends at EOS at step 9
    return actions


def _assert_obs_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b) == {"input_ids", "attention_mask"}
    for key in a:
        assert a[key].dtype == b[key].dtype
        np.testing.assert_array_equal(a[key], b[key])


def _assert_infos_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], dict):
            _assert_infos_equal(a[key], b[key])
            continue
        x, y = np.asarray(a[key]), np.asarray(b[key])
        assert x.shape == y.shape and x.dtype == y.dtype, key
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6, err_msg=key)
        else:
            assert x.tolist() == y.tolist(), key


def test_make_vec_uses_the_vector_entry_point():
    vec, sync = _make_pair(DETOX)
    assert isinstance(vec, TextGenerationVectorEnv)
    assert isinstance(sync, SyncVectorEnv)
    assert vec.num_envs == NUM_ENVS and len(vec.envs) == NUM_ENVS
    assert all(env.max_new_tokens == MAX_NEW_TOKENS and env.task.name == "detox" for env in vec.envs)
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.observation_space == sync.observation_space
    assert vec.action_space == sync.action_space
    assert vec.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


@pytest.mark.parametrize("env_id", IDS)
def test_vector_env_equals_sync_vector_env(env_id):
    vec, sync = _make_pair(env_id)
    actions = _actions(vec)

    obs_v, info_v = vec.reset(seed=42)
    obs_s, info_s = sync.reset(seed=42)
    _assert_obs_equal(obs_v, obs_s)
    _assert_infos_equal(info_v, info_s)

    ends = 0
    for step, action in enumerate(actions):
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(action)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(action)
        _assert_obs_equal(obs_v, obs_s)
        assert rew_v.dtype == rew_s.dtype == np.float64
        np.testing.assert_allclose(rew_v, rew_s, rtol=0, atol=1e-6, err_msg=f"step {step}")
        np.testing.assert_array_equal(term_v, term_s)
        np.testing.assert_array_equal(trunc_v, trunc_s)
        assert term_v.dtype == trunc_v.dtype == np.bool_ and not trunc_v.any()
        _assert_infos_equal(info_v, info_s)
        assert not rew_v[~term_v].any() and ((0 <= rew_v) & (rew_v <= 1)).all()
        if term_v.any():
            np.testing.assert_array_equal(info_v["_completion"], term_v)
        ends += int(term_v.sum())
    # The plan exercised endings at EOS and at the length limit, and autoresets.
    assert ends >= 6
    vec.close()
    sync.close()


def test_wrong_actions_shape_raises_and_steps_nothing():
    vec = gym.make_vec(DETOX, num_envs=NUM_ENVS, max_new_tokens=MAX_NEW_TOKENS)
    obs, _ = vec.reset(seed=0)
    token = vec.envs[0].tokenizer(" the", add_special_tokens=False).input_ids[0]
    for bad in ([token] * 2, [[token]] * 3, token, np.full((3, 2), token)):
        with pytest.raises(InvalidActionError, match=r"an array of shape \(3,\); got shape"):
            vec.step(bad)
    # A bad id in the last sub-environment is found before the first is stepped.
    for bad in ([token, token, vec.envs[0].vocab_size], [token, -1, token], [1.0, 2.0, 3.0]):
        with pytest.raises(InvalidActionError):
            vec.step(bad)
    assert [env.generated_ids for env in vec.envs] == [[], [], []]
    # The env still works afterwards, from where it was.
    obs2, *_ = vec.step([token] * 3)
    assert [env.generated_ids for env in vec.envs] == [[token]] * 3
    np.testing.assert_array_equal(obs2["input_ids"][:, :-1], obs["input_ids"][:, 1:])


def test_step_before_reset_raises():
    vec = gym.make_vec(DETOX, num_envs=2, max_new_tokens=MAX_NEW_TOKENS)
    with pytest.raises(EpisodeFinishedError, match="before reset"):
        vec.step([5, 5])


def test_reset_mask_resets_only_the_selected_envs():
    vec, sync = _make_pair(DETOX)
    token = vec.envs[0].tokenizer(" the", add_special_tokens=False).input_ids[0]
    eos = vec.envs[0].eos_token_id
    for env in (vec, sync):
        env.reset(seed=5)
        env.step([token] * 3)
        _, _, terminations, _, _ = env.step([eos, token, token])  # env 0 ends: it would autoreset next step
        assert terminations.tolist() == [True, False, False]
    mask = np.array([True, False, True])
    obs_v, info_v = vec.reset(seed=9, options={"reset_mask": mask.copy()})
    obs_s, info_s = sync.reset(seed=9, options={"reset_mask": mask.copy()})
    _assert_obs_equal(obs_v, obs_s)
    _assert_infos_equal(info_v, info_s)
    np.testing.assert_array_equal(info_v["_prompt"], mask)
    assert [env.generated_ids for env in vec.envs] == [[], [token, token], []]
    assert obs_v["input_ids"][1, -1] == token and obs_v["attention_mask"][1, -1] == 1
    # The kept env goes on with its episode; the reset ones start anew and step (no pending autoreset of env 0),
    # as in SyncVectorEnv.
    obs_v, rew_v, term_v, _, info_v = vec.step([token] * 3)
    obs_s, rew_s, term_s, _, info_s = sync.step([token] * 3)
    _assert_obs_equal(obs_v, obs_s)
    _assert_infos_equal(info_v, info_s)
    np.testing.assert_array_equal(term_v, term_s)
    assert [env.generated_ids for env in vec.envs] == [[token], [token] * 3, [token]]

    with pytest.raises(TypeError, match=r"options\['reset_mask'\] must be a numpy bool array"):  # as Sync does
        vec.reset(options={"reset_mask": np.array([1, 0, 1])})
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([True, False])})


def test_reset_with_a_list_of_seeds():
    vec, sync = _make_pair(DETOX)
    seeds = [5, 17, 5]
    obs_v, info_v = vec.reset(seed=seeds)
    obs_s, info_s = sync.reset(seed=seeds)
    _assert_obs_equal(obs_v, obs_s)
    _assert_infos_equal(info_v, info_s)
    # Each sub-env got its own seed: the same as a single env reset with it; equal seeds, equal prompts.
    single = gym.make(DETOX, max_new_tokens=MAX_NEW_TOKENS)
    expected = [single.reset(seed=seed)[1]["prompt_index"] for seed in seeds]
    assert info_v["prompt_index"].tolist() == expected
    np.testing.assert_array_equal(obs_v["input_ids"][0], obs_v["input_ids"][2])
    assert vec.render() == sync.render() == tuple(info_v["prompt"])
    # An int seed means seed + i for sub-env i.
    _, info_int = vec.reset(seed=5)
    _, info_list = vec.reset(seed=[5, 6, 7])
    assert info_int["prompt_index"].tolist() == info_list["prompt_index"].tolist()
    with pytest.raises(ValueError, match=r"one per sub-environment \(3\), got 2"):
        vec.reset(seed=[1, 2])


class _CountingScorer:
    """A spy around the real scorer: records each call's batch and returns the real scores."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.calls: list[tuple[list, list[str], list[float]]] = []

    def __call__(self, items, completions):
        scores = self.scorer(items, completions)
        self.calls.append((list(items), list(completions), list(scores)))
        return scores


def test_scorer_is_called_once_per_step_in_which_episodes_end():
    vec = gym.make_vec(DETOX, num_envs=NUM_ENVS, max_new_tokens=MAX_NEW_TOKENS)
    spy = _CountingScorer(vec.envs[0].scorer)
    for env in vec.envs:
        env._scorer = spy
    actions = _actions(vec)
    vec.reset(seed=3)
    steps_with_ends = 0
    for action in actions:
        calls_before = len(spy.calls)
        _, rewards, terminations, truncations, info = vec.step(action)
        ended = terminations | truncations
        if ended.any():
            steps_with_ends += 1
            assert len(spy.calls) == calls_before + 1
            items, completions, scores = spy.calls[-1]
            assert len(items) == int(ended.sum())  # one batch with every episode that ended on this step
            assert completions == info["completion"][ended].tolist()
            np.testing.assert_array_equal(rewards[ended], scores)
            assert [item.source for item in items] == [vec.envs[i].item.source for i in np.flatnonzero(ended)]
        else:
            assert len(spy.calls) == calls_before
            assert not rewards.any()
    assert len(spy.calls) == steps_with_ends >= 4
    assert any(len(call[0]) > 1 for call in spy.calls)  # at least one step batched several episodes


def test_reset_mask_without_a_true_value_raises_like_sync():
    vec, sync = _make_pair(DETOX)
    mask = np.zeros(NUM_ENVS, dtype=np.bool_)
    for env in (sync, vec):
        env.reset(seed=0)
        with pytest.raises(ValueError, match="reset_mask"):
            env.reset(options={"reset_mask": mask.copy()})


def test_disabled_autoreset_keeps_ended_rows_idle_until_reset():
    vec = gym.make_vec(DETOX, num_envs=2, max_new_tokens=4, autoreset_mode="disabled")
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.DISABLED
    sub = vec.envs[0]
    word = sub.tokenizer(" cat", add_special_tokens=False).input_ids[0]
    vec.reset(seed=0)
    obs, rewards, terms, _, infos = vec.step(np.array([word, sub.eos_token_id]))
    assert terms.tolist() == [False, True] and "completion" in infos
    ended_obs = obs["input_ids"][1].copy()
    for _ in range(3):  # row 1 idles: its action (even an invalid one) is ignored, no reward, no termination
        obs, rewards, terms, _, infos = vec.step(np.array([word, -1]))
        np.testing.assert_array_equal(obs["input_ids"][1], ended_obs)
        assert rewards[1] == 0.0 and not terms[1]
    assert terms[0]  # row 0 reached the length limit on the fourth token
    obs, _ = vec.reset(options={"reset_mask": np.array([False, True])})
    _, _, terms, _, _ = vec.step(np.array([word, word]))
    assert terms.tolist() == [False, False]  # row 1 runs again; row 0 idles
    with pytest.raises(ValueError, match="autoreset_mode"):
        gym.make_vec(DETOX, num_envs=2, autoreset_mode="sometimes")


def test_reset_with_one_prompt_index_per_row():
    vec = gym.make_vec(DETOX, num_envs=3, max_new_tokens=2)
    _, infos = vec.reset(seed=0, options={"prompt_index": [4, 4, 7]})
    assert infos["prompt_index"].tolist() == [4, 4, 7]
    assert infos["prompt"][0] == infos["prompt"][1] != infos["prompt"][2]
    _, infos = vec.reset(seed=0, options={"prompt_index": 2})  # one index for all, as before
    assert infos["prompt_index"].tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="one per sub-environment"):
        vec.reset(options={"prompt_index": [1, 2]})
