"""Helpers of the async vector env tests: run an AsyncVectorEnv under a deadline and compare it with a sync one."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv

# Clause punctuation, conjunctions and words the scorers and critics react to, so the dense rewards have work to do.
WORDS = " The film was great, and I loved it. You stupid idiot, I hate you! Then the dog came over to say hello."
WAIT_S = 120
"""Seconds a worker may take to answer a call before it counts as hung."""


@contextlib.contextmanager
def deadline(seconds: int):
    """Raises TimeoutError in whatever blocks past ``seconds``, so a hang fails the test instead of blocking it.

    AsyncVectorEnv's constructor waits for its workers' spaces without a timeout, so the timeouts of
    ``reset_wait``/``step_wait`` alone do not cover a worker that hangs while it builds its env.
    """

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a worker hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def word_plan(tokenizer, steps: int, num_envs: int) -> np.ndarray:
    """A (steps, num_envs) plan of word tokens of :data:`WORDS`, drawn with a fixed seed (no EOS)."""
    words = np.array(tokenizer(WORDS, add_special_tokens=False).input_ids)
    return np.random.default_rng(0).choice(words, size=(steps, num_envs))


def assert_async_equals_sync(
    make_async: Callable[[], AsyncVectorEnv], sync: gym.vector.VectorEnv, max_new_tokens: int, seed: int = 3
) -> AsyncVectorEnv:
    """Steps both on the same seed and actions until every episode has ended; returns the (closed) async env.

    The plan writes ``max_new_tokens`` tokens in every sub-environment, but EOS first in sub-environment 0, which
    so ends, autoresets and writes again. Compared: rewards and terminations on every step (to 1e-5: a worker's
    scorer sees other batches than the sync side's), and for each ended episode its extrinsic score and token
    rewards.
    """
    tokenizer = sync.envs[0].unwrapped.tokenizer
    actions = word_plan(tokenizer, max_new_tokens, sync.num_envs)
    actions[0, 0] = tokenizer.eos_token_id
    with deadline(3 * WAIT_S):
        envs = make_async()
        try:
            envs.reset_async(seed=seed)
            envs.reset_wait(timeout=WAIT_S)
            got = []
            for action in actions:
                envs.step_async(action)
                got.append(envs.step_wait(timeout=WAIT_S))
        finally:
            envs.close(terminate=True)
    sync.reset(seed=seed)  # after the async run, so that forked workers inherit no answers of these texts
    expected = [sync.step(action) for action in actions]
    for step, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        (_, rew_a, term_a, _, info_a), (_, rew_s, term_s, _, info_s) = mine, theirs
        np.testing.assert_allclose(rew_a, rew_s, rtol=0, atol=1e-5, err_msg=f"step {step}")
        np.testing.assert_array_equal(term_a, term_s)
        for i in np.flatnonzero(term_s):
            assert info_a["extrinsic_score"][i] == pytest.approx(info_s["extrinsic_score"][i], abs=1e-5)
            if "token_rewards" in info_s:
                np.testing.assert_allclose(info_a["token_rewards"][i], info_s["token_rewards"][i], atol=1e-5)
    assert np.logical_or.reduce([step[2] for step in expected]).all(), "every episode should have ended"
    return envs
