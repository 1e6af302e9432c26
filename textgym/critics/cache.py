"""A critique cache, and the guard that keeps a failing critic from crashing an environment.

:class:`CachedCritic` wraps any critic: critiques are kept by (critic config, prompt, completion, extrinsic score),
so a repeated text costs nothing (the score is left out of the key for critics whose ``uses_extrinsic`` is
False, so in ``prefix`` mode a text that ends with punctuation and then EOS is critiqued once); only successful
critiques are kept. It also turns any exception the critic
raises into failed critiques for that batch, counted and logged, so a critic bug or outage never crashes a
training run. ``stats`` holds the counts that the wrappers report in ``info`` and logs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from textgym.critics.base import Critic, Critique

log = logging.getLogger("textgym.critics")


@dataclass
class CriticStats:
    """Counts of a cached critic's work.

    Attributes:
        requests: Texts asked for.
        hits: Texts answered from the cache.
        calls: Batched calls made to the critic.
        texts_sent: Texts sent to the critic.
        failures: Texts whose critique failed (critic error, timeout, garbage reply).
        dropped_spans: Spans the critic named that could not be located.
    """

    requests: int = 0
    hits: int = 0
    calls: int = 0
    texts_sent: int = 0
    failures: int = 0
    dropped_spans: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of requests answered from the cache."""
        return self.hits / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counts and the hit rate."""
        return {**asdict(self), "hit_rate": self.hit_rate}


class CachedCritic:
    """A critic with a cache and a fault guard; it is itself a critic.

    Args:
        critic: The critic to wrap.
        max_entries: Least recently used critiques beyond this are forgotten.
    """

    def __init__(self, critic: Critic, max_entries: int = 100_000) -> None:
        self.critic = critic
        self.task = critic.task
        self.max_entries = max_entries
        self.stats = CriticStats()
        self._cache: OrderedDict[tuple, Critique] = OrderedDict()

    def config_key(self) -> str:
        """The wrapped critic's key."""
        return self.critic.config_key()

    def critique(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        extrinsic: Sequence[float | None] | None = None,
    ) -> list[Critique]:
        """Answers from the cache where it can and sends the rest to the critic in one batch.

        ``extrinsic`` may mix scores and ``None``: scored and unscored texts then go in two calls.
        """
        config = self.critic.config_key()  # read per call: a live self-critic's key changes with its weights
        scores = list(extrinsic) if extrinsic is not None else [None] * len(completions)
        if not getattr(self.critic, "uses_extrinsic", True):  # then a prefix and a final text share one entry
            scores = [None] * len(completions)
        keys = [
            (config, prompt, text, None if score is None else round(float(score), 6))
            for prompt, text, score in zip(prompts, completions, scores, strict=True)
        ]
        self.stats.requests += len(keys)
        results: list[Critique | None] = []
        for key in keys:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.stats.hits += 1
            results.append(hit)
        missing = [index for index, result in enumerate(results) if result is None]
        # Texts with an extrinsic score and texts without (prefixes) go in separate calls, so each text is judged
        # exactly as it would be alone.
        for group in ([i for i in missing if scores[i] is not None], [i for i in missing if scores[i] is None]):
            if not group:
                continue
            fresh = self._ask([prompts[i] for i in group], [completions[i] for i in group], [scores[i] for i in group])
            for index, critique in zip(group, fresh, strict=True):
                results[index] = critique
                if critique.ok:
                    self._store(keys[index], critique)
        return results  # type: ignore[return-value]

    def _ask(self, prompts: list[str], completions: list[str], scores: list) -> list[Critique]:
        self.stats.calls += 1
        self.stats.texts_sent += len(completions)
        extrinsic = None if scores[0] is None else scores
        try:
            critiques = list(self.critic.critique(prompts, completions, extrinsic))
            if len(critiques) != len(completions):
                raise ValueError(f"the critic returned {len(critiques)} critiques for {len(completions)} texts")
            wrong = [type(critique).__name__ for critique in critiques if not isinstance(critique, Critique)]
            if wrong:
                raise TypeError(f"the critic returned {wrong[0]} where a Critique belongs")
        except Exception as error:  # a critic bug or outage must not crash the environment
            log.warning("Critic %s failed on a batch of %d: %s", type(self.critic).__name__, len(completions), error)
            critiques = [Critique.failed(f"{type(error).__name__}: {error}") for _ in completions]
        for critique in critiques:
            self.stats.failures += not critique.ok
            self.stats.dropped_spans += critique.dropped
        return critiques

    def _store(self, key: tuple, critique: Critique) -> None:
        self._cache[key] = critique
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
