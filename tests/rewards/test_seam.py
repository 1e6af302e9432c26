"""The seam's bookkeeping: faults become counted, logged fallbacks; the cache; one batched call per step.

The faults are injected by wrapping the real scorer (a fake only where a real scorer cannot fail on demand); the
real scorers' own behaviour is tested in tests/scorers and tests/rewards/test_members.py.
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401
from tests.wrappers.helpers import play, reward_wrapper, token_ids
from textgym.rewards.base import StepPayment
from textgym.tasks import PromptItem, get_scorer

PROMPT = "The man said"
TEXT = " you are an idiot, and I hate you. Have a lovely day, friend!"


class Flaky:
    """The real scorer, except that texts containing ``poison`` make it raise (or answer garbage)."""

    def __init__(self, scorer, poison: str, garbage: bool = False) -> None:
        self.scorer, self.poison, self.garbage, self.calls = scorer, poison, garbage, []

    def __call__(self, items, texts):
        self.calls.append(len(texts))
        if any(self.poison in text for text in texts):
            if self.garbage:
                return [0.5]  # one answer for many texts
            raise TimeoutError("scorer timed out")
        return self.scorer(items, texts)


def _env(env_id, poison, garbage=False, **kwargs):
    env = gym.make(env_id, max_new_tokens=64, **kwargs)
    member = reward_wrapper(env).reward
    if hasattr(member, "scorer"):
        member.scorer = Flaky(member.scorer, poison, garbage)
    member._cache.clear()
    return env, member


@pytest.mark.parametrize("garbage", [False, True])
def test_a_failed_final_answer_falls_back_to_the_extrinsic_reward_counted_and_logged(caplog, garbage):
    env, member = _env("TextDetox-occlusion-v0", poison="idiot", garbage=garbage)  # every occluded text but one
    with caplog.at_level(logging.WARNING, logger="textgym.rewards"):
        episode = play(env, token_ids(env, TEXT), PROMPT)
    score = episode.info["extrinsic_score"]
    assert episode.total == pytest.approx(score, abs=1e-12)  # the sparse return, not a silent wrong one
    assert episode.info["reward_fallback"] and "scorer" in episode.info["reward_error"] or garbage
    assert episode.info["token_rewards"][-1] == pytest.approx(score) and sum(episode.info["token_rewards"]) == score
    assert episode.info["reward_stats"]["failures"] >= 1
    assert episode.info["dense_reward"] == 0.0
    assert any("falls back" in record.message or "failed" in record.message for record in caplog.records)


def test_a_failed_prefix_pays_nothing_and_the_potential_holds_so_the_return_is_kept():
    env, member = _env("TextDetox-potential-v0", poison="idiot,", mode="prefix")  # every boundary prefix fails
    ids = token_ids(env, TEXT)
    episode = play(env, ids, PROMPT)
    item = PromptItem(PROMPT)
    phi0 = get_scorer("detox")([item], [""])[0]
    assert episode.total == pytest.approx(episode.info["extrinsic_score"] - phi0, abs=1e-6)
    assert episode.info["reward_fallback"] and episode.info["reward_error"] is None  # a prefix failed, not the end
    boundaries = sum(text.rstrip().endswith((",", ".", "!")) for text in [TEXT[: i + 1] for i in range(len(TEXT) - 1)])
    assert member.stats.failures == 4 <= boundaries  # "idiot," "you." "day," (and the last before EOS's "!")
    assert episode.rewards[:-1] == [0.0] * (len(ids) - 1)  # Phi held at Phi(empty): nothing paid online


def test_a_failed_empty_prefix_potential_makes_the_episode_fall_back():
    env, member = _env("TextDetox-potential-v0", poison="", mode="prefix")  # "" is in every text: all fail
    episode = play(env, token_ids(env, TEXT), PROMPT)
    assert episode.total == pytest.approx(episode.info["extrinsic_score"], abs=1e-12)
    assert "potential failed" in episode.info["reward_error"]


def test_a_member_whose_shares_do_not_sum_to_its_payments_is_caught(caplog):
    env, member = _env("TextDetox-uniform-v0", poison="never")
    member.settle = lambda state, answers, done, extrinsic: StepPayment(
        extrinsic if done else 0.0, np.zeros(len(state.tokens)) if done else None
    )  # a bug: shares of 0 for a return of the score
    with caplog.at_level(logging.ERROR, logger="textgym.rewards"):
        episode = play(env, token_ids(env, TEXT), PROMPT)
    assert member.stats.bad_shares == 1 and episode.info["reward_fallback"]
    assert sum(episode.info["token_rewards"]) == pytest.approx(episode.total)
    assert "do not sum" in caplog.text


def test_answers_are_cached_per_member_and_failures_are_not():
    env, member = _env("TextDetox-occlusion-v0", poison="never")
    ids = token_ids(env, TEXT)
    first = play(env, ids, PROMPT)
    calls = len(member.scorer.calls)
    second = play(env, ids, PROMPT)
    assert len(member.scorer.calls) == calls  # every occluded text came from the cache
    assert second.info["reward_stats"]["hits"] >= len(first.info["token_rewards"]) // 4
    np.testing.assert_allclose(first.info["token_rewards"], second.info["token_rewards"])


def test_the_vector_wrapper_asks_the_member_once_per_step():
    envs = gym.make_vec("TextDetox-occlusion-v0", num_envs=3, max_new_tokens=5)
    member = envs.reward
    member.scorer = Flaky(member.scorer, poison="never")
    member._cache.clear()
    envs.reset(seed=0)
    tokenizer = envs.get_attr("tokenizer")[0]
    words = tokenizer(TEXT, add_special_tokens=False).input_ids
    for step in range(5):
        envs.step(np.array([words[(step + 3 * i) % len(words)] for i in range(3)]))
    assert len(member.scorer.calls) == 1 and member.scorer.calls[0] >= 3  # all three ended together: one call
