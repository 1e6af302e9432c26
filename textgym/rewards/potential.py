"""Potential-based shaping with the task's own scorer as the potential.

Formula (Ng, Harada and Russell 1999, "Policy invariance under reward transformations"): the shaped reward of a
step from state ``s`` to ``s'`` is ``r + F(s, s')`` with ``F = gamma * Phi(s') - Phi(s)``, where ``r`` is the
env's sparse reward (the score on the last step) and ``Phi(s)`` is the task's scorer on the completion so far,
evaluated at the prefixes that end at a clause boundary (the critic's prefix-mode boundaries: a token ending in
``. ! ? ; : ,`` or a line break) and held between them: ``Phi(s)`` is the score of the longest boundary-ending
prefix of ``s``'s completion, the empty one included, which is a function of the state as the theory requires.
The terminal state's potential is 0 (the episode ends there), so the last step pays ``score - Phi(s_{T-1})``.

What it keeps: for any ``gamma``, shaping of this form leaves the optimal policy unchanged. With ``gamma = 1``
(textgym's agents' default) the return telescopes to ``score - Phi(empty completion)``: the sparse return minus a
per-prompt constant (the scorer's verdict on the prompt alone, e.g. how positive the opening already reads), which
a value baseline absorbs. With ``gamma < 1`` the discounted return differs from the sparse one by the same
constant, and every step between boundaries pays ``(gamma - 1) * Phi``; pass the agent's discount as ``gamma``.

Modes: ``prefix`` pays ``F`` online on every step; ``episode`` computes the same payments in hindsight and pays
their sum on the last step, with each step's payment in ``info["token_rewards"]``: the two give the same return.
Cost: ``1 + b`` scorer calls per episode (the empty prefix and the ``b`` boundaries before the last token), in
the batches the wrapper makes; cached.
"""

from __future__ import annotations

import numpy as np

from textgym.critics.segmentation import is_boundary
from textgym.rewards.base import DenseReward, EnvSettings, EpisodeState, RewardUnavailable, StepPayment


class PotentialReward(DenseReward):
    """Shaping by the change of the scorer's verdict on the prefix (see the module docstring).

    Args:
        settings: The env's settings (its scorer is the potential).
        mode: ``"prefix"`` (online) or ``"episode"`` (hindsight).
        gamma: The discount of the agent that learns from it, in (0, 1].
    """

    name = "potential"
    summary = "Dense: potential-based shaping by the scorer on each prefix."
    modes = ("episode", "prefix")

    def __init__(self, settings: EnvSettings, mode: str = "episode", gamma: float = 1.0) -> None:
        super().__init__(settings, mode)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must lie in (0, 1], got {gamma!r}.")
        self.gamma = float(gamma)
        self.scorer = settings.get_scorer()

    def config_key(self) -> str:
        """Scorer and placement; the potential of a prefix does not depend on mode or gamma."""
        s = self.settings
        return f"Potential:{s.task}:{s.scorer}:{sorted((s.scorer_kwargs or {}).items())}:{s.device}/{s.dtype}"

    def evaluate(self, queries):
        """The scorer on each (item, prefix), in one batch."""
        return self.scorer([item for item, _ in queries], [text for _, text in queries])

    def queries(self, state: EpisodeState, done: bool, extrinsic: float) -> list:
        """The prefixes to score: the empty one and those at boundaries (online in prefix mode, all at the end)."""
        if self.mode == "episode":
            if not done:
                return []
            texts = [self.text(state.tokens[: t + 1]) for t in range(len(state.tokens) - 1)]
            state.memo["boundaries"] = [t for t, text in enumerate(texts) if is_boundary(text)]
            return [(state.item, ""), *((state.item, texts[t]) for t in state.memo["boundaries"])]
        queries = [(state.item, "")] if len(state.tokens) == 1 else []
        if not done:
            text = self.text(state.tokens)
            if is_boundary(text):
                queries.append((state.item, text))
        return queries

    def settle(self, state: EpisodeState, answers: list, done: bool, extrinsic: float) -> StepPayment:
        """Pays ``gamma * Phi(s') - Phi(s)`` (``score - Phi(s)`` at the end)."""
        if self.mode == "episode":
            return self._settle_episode(state, answers, extrinsic) if done else StepPayment(0.0)
        memo = state.memo
        if len(state.tokens) == 1:
            memo["phi"] = answers.pop(0)  # None when it failed: no potential to shape from
        if memo["phi"] is None:
            if done:
                raise RewardUnavailable("the empty prefix's potential failed")
            return StepPayment(0.0)
        if done:
            reward = extrinsic - memo["phi"]
            return StepPayment(reward, np.array([*state.payments, reward]))
        following = answers[0] if answers and answers[0] is not None else memo["phi"]
        reward = self.gamma * following - memo["phi"]
        memo["phi"] = following
        return StepPayment(reward)

    def _settle_episode(self, state: EpisodeState, answers: list, extrinsic: float) -> StepPayment:
        boundary_value = dict(zip(state.memo["boundaries"], answers[1:], strict=True))
        phi = answers[0]
        payments = []
        for t in range(len(state.tokens) - 1):
            following = boundary_value.get(t, phi)
            payments.append(self.gamma * following - phi)
            phi = following
        payments.append(extrinsic - phi)
        return StepPayment(float(np.sum(payments)), np.array(payments))
