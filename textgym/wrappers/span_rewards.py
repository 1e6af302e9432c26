"""The reward arithmetic shared by the single and vector critic wrappers: per-episode span-reward bookkeeping."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textgym.critics.alignment import span_token_rewards, token_char_ranges
from textgym.critics.base import Critique
from textgym.critics.cache import CachedCritic
from textgym.critics.registry import MODEL_CRITIC_TYPES, build_critic, critic_config
from textgym.critics.segmentation import is_boundary
from textgym.error import unknown_name

log = logging.getLogger("textgym.critics")

MODES = ("episode", "prefix")
LABEL_REWARDS: dict[str, dict[str, float]] = {
    "sentiment": {"positive": 0.5, "negative": -0.5},
    "detox": {"toxic": -0.5},
    "summarize": {"incorrect": -0.5, "irrelevant": -0.5, "incoherent": -0.5},
}
"""Per-token reward of each span label (the RELC paper's values)."""
DEFAULT_REWARDS = {"sentiment": 0.0, "detox": 0.0, "summarize": 0.5}
"""Per-token reward of tokens that no span covers (+0.5 for summaries, as in the paper)."""

_CACHED: dict[int, CachedCritic] = {}


def cached(critic) -> CachedCritic:
    """One cache per critic object per process, shared by every environment that uses the critic."""
    if isinstance(critic, CachedCritic):
        return critic
    if id(critic) not in _CACHED:
        _CACHED[id(critic)] = CachedCritic(critic)
    return _CACHED[id(critic)]


def resolve_critic(
    task: str,
    critic: Any,
    critic_kwargs: dict[str, Any] | None,
    policy_model: str,
    device: str = "cpu",
    dtype: str = "float32",
) -> CachedCritic:
    """Builds a critic from a spec, or takes a critic object as it is; cached.

    A ``"self"`` critic judges with ``policy_model``. A critic that runs a local model (see
    :data:`~textgym.critics.registry.MODEL_CRITIC_TYPES`) gets ``device`` and ``dtype`` (the environment's) unless
    its spec or ``critic_kwargs`` set their own.
    """
    if not isinstance(critic, (str, dict)):
        return cached(critic)
    critic_kwargs = dict(critic_kwargs or {})
    if critic == "self" and "model" not in critic_kwargs:
        critic_kwargs["model"] = policy_model
    config = critic_config(task, critic, **critic_kwargs)
    if config["type"] in MODEL_CRITIC_TYPES:
        config = {"device": device, "dtype": dtype, **config}
    return cached(build_critic(task, config))


@dataclass(frozen=True)
class RewardRules:
    """How spans become per-token rewards (see ``CriticRewardWrapper``)."""

    mode: str
    label_rewards: dict[str, float]
    default_reward: float
    span_weight: float = 1.0
    extrinsic_weight: float = 1.0

    @classmethod
    def for_task(
        cls,
        task: str,
        mode: str = "episode",
        label_rewards: dict[str, float] | None = None,
        default_reward: float | None = None,
        span_weight: float = 1.0,
        extrinsic_weight: float = 1.0,
    ) -> RewardRules:
        """The task's defaults, with any value the user set."""
        if mode not in MODES:
            raise unknown_name("mode", mode, MODES)
        return cls(
            mode,
            dict(LABEL_REWARDS[task] if label_rewards is None else label_rewards),
            DEFAULT_REWARDS[task] if default_reward is None else default_reward,
            span_weight,
            extrinsic_weight,
        )


@dataclass
class EpisodeSpanRewards:
    """One episode's tokens, the span rewards paid so far, and whether the critic failed in it."""

    rules: RewardRules
    tokenizer: Any
    source: str = ""
    tokens: list[int] = field(default_factory=list)
    paid: float = 0.0
    fallback: bool = False

    def start(self, source: str) -> None:
        """Starts a new episode on a prompt source."""
        self.source, self.tokens, self.paid, self.fallback = source, [], 0.0, False

    def due(self, token: int, done: bool, completion: str | None = None) -> str | None:
        """Records a token; returns the text to critique now (the completion at the end, a prefix at a boundary)."""
        self.tokens.append(token)
        if done:
            return completion if completion is not None else self._text()
        if self.rules.mode == "episode":
            return None
        text = self._text()
        return text if is_boundary(text) else None

    def settle(
        self, critique: Critique, done: bool, extrinsic: float = 0.0, info: dict[str, Any] | None = None
    ) -> tuple[float, dict[str, Any]]:
        """The reward to add at this step for a critique, and (at the end) the info to add."""
        if not critique.ok:
            self.fallback = True
            log.warning("Critic failed (%s); this episode falls back to the extrinsic reward.", critique.error)
        token_rewards = self.span_rewards(critique)
        total = float(token_rewards.sum())
        if not done:
            step_reward = total - self.paid if critique.ok else 0.0
            self.paid += step_reward
            return step_reward, {}
        token_rewards[-1] += self.rules.extrinsic_weight * extrinsic
        reward = total - self.paid  # a failed final critique (total 0) takes back what prefixes paid
        extra = {
            "token_rewards": tuple(token_rewards.tolist()),  # a tuple: lengths differ, so vector infos hold objects
            "critic_reward": total,
            "critic_spans": [(span.start, span.end, span.label) for span in critique.spans],
            "critic_fallback": self.fallback,
            "critic_error": critique.error,
        }
        return reward, extra

    def span_rewards(self, critique: Critique) -> np.ndarray:
        """Per-token span rewards of the tokens so far (zeros for a failed critique)."""
        if not critique.ok:
            return np.zeros(len(self.tokens))
        ranges = token_char_ranges(self.tokenizer, self.tokens)
        rules = self.rules
        return rules.span_weight * span_token_rewards(ranges, critique.spans, rules.label_rewards, rules.default_reward)

    def _text(self) -> str:
        return self.tokenizer.decode(self.tokens, skip_special_tokens=True)
