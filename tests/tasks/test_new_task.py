"""A fourth task from outside textgym: one module (tests/tasks/tiny_task.py) and its prompts give six working ids.

The task is registered only while this module's tests run (the ``shout`` fixture imports the module, which
registers it, and takes the task and its ids out again afterwards), so tests elsewhere that count the built-in
ids see exactly those, whatever the order the tests run in.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
from gymnasium.utils.env_checker import check_env

import textgym
from tests.async_vector import assert_async_equals_sync
from textgym.cli import main
from textgym.envs.registration import env_id, reward_of, task_of, with_reward
from textgym.rewards import REWARD_KINDS
from textgym.tasks import TASKS, Task, get_items, get_scorer, register_task

MODULE = "tests.tasks.tiny_task"
TEXT = " WE WON, yes. HOORAY"  # a loud clause, a quiet one, a loud one
_OWN_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (gym, stable_baselines3, textgym))


@pytest.fixture(scope="module")
def shout() -> Task:
    assert "shout" not in TASKS and MODULE not in sys.modules
    before = textgym.registered_ids()
    task = importlib.import_module(MODULE).TASK
    yield task
    for reward in REWARD_KINDS:
        del gym.registry[env_id(task, reward)]
    del TASKS[task.name]
    del sys.modules[MODULE]
    assert textgym.registered_ids() == before


def _play(env: gym.Env, text: str = TEXT) -> tuple[list[float], dict]:
    """Resets on the first prompt and writes ``text`` (then EOS) until the episode ends: the rewards, last info."""
    tokenizer = env.unwrapped.tokenizer
    env.reset(seed=0, options={"prompt_index": 0})
    rewards = []
    for token in [*tokenizer(text, add_special_tokens=False).input_ids, tokenizer.eos_token_id]:
        _, reward, terminated, truncated, info = env.step(token)
        rewards.append(float(reward))
        if terminated or truncated:
            return rewards, info
    raise AssertionError("the episode did not end")


def test_registering_the_task_gives_six_ids(shout):
    ids = textgym.registered_ids()
    new = [env_id(shout, reward) for reward in REWARD_KINDS]
    assert new == [f"TextShout-{reward}-v0" for reward in REWARD_KINDS] == ids[-6:]
    assert [task_of(i) for i in new] == ["shout"] * 6 and [reward_of(i) for i in new] == list(REWARD_KINDS)
    assert gym.spec(new[0]).kwargs == {"task": "shout", "reward": "sparse", "task_module": MODULE}
    assert with_reward("TextShout-critic-v0", "attention") == "TextShout-attention-v0"
    assert register_task(shout) is shout and textgym.registered_ids() == ids  # again: nothing changes
    twin = Task(**{**{f: getattr(shout, f) for f in shout.__dataclass_fields__}, "name": "yell"})
    with pytest.raises(ValueError, match="titled 'Shout' is registered already"):
        register_task(twin)
    assert [len(get_items("shout", split)) for split in ("train", "eval")] == [2, 1]
    scorer = get_scorer("shout")
    assert scorer([], [" AB cd", "", "!!"]) == [0.5, 0.0, 0.0]
    weights = scorer.attribution([], [" Ab"])[0]
    assert weights.tolist() == [0.0, 1.0, 0.0]
    assert shout.metrics(np.array([[0.9, 0.2], [0.7, 0.6]]), [], []) == {"loud_share": 0.75}


def test_textgym_list_shows_the_six_ids(shout, capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for reward in REWARD_KINDS:
        assert shout.description in lines[env_id(shout, reward)]


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_gymnasium_check_env(shout, reward):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id(shout, reward), max_new_tokens=4)
        # The base env of a sparse id, the reward wrapper of a dense one (as tests/envs/test_checkers.py does).
        check_env(env.unwrapped if reward == "sparse" else env.env.env)
        env.close()
    about_env = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if w.filename.startswith(_OWN_DIRS) or "WARN:" in str(w.message)
    ]
    assert [m for m in about_env if "different from the unwrapped version" not in m] == []


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_an_episode_to_the_end(shout, reward):
    env = gym.make(env_id(shout, reward))  # the task's default length, 6 tokens: the text is cut there
    rewards, info = _play(env)
    assert info["completion"] == " WE WON, yes." and info["length_limit"]
    assert info["extrinsic_score"] == pytest.approx(5 / 8)  # WEWON out of WEWONyes
    total = sum(rewards)
    assert math.isfinite(total)
    if reward == "sparse":
        assert rewards[-1] == total == info["extrinsic_score"]
        return
    shares = np.asarray(info["token_rewards"])
    assert not info["reward_fallback"] and len(shares) == len(rewards)
    assert total == pytest.approx(shares.sum(), abs=1e-9) == rewards[-1]  # episode mode: paid on the last step
    if reward == "critic":  # loud clause +0.5 a token, quiet clause -0.5 a token, the score on the last
        assert info["critic_spans"] == [(1, 8, "loud"), (9, 13, "quiet")]
        assert total == pytest.approx(4 * 0.5 - 2 * 0.5 + 5 / 8)
    else:  # the others keep the return (potential: less the empty completion's score, which is 0)
        assert total == pytest.approx(5 / 8)
    if reward == "attention":  # beta of the score over the upper-case letters, (1 - beta) on the last token
        pieces = [env.unwrapped.tokenizer.decode([token]) for token in env.unwrapped.generated_ids]
        quiet = [i for i, piece in enumerate(pieces[:-1]) if not any(char.isupper() for char in piece)]
        assert pieces[:-1] and quiet and np.allclose(shares[quiet], 0.0)
        assert shares[-1] == pytest.approx(0.2 * 5 / 8)  # "." has no upper-case letter: only the (1 - beta) part


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_async_fork(shout, reward):
    env_id_ = env_id(shout, reward)
    sync = gym.make_vec(env_id_, num_envs=2, vectorization_mode="sync", max_new_tokens=3)
    make = functools.partial(gym.make_vec, env_id_, num_envs=2, vectorization_mode="async", max_new_tokens=3)
    assert_async_equals_sync(make, sync, max_new_tokens=3)


@pytest.mark.slow
def test_async_spawn_finds_the_task_through_its_module(shout):
    # A spawned worker starts without the task: it imports MODULE, which the spec records as task_module.
    env_id_ = env_id(shout, "critic")
    sync = gym.make_vec(env_id_, num_envs=2, vectorization_mode="sync", max_new_tokens=3)
    async_args = {"vectorization_mode": "async", "vector_kwargs": {"context": "spawn"}}
    make = functools.partial(gym.make_vec, env_id_, num_envs=2, max_new_tokens=3, **async_args)
    envs = assert_async_equals_sync(make, sync, max_new_tokens=3)
    assert envs.context == "spawn"
