"""RELC's span rewards: a critic language model marks good and bad spans, each token is paid its span's reward.

Formula (Cao et al. 2024, "Enhancing Reinforcement Learning with Dense Rewards from Language Model Critic",
RELC): the critic marks labelled character spans of the completion; token ``t`` gets ``span_weight * sum of
label_rewards[label]`` over the labels of the spans its characters overlap (a token is covered when its characters
overlap the span, and only then), or ``span_weight * default_reward`` when no span covers it. The last token also
gets ``extrinsic_weight * extrinsic score``. Defaults (the paper's, declared by each task): sentiment +0.5
positive / -0.5 negative; detox -0.5 toxic; summaries -0.5 for each flagged token, +0.5 elsewhere.

What it keeps: nothing, in general: the span rewards are added to the return (their sum is ``critic_reward``), so
the optimum moves towards what the critic likes; that is the method's point (a critic that knows more than the
scorer), and its risk (reward hacking of the critic). Cost: one critique per episode in ``episode`` mode; one per
clause boundary and one at the end in ``prefix`` mode (see ``benchmarks/results/critic_calls_per_episode.md``),
each a local model's forward passes or a server request; cached (:class:`~textgym.critics.cache.CachedCritic`).

Modes: ``episode`` critiques the finished text; ``prefix`` critiques the prefix at clause boundaries and pays the
change of the critique's total, and at the end the final critique's total: the return equals ``episode`` mode's.
Faults keep the critic's own info keys as before: ``critic_fallback``, ``critic_error``, ``critic_stats``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textgym.critics.alignment import span_token_rewards
from textgym.critics.base import Critique
from textgym.critics.cache import CachedCritic
from textgym.critics.registry import MODEL_CRITIC_TYPES, build_critic, critic_config
from textgym.critics.segmentation import is_boundary
from textgym.rewards.base import DenseReward, EnvSettings, EpisodeState, Failure, StepPayment
from textgym.tasks import get_task

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


class CriticReward(DenseReward):
    """A critic's span rewards plus the weighted extrinsic score (see the module docstring).

    Args:
        settings: The env's settings.
        mode: ``"episode"`` or ``"prefix"``.
        critic: A critic spec (see :func:`textgym.critics.registry.critic_config`) or a critic object.
        label_rewards: Per-token reward per label (the task's when None).
        default_reward: Per-token reward of uncovered tokens (the task's when None).
        span_weight: Multiplies every span reward.
        extrinsic_weight: Multiplies the extrinsic reward.
        critic_kwargs: Arguments of the critic. A critic that runs a local model gets the environment's
            ``device`` and ``dtype`` unless these set their own.
    """

    name = "critic"
    summary = "Dense: a critic's span rewards added to the score (RELC)."
    modes = ("episode", "prefix")
    cache_answers = False  # the CachedCritic keeps critiques (and its own stats), shared across envs

    def __init__(
        self,
        settings: EnvSettings,
        mode: str = "episode",
        critic: Any = "default",
        label_rewards: dict[str, float] | None = None,
        default_reward: float | None = None,
        span_weight: float = 1.0,
        extrinsic_weight: float = 1.0,
        critic_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(settings, mode)
        task = get_task(settings.task)
        self.label_rewards = dict(task.label_rewards if label_rewards is None else label_rewards)
        self.default_reward = task.default_reward if default_reward is None else default_reward
        self.span_weight, self.extrinsic_weight = span_weight, extrinsic_weight
        s = settings
        self.critic = resolve_critic(s.task, critic, critic_kwargs, s.model_name, s.device, s.dtype)

    def queries(self, state: EpisodeState, done: bool, extrinsic: float) -> list:
        """The completion at the end; in prefix mode, the prefix at each clause boundary."""
        if done:
            return [(state.source, self.text(state.tokens), extrinsic)]
        if self.mode == "episode":
            return []
        text = self.text(state.tokens)
        return [(state.source, text, None)] if is_boundary(text) else []  # None: the cache keeps prefixes apart

    def evaluate(self, queries):
        """Critiques every queried text in one call to the cached critic; a failed critique is a Failure."""
        critiques = self.critic.critique([q[0] for q in queries], [q[1] for q in queries], [q[2] for q in queries])
        return [c if c.ok else Failure(c.error or "the critique failed") for c in critiques]

    def span_rewards(self, tokens: list[int], critique: Critique) -> np.ndarray:
        """Per-token span rewards of ``tokens`` for a critique."""
        ranges = self.token_ranges(tokens)
        return self.span_weight * span_token_rewards(ranges, critique.spans, self.label_rewards, self.default_reward)

    def settle(self, state: EpisodeState, answers: list, done: bool, extrinsic: float) -> StepPayment:
        """A prefix's critique pays the change of its total; the final one the rest, with the extrinsic part."""
        critique = answers[0] if answers else None
        if not done:
            if critique is None:
                return StepPayment(0.0)
            return StepPayment(float(self.span_rewards(state.tokens, critique).sum()) - state.paid)
        shares = self.span_rewards(state.tokens, critique)
        state.memo["critique"] = critique
        shares[-1] += self.extrinsic_weight * extrinsic
        return StepPayment(float(shares.sum()) - state.paid, shares)

    def extrinsic_part(self, extrinsic: float) -> float:
        """The weighted extrinsic reward."""
        return self.extrinsic_weight * extrinsic

    def final_info(self, state: EpisodeState, extrinsic: float) -> dict[str, Any]:
        """The critic's own keys, as the CriticRewardWrapper has always given them."""
        critique = state.memo.get("critique") if state.error is None else None
        spans = critique.spans if critique is not None else ()
        return {
            "critic_reward": state.paid - self.extrinsic_part(extrinsic),
            "critic_spans": [(span.start, span.end, span.label) for span in spans],
            "critic_fallback": state.fallback,
            "critic_error": state.error,
            "critic_stats": self.critic.stats.as_dict(),
        }
