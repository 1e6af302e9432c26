"""Each dense reward against its formula, computed by hand from the task's own scorer on a forced text."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from tests.wrappers.helpers import char_ends, play, reward_wrapper, token_ids
from textgym.critics.segmentation import clauses, is_boundary
from textgym.error import SettingsError
from textgym.rewards.attention import AttentionReward
from textgym.rewards.base import EnvSettings
from textgym.tasks import PromptItem, get_scorer

PROMPT = "The man said"
TEXT = " you are an idiot, and I hate you. Have a lovely day, friend!"
SENTIMENT_PROMPT = "The film was"
SENTIMENT_TEXT = " dull at first, but the ending is wonderful. I loved it."


def _episode(env_id: str, text: str = TEXT, prompt: str = PROMPT, **kwargs):
    env = gym.make(env_id, max_new_tokens=64, **kwargs)
    ids = token_ids(env, text)
    return env, ids, play(env, ids, prompt)


def _decoded(env, ids) -> str:
    return env.unwrapped.tokenizer.decode(ids, skip_special_tokens=True)


# ------------------------------------------------------------------------------------------------ uniform


def test_uniform_gives_every_token_the_score_over_n_and_keeps_the_return():
    env, ids, episode = _episode("TextDetox-uniform-v0")
    score, n = episode.info["extrinsic_score"], len(ids)
    assert episode.info["token_rewards"] == pytest.approx([score / n] * n, abs=1e-12)
    assert episode.total == pytest.approx(score, abs=1e-12)
    assert episode.rewards[:-1] == [0.0] * (n - 1)  # episode mode: all of it on the last step
    assert reward_wrapper(env).credit_token_rewards


def test_uniform_has_no_prefix_mode():
    with pytest.raises(SettingsError, match="'uniform' reward pays only in episode mode"):
        gym.make("TextDetox-uniform-v0", mode="prefix")


# ------------------------------------------------------------------------------------------------ potential


def _potentials(ids, env, item):
    """Phi at each step's state: the scorer on the longest boundary-ending prefix (the empty one first)."""
    scorer = get_scorer("sentiment")
    phi, out = scorer([item], [""])[0], []
    for t in range(len(ids)):
        out.append(phi)  # Phi(s_t), before token t
        text = _decoded(env, ids[: t + 1])
        if t < len(ids) - 1 and is_boundary(text):
            phi = scorer([item], [text])[0]
    return out


def test_potential_online_pays_gamma_phi_next_minus_phi_and_returns_score_minus_the_empty_prefix():
    env = gym.make("TextSentiment-potential-v0", mode="prefix", max_new_tokens=64)
    ids = token_ids(env, SENTIMENT_TEXT)
    episode = play(env, ids, SENTIMENT_PROMPT)
    item = PromptItem(SENTIMENT_PROMPT)
    score = episode.info["extrinsic_score"]
    phi = _potentials(ids, env, item)
    expected = [phi[t + 1] - phi[t] for t in range(len(ids) - 1)] + [score - phi[-1]]
    np.testing.assert_allclose(episode.rewards, expected, atol=1e-6)
    assert episode.total == pytest.approx(score - get_scorer("sentiment")([item], [""])[0], abs=1e-6)
    assert sum(1 for r in episode.rewards[:-1] if r != 0.0) >= 2  # it did pay online, at the boundaries
    assert not reward_wrapper(env).credit_token_rewards  # already dense: nothing to credit
    np.testing.assert_allclose(episode.info["token_rewards"], episode.rewards, atol=1e-12)


def test_potential_episode_mode_gives_the_same_return_and_the_same_per_token_payments():
    env_p = gym.make("TextSentiment-potential-v0", mode="prefix", max_new_tokens=64)
    env_e = gym.make("TextSentiment-potential-v0", mode="episode", max_new_tokens=64)
    ids = token_ids(env_p, SENTIMENT_TEXT)
    online, hindsight = play(env_p, ids, SENTIMENT_PROMPT), play(env_e, ids, SENTIMENT_PROMPT)
    assert hindsight.total == pytest.approx(online.total, abs=1e-6)
    # hindsight scores every prefix in one batch, online one at a time: the float32 LM's margins move by ~1e-5
    # with the batch's shape, a payment (a difference of two P(positive)) by a few 1e-6
    np.testing.assert_allclose(hindsight.info["token_rewards"], online.rewards, atol=1e-5)
    assert hindsight.rewards[:-1] == [0.0] * (len(ids) - 1)


def test_potential_with_a_discount_shifts_the_discounted_return_by_the_empty_prefix_only():
    gamma = 0.9
    env = gym.make("TextSentiment-potential-v0", mode="prefix", gamma=gamma, max_new_tokens=64)
    ids = token_ids(env, SENTIMENT_TEXT)
    episode = play(env, ids, SENTIMENT_PROMPT)
    item = PromptItem(SENTIMENT_PROMPT)
    score, phi0 = episode.info["extrinsic_score"], get_scorer("sentiment")([item], [""])[0]
    discounted = sum(gamma**t * r for t, r in enumerate(episode.rewards))
    assert discounted == pytest.approx(gamma ** (len(ids) - 1) * score - phi0, abs=1e-6)
    phi = _potentials(ids, env, item)
    assert episode.rewards[1] == pytest.approx(
        gamma * phi[2] - phi[1], abs=1e-6
    )  # (gamma - 1) * Phi between boundaries


def test_potential_gamma_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"gamma must lie in \(0, 1\]"):
        gym.make("TextDetox-potential-v0", gamma=1.5)


# ------------------------------------------------------------------------------------------------ attention


def test_attention_shares_are_beta_score_times_the_scorers_weights_plus_the_rest_on_the_last_token():
    beta = 0.8
    env, ids, episode = _episode("TextDetox-attention-v0", beta=beta)
    score, completion = episode.info["extrinsic_score"], episode.info["completion"]
    chars = get_scorer("detox").attribution([PromptItem(PROMPT)], [completion])[0]
    weights = np.array([chars[a:b].sum() for a, b in char_ends(env, ids)])
    weights /= weights.sum()
    expected = beta * score * weights
    expected[-1] += (1 - beta) * score
    shares = np.array(episode.info["token_rewards"])
    np.testing.assert_allclose(shares, expected, atol=1e-9)
    assert (shares - np.eye(len(ids))[-1] * (1 - beta) * score).sum() == pytest.approx(beta * score, abs=1e-9)
    assert episode.total == pytest.approx(score, abs=1e-9)
    idiot = [t for t, (a, b) in enumerate(char_ends(env, ids)) if "idiot" in completion[a:b] or "id" in completion[a:b]]
    assert shares[idiot].max() > np.median(shares[:-1])  # the saliency finds the insult


def test_attention_needs_a_scorer_with_attribution():
    env = gym.make("TextDetox-sparse-v0")
    settings = EnvSettings.of_env(env)

    class Plain(EnvSettings):
        def get_scorer(self):
            return lambda items, completions: [0.5] * len(completions)

    plain = Plain(**{field: getattr(settings, field) for field in settings.__dataclass_fields__})
    with pytest.raises(SettingsError, match="gives no attribution, which the attention reward needs"):
        AttentionReward(plain)


# ------------------------------------------------------------------------------------------------ occlusion


def test_occlusion_pays_each_clause_its_drop_plus_an_even_share_of_the_remainder():
    env, ids, episode = _episode("TextDetox-occlusion-v0")
    score, completion = episode.info["extrinsic_score"], episode.info["completion"]
    units = clauses(completion)
    assert len(units) >= 3
    without = get_scorer("detox")(
        [PromptItem(PROMPT)] * len(units), [completion[:a] + completion[b:] for a, b in units]
    )
    drops = [score - value for value in without]
    ranges = char_ends(env, ids)
    expected = np.zeros(len(ids))
    owner = [next((u for u, (a, b) in enumerate(units) if s < e and s < b and a < e), None) for s, e in ranges]
    for u, drop in enumerate(drops):
        members = [t for t, o in enumerate(owner) if o == u]
        expected[members] += drop / len(members)
    expected += (score - expected.sum()) / len(ids)
    shares = np.array(episode.info["token_rewards"])
    np.testing.assert_allclose(shares, expected, atol=1e-9)
    assert shares.sum() == pytest.approx(score, abs=1e-9)
    toxic = [t for t, o in enumerate(owner) if o == 0]  # "you are an idiot," lowers the score most
    kind = [t for t, o in enumerate(owner) if o == len(units) - 1]
    assert shares[toxic].mean() < shares[kind].mean()


def test_occlusion_by_token_has_one_query_per_visible_token_and_still_sums_to_the_score():
    env, ids, episode = _episode("TextDetox-occlusion-v0", unit="token")
    assert sum(episode.info["token_rewards"]) == pytest.approx(episode.info["extrinsic_score"], abs=1e-9)
    assert episode.info["reward_stats"]["requests"] >= len(ids) - 2  # spaces-only tokens are not occluded


# ------------------------------------------------------------------------------------------------ the seam


def test_a_dense_env_refuses_arguments_no_part_takes():
    with pytest.raises(SettingsError, match=r"Unknown argument\(s\) \['betta'\].*the reward \['beta', 'mode'\]"):
        gym.make("TextDetox-attention-v0", betta=0.5)
    with pytest.raises(SettingsError, match="takes no mode="):
        gym.make("TextDetox-sparse-v0", mode="prefix")


def test_the_reward_kind_is_read_from_the_spec_and_the_wrapper():
    for reward in ("uniform", "potential", "attention", "occlusion", "critic"):
        env = gym.make(f"TextDetox-{reward}-v0")
        assert gym.spec(f"TextDetox-{reward}-v0").kwargs["reward"] == reward
        assert reward_wrapper(env).reward_name == reward and reward_wrapper(env).mode == "episode"
