"""Every built-in id in every vector form: the vector entry point, async with fork and with spawn, against sync.

Also the fork hang (see :mod:`textgym.forking`) at its depth: a child forked after torch's thread pool ran.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import textgym
from tests.async_vector import assert_async_equals_sync, word_plan
from tests.wrappers.helpers import reward_wrapper
from textgym.envs.registration import reward_of, task_of
from textgym.rewards import REWARD_KINDS, reward_class

BUILTIN_TASKS = ("sentiment", "detox", "summarize")
IDS = [env_id for env_id in textgym.registered_ids() if task_of(env_id) in BUILTIN_TASKS]
# Every id in its default mode, and the ids whose reward also pays online in prefix mode.
PREFIX_IDS = [i for i in IDS if reward_of(i) != "sparse" and "prefix" in reward_class(reward_of(i)).modes]
CASES = [(env_id, None) for env_id in IDS] + [(env_id, "prefix") for env_id in PREFIX_IDS]
PROCESS_WIDE = ("reward_stats", "critic_stats")  # counters of work, which the two sides share or split differently
NUM_ENVS, MAX_NEW_TOKENS, NUM_STEPS = 3, 4, 12
# Vector against sync: the vector side asks the scorer for every sub-environment's texts in one batch, sync for one
# env's at a time. The sentiment LM scorer's float32 scores move by about 1e-6 with the batch around a text (padding),
# and a potential reward is a difference of two scores, so the two sides agree to a few 1e-6, not to 1e-6. A
# bookkeeping error (a wrong row, a share paid twice) is of the order of a score, 1e-2 and more.
BATCH_ATOL = 1e-5


def _light(env_id: str) -> dict:
    """The summary critic id with the attribution critic instead of the SmolLM2 judge (about 5 s a text on a CPU):
    these tests check the vector forms' bookkeeping, which is the same for every critic; the judge's critiques have
    their own tests (tests/critics/test_segment_judge.py)."""
    return {"critic": "attribution"} if (task_of(env_id), reward_of(env_id)) == ("summarize", "critic") else {}


# ------------------------------------------------------------------------------------------------- helpers


def _plan(tokenizer) -> np.ndarray:
    """A (NUM_STEPS, NUM_ENVS) plan of words, with EOS where episodes should end early.

    With next-step autoreset and 4 tokens an episode: env 0 ends at EOS on steps 1 and 4 and by length on step 9;
    env 1 by length on step 3, at EOS as its first token on step 5 (an empty completion), by length on step 10;
    env 2 at EOS on steps 2 and 10, by length on step 7. Nine episodes, ending on different steps.
    """
    actions = word_plan(tokenizer, NUM_STEPS, NUM_ENVS)
    for step, env in ((1, 0), (4, 0), (5, 1), (2, 2), (10, 2)):
        actions[step, env] = tokenizer.eos_token_id
    return actions


def _assert_close(a, b, where: str) -> None:
    """Equal infos (or parts of them), floats to BATCH_ATOL; the process-wide counters are skipped."""
    if isinstance(a, dict):
        skipped = {*PROCESS_WIDE, *(f"_{key}" for key in PROCESS_WIDE)}
        assert set(a) - skipped == set(b) - skipped, where
        for key in set(a) - skipped:
            _assert_close(a[key], b[key], f"{where}[{key!r}]")
        return
    if isinstance(a, (tuple, list)) and all(isinstance(v, float) for v in (*a, *b)):  # token_rewards
        np.testing.assert_allclose(a, b, rtol=0, atol=BATCH_ATOL, err_msg=where)
        return
    x, y = np.asarray(a), np.asarray(b)
    assert x.shape == y.shape and x.dtype == y.dtype, where
    if np.issubdtype(x.dtype, np.floating):
        np.testing.assert_allclose(x, y, rtol=0, atol=BATCH_ATOL, err_msg=where)
    elif x.dtype == object and x.ndim == 0:  # None, a list of spans
        assert a == b, where
    elif x.dtype == object:
        for index, (u, v) in enumerate(zip(x.ravel(), y.ravel(), strict=True)):
            _assert_close(u, v, f"{where}[{index}]")
    else:
        assert x.tolist() == y.tolist(), where


# -------------------------------------------------------------------------- the vector form equals sync


@pytest.mark.parametrize(("env_id", "mode"), CASES, ids=[f"{i}-{m}" if m else i for i, m in CASES])
def test_vector_entry_point_equals_sync_vector_env(env_id, mode):
    kwargs = {"max_new_tokens": MAX_NEW_TOKENS, **({"mode": mode} if mode else {}), **_light(env_id)}
    vec = gym.make_vec(env_id, num_envs=NUM_ENVS, **kwargs)
    sync = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="sync", **kwargs)
    assert isinstance(sync, SyncVectorEnv) and not isinstance(vec, SyncVectorEnv)
    dense = reward_of(env_id) != "sparse"
    if dense:
        members = [reward_wrapper(env).reward for env in sync.envs]
        # What the sides share. Each side has its own member objects, so their answer caches
        # (DenseReward._cache, per member object) and bookkeeping are separate. The task's scorer is built once
        # per process (tasks.get_scorer), and a critic once per process and configuration
        # (critics.registry.build_critic) behind one CachedCritic (rewards.critic.cached): the sync side, which
        # steps second, gets the vector side's critiques of the same texts from that cache. The comparison is still
        # meaningful: the scorer and critic answer a text deterministically whoever asks, and what differs
        # between the vector wrapper and SyncVectorEnv of single wrappers is the payment bookkeeping (which
        # queries a step asks, in which batches; row indices across autoresets; settling and token shares),
        # which this compares.
        assert all(member is not vec.reward for member in members)
        if reward_of(env_id) == "critic":
            assert all(member.critic is vec.reward.critic for member in members)
        assert vec.mode == members[0].mode == (mode or "episode")
    tokenizer = sync.envs[0].unwrapped.tokenizer
    actions = _plan(tokenizer)

    obs_v, info_v = vec.reset(seed=42)
    obs_s, info_s = sync.reset(seed=42)
    _assert_close(info_v, info_s, "reset info")
    returns, ends = np.zeros(NUM_ENVS), 0
    for step, action in enumerate(actions):
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(action)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(action)
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(obs_v[key], obs_s[key])
        assert rew_v.dtype == rew_s.dtype == np.float64
        np.testing.assert_allclose(rew_v, rew_s, rtol=0, atol=BATCH_ATOL, err_msg=f"step {step}")
        np.testing.assert_array_equal(term_v, term_s)
        np.testing.assert_array_equal(trunc_v, trunc_s)
        _assert_close(info_v, info_s, f"step {step} info")
        returns += rew_v
        for i in np.flatnonzero(term_v):
            ends += 1
            if dense:
                assert not info_v["reward_fallback"][i], info_v["reward_error"][i]  # a fallback would hide a bug
                shares = info_v["token_rewards"][i]
                assert len(shares) == info_v["num_new_tokens"][i]
                assert returns[i] == pytest.approx(sum(shares), abs=1e-6)
                if vec.credit_token_rewards:  # episode mode: the whole return on the last step
                    assert rew_v[i] == pytest.approx(sum(shares), abs=1e-9)
            else:
                assert rew_v[i] == info_v["extrinsic_score"][i] == returns[i]
            returns[i] = 0.0
    assert ends == 9  # the plan's nine episodes (>= 5), ending at EOS and by length on different steps
    vec.close()
    sync.close()


# ------------------------------------------------------------------------------- async, fork and spawn


@pytest.mark.parametrize("env_id", IDS)
def test_async_fork_equals_sync(env_id):
    # Fork mechanics and rewards. Not the hang's regression test: the suite runs torch on one thread (conftest), so
    # the parent's thread pool never ran here; the fork-hang tests below run it first.
    assert mp.get_start_method() == "fork"  # Linux's default, which make_vec's async mode uses
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", max_new_tokens=3, **_light(env_id))
    make = functools.partial(
        gym.make_vec, env_id, num_envs=2, vectorization_mode="async", max_new_tokens=3, **_light(env_id)
    )
    assert_async_equals_sync(make, sync, max_new_tokens=3)


@pytest.mark.slow
def test_async_spawn_of_make_vec_equals_sync():
    env_id = "TextDetox-critic-v0"  # the id whose async fork hung: spawn is the documented way around it
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", max_new_tokens=3)
    make = functools.partial(
        gym.make_vec,
        env_id,
        num_envs=2,
        vectorization_mode="async",
        max_new_tokens=3,
        vector_kwargs={"context": "spawn"},
    )
    assert assert_async_equals_sync(make, sync, max_new_tokens=3).context == "spawn"


@pytest.mark.slow
@pytest.mark.parametrize("task", BUILTIN_TASKS)
def test_async_spawn_of_every_id_of_a_task_equals_sync(task):
    # One spawned worker per id: an async env whose six sub-environments are the task's six ids (they share the
    # spaces). A spawned worker imports torch and loads the task's models, 10-30 s a worker on this machine, so
    # make_vec with two workers for each of the 18 ids took 7.5 min; this is the same coverage (each id built from
    # its spec in a fresh process, reset and stepped to the end) with half the workers. The env functions are
    # make_vec's own: gym.make on the spec, which the worker gets pickled.
    ids = [env_id for env_id in IDS if task_of(env_id) == task]
    assert [reward_of(env_id) for env_id in ids] == list(REWARD_KINDS)
    fns = [functools.partial(gym.make, gym.spec(env_id), max_new_tokens=3, **_light(env_id)) for env_id in ids]
    assert_async_equals_sync(lambda: AsyncVectorEnv(fns, context="spawn"), SyncVectorEnv(fns), max_new_tokens=3)


# ---------------------------------------------------------------------------------- the fork hang, deep


def _score_in_child(connection, texts: list[str]) -> None:
    from textgym.tasks import get_scorer

    scorer = get_scorer("detox")  # the parent's scorer, inherited by the fork
    connection.send((torch.get_num_threads(), [float(s) for s in scorer.toxicity(texts)]))


@contextlib.contextmanager
def _torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def test_a_child_forked_after_the_thread_pool_ran_scores_toxicity():
    texts = ["you are a stupid idiot", "what a lovely day"]
    with _torch_threads(2):
        torch.ones(1_000_000).add_(1.0)  # a parallel op: the OpenMP pool now has its threads
        env = gym.make("TextDetox-critic-v0", max_new_tokens=3)  # as AsyncVectorEnv builds one in the parent
        env.reset(seed=0)
        expected = env.unwrapped.scorer.toxicity(texts)
        receiver, sender = mp.Pipe(duplex=False)
        child = mp.get_context("fork").Process(target=_score_in_child, args=(sender, texts))
        child.start()
        answered = receiver.poll(60)
        child.join(5)
        if child.is_alive():
            child.kill()
    assert answered, "the forked child hung in its first LSTM forward"
    threads, toxicity = receiver.recv()
    assert threads == 1  # textgym's at-fork handler (textgym.forking)
    np.testing.assert_allclose(toxicity, expected, atol=1e-6)
    assert child.exitcode == 0
    env.close()


# Documents the cause: a fresh interpreter that does NOT import textgym (so no at-fork handler) runs the same
# torch work, forks, and the child's first LSTM forward hangs; after `import textgym` the same fork answers.
_CONTROL = textwrap.dedent(
    """
    import multiprocessing as mp, sys, torch

    def child(connection):
        lstm = torch.nn.LSTM(32, 32, batch_first=True, bidirectional=True)
        with torch.no_grad():
            lstm(torch.randn(2, 50, 32))
        connection.send(torch.get_num_threads())

    def answers(seconds):
        receiver, sender = mp.Pipe(duplex=False)
        process = mp.get_context("fork").Process(target=child, args=(sender,))
        process.start()
        answered = receiver.poll(seconds)
        process.kill()
        process.join()
        return answered

    torch.set_num_threads(2)
    torch.ones(1_000_000).add_(1.0)
    without = answers(8)
    assert "textgym" not in sys.modules
    import textgym  # registers the at-fork handler
    print("without-handler:", "answered" if without else "hung", "with-handler:", "answered" if answers(60) else "hung")
    """
)


@pytest.mark.skipif("OpenMP" not in torch.__config__.parallel_info(), reason="the hang is GNU OpenMP's")
def test_without_the_at_fork_handler_the_child_hangs():
    result = subprocess.run(
        [sys.executable, "-c", _CONTROL],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["without-handler:", "hung", "with-handler:", "answered"]
