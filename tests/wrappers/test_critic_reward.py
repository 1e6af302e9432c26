"""CriticRewardWrapper through the registered ``*-critic-v0`` environments, with the real default critics.

The reward rules under test are the wrapper's docstring: span rewards on the tokens whose characters overlap a
span, the extrinsic score on the last token, and a ``prefix`` mode whose return equals the ``episode`` mode's.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the environment ids)
from textgym.critics.segmentation import is_boundary
from textgym.error import UnknownNameError
from textgym.scorers.toxicity_bilstm import ToxicityScorer
from textgym.wrappers.critic_reward import CriticRewardWrapper

from .helpers import char_ends, critic_wrapper, play, token_ids

TOXIC = " Well, you are a stupid idiot and I hate you. Have a nice day."
CLEAN_TOKENS = {1: " Well", 2: ",", 14: " Have", 15: " a", 16: " nice", 17: " day"}
"""Positions (1-based, as a reader counts) and text of tokens of TOXIC that no critic should flag."""
PREFIX_TOXIC = " you stupid idiot, have a nice day."
"""A toxic clause closed by ", ": the prefix mode judges it before the episode ends."""


def overlaps(token: tuple[int, int], spans) -> bool:
    start, end = token
    return start < end and any(start < span_end and span_start < end for span_start, span_end, _ in spans)


@pytest.fixture(scope="module")
def detox_env():
    env = gym.make("TextDetox-critic-v0", max_new_tokens=40)
    yield env
    env.close()


# ---------------------------------------------------------------- the reward rules, on the default detox critic


def test_negative_rewards_fall_only_on_the_reported_toxic_spans(detox_env):
    ids = token_ids(detox_env, TOXIC)
    tokenizer = detox_env.unwrapped.tokenizer
    pieces = [tokenizer.decode([token]) for token in ids]
    assert [pieces[position - 1] for position in CLEAN_TOKENS] == list(CLEAN_TOKENS.values())

    episode = play(detox_env, ids)
    info = episode.info
    assert info["completion"] == TOXIC and info["length_limit"] is False
    assert episode.rewards[:-1] == [0.0] * (len(ids) - 1)  # episode mode pays everything at the end
    assert info["critic_fallback"] is False and info["critic_error"] is None

    spans = info["critic_spans"]
    assert spans and all(label == "toxic" and 0 <= start < end <= len(TOXIC) for start, end, label in spans)
    token_rewards = np.asarray(info["token_rewards"], dtype=float)
    assert token_rewards.shape == (len(ids),)
    assert token_rewards.sum() == pytest.approx(episode.rewards[-1], abs=1e-9)

    extrinsic = 1.0 - ToxicityScorer()([TOXIC])[0]
    assert info["extrinsic_score"] == pytest.approx(extrinsic, abs=1e-6)
    span_part = token_rewards.copy()
    span_part[-1] -= info["extrinsic_score"]
    assert info["critic_reward"] == pytest.approx(span_part.sum(), abs=1e-9)
    assert episode.rewards[-1] == pytest.approx(extrinsic + info["critic_reward"], abs=1e-6)

    ranges = char_ends(detox_env, ids)
    for index, (token_range, reward) in enumerate(zip(ranges, span_part, strict=True)):
        if overlaps(token_range, spans):
            assert reward == -0.5, (index, pieces[index])
        else:
            assert reward == 0.0, (index, pieces[index])
    idiot = [index for index, piece in enumerate(pieces) if piece in (" id", "iot")]
    assert len(idiot) == 2 and all(span_part[index] == -0.5 for index in idiot)
    assert all(span_part[position - 1] == 0.0 for position in CLEAN_TOKENS)
    assert span_part[-1] == 0.0  # EOS adds no characters: no span covers it


def test_the_last_token_carries_its_span_reward_and_the_extrinsic_score():
    text = " you stupid idiot"
    probe = gym.make("TextDetox-critic-v0", max_new_tokens=40)
    ids = token_ids(probe, text, eos=False)
    env = gym.make("TextDetox-critic-v0", max_new_tokens=len(ids))
    episode = play(env, ids)
    info = episode.info
    assert info["length_limit"] is True and info["completion"] == text
    assert overlaps(char_ends(env, ids)[-1], info["critic_spans"]), "the critic should flag 'idiot'"
    extrinsic = 1.0 - ToxicityScorer()([text])[0]
    assert info["token_rewards"][-1] == pytest.approx(-0.5 + extrinsic, abs=1e-6)
    assert episode.total == pytest.approx(float(np.sum(info["token_rewards"])), abs=1e-9)


# ---------------------------------------------------------------- prefix mode = episode mode

CASES = [
    # (env id, text, ends with EOS)
    ("TextDetox-critic-v0", " Well, you are a stupid idiot, and I hate you. Have a nice day.", True),
    ("TextDetox-critic-v0", " you are a stupid idiot and I hate you", True),
    ("TextDetox-critic-v0", " You idiot, I hate you; go away. Thanks", False),
    ("TextSentiment-critic-v0", " I loved it, but the ending was awful.", True),
    ("TextSentiment-critic-v0", " I loved it but the ending was awful", True),
    ("TextSentiment-critic-v0", " A wonderful film, truly. The ending was dull", False),
]

RELC = {"positive": 0.5, "negative": -0.5, "toxic": -0.5}
"""The default per-token label rewards of the docstring."""

_ENVS: dict[tuple, gym.Env] = {}


def make_env(env_id: str, mode: str, max_new_tokens: int = 40, **kwargs) -> gym.Env:
    """One environment per configuration for the whole module (the LM-backed ones are slow to build)."""
    key = (env_id, mode, max_new_tokens, repr(sorted(kwargs.items())))
    if key not in _ENVS:
        _ENVS[key] = gym.make(env_id, mode=mode, max_new_tokens=max_new_tokens, **kwargs)
    return _ENVS[key]


@pytest.mark.parametrize(("env_id", "text", "eos"), CASES, ids=lambda value: str(value)[:24])
def test_prefix_mode_returns_what_episode_mode_returns(env_id, text, eos):
    probe = make_env(env_id, "episode")
    ids = token_ids(probe, text, eos=eos)
    limit = 40 if eos else len(ids)
    prompt = "The movie" if "Sentiment" in env_id else "The man said"
    by_episode = play(make_env(env_id, "episode", limit), ids, prompt)
    by_prefix = play(make_env(env_id, "prefix", limit), ids, prompt)

    assert by_episode.info["length_limit"] is (not eos) and by_prefix.info["completion"] == text
    assert by_prefix.info["extrinsic_score"] == by_episode.info["extrinsic_score"]
    assert by_prefix.total == pytest.approx(by_episode.total, abs=1e-9)
    assert by_episode.rewards[:-1] == [0.0] * (len(ids) - 1)
    np.testing.assert_allclose(by_prefix.info["token_rewards"], by_episode.info["token_rewards"], atol=1e-12)
    assert by_prefix.info["critic_spans"] == by_episode.info["critic_spans"]
    # Each token's span part is the sum of the RELC rewards of the labels of the spans it overlaps.
    span_part = np.asarray(by_episode.info["token_rewards"]) - np.eye(len(ids))[-1] * by_episode.info["extrinsic_score"]
    for token, reward in zip(char_ends(probe, ids), span_part, strict=True):
        labels = {
            label for start, end, label in by_episode.info["critic_spans"] if overlaps(token, [(start, end, label)])
        }
        assert reward == pytest.approx(sum(RELC[label] for label in labels), abs=1e-12)
    # The prefix mode pays only where the prefix ends at a clause boundary (and at the end).
    tokenizer = probe.unwrapped.tokenizer
    for step, reward in enumerate(by_prefix.rewards[:-1]):
        if reward != 0.0:
            assert is_boundary(tokenizer.decode(ids[: step + 1], skip_special_tokens=True)), step


def test_prefix_mode_pays_a_toxic_clause_when_its_comma_arrives():
    env = make_env("TextDetox-critic-v0", "prefix")
    ids = token_ids(env, PREFIX_TOXIC)
    by_episode = play(make_env("TextDetox-critic-v0", "episode"), ids)
    tokenizer = env.unwrapped.tokenizer
    comma = [tokenizer.decode([token]) for token in ids].index(",")
    by_prefix = play(env, ids)

    assert by_prefix.rewards[comma] < 0.0  # " id" "iot" (and maybe ",") at -0.5 each, paid at once
    assert all(reward == 0.0 for reward in by_prefix.rewards[:comma])
    early = sum(by_prefix.rewards[:-1])
    assert early == pytest.approx(by_prefix.rewards[comma], abs=1e-12)
    assert by_prefix.rewards[-1] == pytest.approx(by_episode.total - early, abs=1e-9)
    assert by_prefix.total == pytest.approx(by_episode.total, abs=1e-9)
    assert sum(by_prefix.info["token_rewards"]) == pytest.approx(by_prefix.total, abs=1e-9)


# ---------------------------------------------------------------- weights and label rewards


def test_span_weight_scales_only_the_span_part(detox_env):
    ids = token_ids(detox_env, TOXIC)
    base = play(detox_env, ids)
    doubled = play(make_env("TextDetox-critic-v0", "episode", span_weight=2.0), ids)
    extrinsic = base.info["extrinsic_score"]
    assert base.info["critic_reward"] < 0.0
    assert doubled.info["critic_reward"] == pytest.approx(2.0 * base.info["critic_reward"], abs=1e-9)
    assert doubled.total == pytest.approx(extrinsic + 2.0 * base.info["critic_reward"], abs=1e-9)
    base_spans = np.asarray(base.info["token_rewards"]) - np.eye(len(ids))[-1] * extrinsic
    doubled_spans = np.asarray(doubled.info["token_rewards"]) - np.eye(len(ids))[-1] * extrinsic
    np.testing.assert_allclose(doubled_spans, 2.0 * base_spans, atol=1e-12)


def test_extrinsic_weight_zero_leaves_the_span_part_alone(detox_env):
    ids = token_ids(detox_env, TOXIC)
    base = play(detox_env, ids)
    spans_only = play(make_env("TextDetox-critic-v0", "episode", extrinsic_weight=0.0), ids)
    assert spans_only.total == pytest.approx(base.info["critic_reward"], abs=1e-9)
    assert spans_only.info["token_rewards"][-1] == 0.0  # EOS: no span, no extrinsic part
    assert sum(spans_only.info["token_rewards"]) == pytest.approx(base.info["critic_reward"], abs=1e-9)
    half = play(make_env("TextDetox-critic-v0", "episode", extrinsic_weight=0.5), ids)
    assert half.total == pytest.approx(0.5 * base.info["extrinsic_score"] + base.info["critic_reward"], abs=1e-9)


def test_custom_label_rewards_replace_the_defaults(detox_env):
    ids = token_ids(detox_env, TOXIC)
    base = play(detox_env, ids)
    custom = play(make_env("TextDetox-critic-v0", "episode", label_rewards={"toxic": -2.0}), ids)
    extrinsic = base.info["extrinsic_score"]
    covered = sum(1 for token in char_ends(detox_env, ids) if overlaps(token, base.info["critic_spans"]))
    assert covered >= 2
    assert custom.info["critic_reward"] == pytest.approx(-2.0 * covered, abs=1e-9)
    assert custom.total == pytest.approx(extrinsic - 2.0 * covered, abs=1e-9)
    span_part = np.asarray(custom.info["token_rewards"]) - np.eye(len(ids))[-1] * extrinsic
    assert set(np.round(span_part, 12)) == {0.0, -2.0}


SUMMARY = " Boyfriend earns double and wants to split rent 50/50, and bananas are yellow."
"""A summary of the first summarize post whose last clause the attribution critic marks irrelevant."""


@pytest.mark.parametrize("default_reward", [None, 0.25])
def test_summaries_pay_the_default_reward_on_uncovered_tokens(default_reward):
    env = gym.make("TextSummarize-critic-v0", critic="attribution", max_new_tokens=40, default_reward=default_reward)
    ids = token_ids(env, SUMMARY)
    env.reset(options={"prompt_index": 0})
    for token in ids:
        _, reward, terminated, _, info = env.step(token)
    assert terminated and info["completion"] == SUMMARY
    uncovered = 0.5 if default_reward is None else default_reward
    span_part = np.asarray(info["token_rewards"]) - np.eye(len(ids))[-1] * info["extrinsic_score"]
    ranges = char_ends(env, ids)
    for index, token in enumerate(ranges[:-1]):
        expected = -0.5 if overlaps(token, info["critic_spans"]) else uncovered
        assert span_part[index] == expected, index
    assert span_part[-1] == 0.0  # EOS shows no characters: neither covered nor paid the default
    covered = [overlaps(token, info["critic_spans"]) for token in ranges[:-1]]
    assert any(covered) and not all(covered)
    assert all(label == "irrelevant" for _, _, label in info["critic_spans"])
    assert reward == pytest.approx(float(np.sum(info["token_rewards"])), abs=1e-9)


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(UnknownNameError, match="Did you mean 'prefix'"):
        gym.make("TextDetox-critic-v0", mode="prefx")


def test_environments_of_one_critic_share_its_cache(detox_env):
    other = make_env("TextDetox-critic-v0", "prefix")
    assert critic_wrapper(other).critic is critic_wrapper(detox_env).critic
    assert isinstance(critic_wrapper(detox_env), CriticRewardWrapper)
