"""CachedCritic: hits, misses, LRU eviction, failures that are never cached, and the fault guard.

The wrapped critic is a real AttributionCritic (toxicity BiLSTM) behind a spy that records every call.
"""

from __future__ import annotations

import pytest

from textgym.critics.attribution import AttributionCritic
from textgym.critics.base import Critique
from textgym.critics.cache import CachedCritic, CriticStats

TOXIC = "you are a stupid idiot and I hate you"
CLEAN = "Thanks for the lovely dinner, see you soon."
OTHER = "The bus was late again, so I walked."


@pytest.fixture(scope="module")
def attribution():
    return AttributionCritic("detox")


class Spy:
    """Delegates to a real critic and records each call as (prompts, completions, extrinsic)."""

    def __init__(self, critic, fail_first: int = 0, raise_first: int = 0) -> None:
        self.critic, self.task = critic, critic.task
        self.calls: list[tuple[list[str], list[str], list[float] | None]] = []
        self.version = 0
        self.fail_first, self.raise_first = fail_first, raise_first

    def config_key(self) -> str:
        return f"{self.critic.config_key()}:v{self.version}"

    def critique(self, prompts, completions, extrinsic=None):
        self.calls.append((list(prompts), list(completions), None if extrinsic is None else list(extrinsic)))
        if self.raise_first > 0:  # injected fault: an outage the real critic cannot produce on demand
            self.raise_first -= 1
            raise ConnectionError("critic down")
        if self.fail_first > 0:  # injected fault: a timed-out critique
            self.fail_first -= 1
            return [Critique.failed("timeout: no reply") for _ in completions]
        return self.critic.critique(prompts, completions, extrinsic)

    @property
    def texts(self) -> list[str]:
        return [text for _, completions, _ in self.calls for text in completions]


def test_a_repeated_text_is_a_hit_and_the_critic_is_not_asked_again(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy)
    [first] = cache.critique(["p"], [TOXIC])
    [second] = cache.critique(["p"], [TOXIC])
    assert first.ok and first.spans, "the real critic should flag the toxic text"
    assert second == first == attribution.critique(["p"], [TOXIC])[0]
    assert spy.texts == [TOXIC]
    stats = cache.stats
    assert (stats.requests, stats.hits, stats.calls, stats.texts_sent, stats.failures) == (2, 1, 1, 1, 0)
    assert stats.hit_rate == 0.5 and stats.as_dict()["hit_rate"] == 0.5
    assert cache.config_key() == spy.config_key() and cache.task == "detox"


def test_a_batch_sends_only_the_misses_and_keeps_the_order(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy)
    cache.critique(["p"], [TOXIC])
    results = cache.critique(["p", "p", "q"], [CLEAN, TOXIC, TOXIC])
    assert spy.calls[-1][:2] == (["p", "q"], [CLEAN, TOXIC])  # ("q", TOXIC) is another prompt: a miss
    assert results == attribution.critique(["p", "p", "q"], [CLEAN, TOXIC, TOXIC])
    assert results[0].spans == () and results[1].spans
    assert cache.stats.hits == 1 and cache.stats.requests == 4 and cache.stats.texts_sent == 3
    assert cache.stats.hit_rate == pytest.approx(0.25)


def test_failed_critiques_are_counted_and_not_cached(attribution):
    spy = Spy(attribution, fail_first=1)
    cache = CachedCritic(spy)
    [failed] = cache.critique(["p"], [TOXIC])
    assert not failed.ok and failed.error == "timeout: no reply" and cache.stats.failures == 1
    [retried] = cache.critique(["p"], [TOXIC])
    assert retried.ok and retried.spans and len(spy.calls) == 2  # asked again
    [hit] = cache.critique(["p"], [TOXIC])
    assert hit == retried and len(spy.calls) == 2 and cache.stats.hits == 1 and cache.stats.failures == 1


def test_an_exception_fails_the_whole_batch_without_raising_and_is_not_cached(attribution, caplog):
    spy = Spy(attribution, raise_first=1)
    cache = CachedCritic(spy)
    with caplog.at_level("WARNING", logger="textgym.critics"):
        results = cache.critique(["p", "p"], [TOXIC, CLEAN])
    assert [critique.ok for critique in results] == [False, False]
    assert all(critique.error == "ConnectionError: critic down" for critique in results)
    assert cache.stats.failures == 2 and "critic down" in caplog.text
    assert cache.critique(["p", "p"], [TOXIC, CLEAN]) == attribution.critique(["p", "p"], [TOXIC, CLEAN])
    assert len(spy.calls) == 2 and cache.stats.hits == 0


def test_the_least_recently_used_entry_is_evicted_beyond_max_entries(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy, max_entries=2)
    cache.critique(["p"], [TOXIC])
    cache.critique(["p"], [CLEAN])
    cache.critique(["p"], [TOXIC])  # a hit: TOXIC is now the most recently used
    cache.critique(["p"], [OTHER])  # evicts CLEAN
    assert spy.texts == [TOXIC, CLEAN, OTHER]
    cache.critique(["p"], [TOXIC])  # still cached
    assert spy.texts == [TOXIC, CLEAN, OTHER]
    cache.critique(["p"], [CLEAN])  # was evicted: asked again (and evicts OTHER)
    assert spy.texts == [TOXIC, CLEAN, OTHER, CLEAN]
    cache.critique(["p"], [OTHER])
    assert spy.texts == [TOXIC, CLEAN, OTHER, CLEAN, OTHER]
    assert cache.stats.hits == 2 and cache.stats.hit_rate == pytest.approx(2 / 7)


def test_different_extrinsic_scores_are_different_keys(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy)
    cache.critique(["p"], [TOXIC], [0.1])
    cache.critique(["p"], [TOXIC], [0.2])
    assert [extrinsic for _, _, extrinsic in spy.calls] == [[0.1], [0.2]]
    cache.critique(["p"], [TOXIC], [0.1])
    cache.critique(["p"], [TOXIC], [0.1 + 1e-9])  # the same score to 6 decimals
    assert len(spy.calls) == 2 and cache.stats.hits == 2
    cache.critique(["p"], [TOXIC])  # no score at all is a third key
    assert len(spy.calls) == 3 and spy.calls[-1][2] is None


def test_scored_and_unscored_texts_of_one_batch_go_in_separate_calls(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy)
    results = cache.critique(["p", "p"], [TOXIC, CLEAN], [0.3, None])
    assert sorted(spy.calls, key=lambda call: call[1]) == [
        (["p"], [CLEAN], None),
        (["p"], [TOXIC], [0.3]),
    ]
    assert results == attribution.critique(["p", "p"], [TOXIC, CLEAN])


def test_a_new_config_key_misses(attribution):
    spy = Spy(attribution)
    cache = CachedCritic(spy)
    cache.critique(["p"], [TOXIC])
    spy.version += 1  # e.g. a self-critic whose weights changed
    cache.critique(["p"], [TOXIC])
    assert len(spy.calls) == 2 and cache.stats.hits == 0


def test_no_requests_is_a_hit_rate_of_zero():
    assert CriticStats().hit_rate == 0.0
    assert CriticStats(requests=4, hits=1).as_dict()["hit_rate"] == 0.25


def test_a_critic_that_ignores_the_score_shares_one_entry_across_scores(attribution):
    assert attribution.uses_extrinsic is False
    spy = Spy(attribution)
    spy.uses_extrinsic = False
    cache = CachedCritic(spy)
    cache.critique(["p"], [TOXIC])  # a prefix-mode critique, no score yet
    cache.critique(["p"], [TOXIC], [0.3])  # the final critique of the same text
    cache.critique(["p"], [TOXIC], [0.7])
    assert len(spy.calls) == 1 and cache.stats.hits == 2
