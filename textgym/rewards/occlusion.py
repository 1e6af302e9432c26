"""Occlusion (leave-one-out) credit: each clause is paid the drop in the task's score when it is removed.

Formula: for a completion with score ``S`` and clauses ``c`` (see :func:`textgym.critics.segmentation.clauses`;
or tokens, with ``unit="token"``), the drop is ``d_c = S - score(completion without c)``. Each token of clause
``c`` gets ``d_c / n_c`` (``n_c`` tokens overlap the clause; a token is counted in the first clause it overlaps),
and the remainder ``S - sum_c d_c`` is spread evenly over all ``n`` tokens, so the shares sum to ``S``: the
renormalisation is additive, which stays finite when the drops cancel (a multiplicative rescaling by
``S / sum d`` explodes as the sum nears 0) and falls back to uniform credit when the scorer reacts to no clause.

The leave-one-out attribution of feature-occlusion saliency (Zeiler and Fergus 2014; for text, Li, Monroe and
Jurafsky 2016, "Understanding neural networks through representation erasure"), used here as a reward
redistribution. The return is the sparse one, so with a discount of 1 the optimal policy is kept. Cost: one scorer
call per clause (or token) per episode, batched over the episodes that end on a step; cached. Episode mode only.
"""

from __future__ import annotations

import numpy as np

from textgym.critics.segmentation import clauses
from textgym.error import unknown_name
from textgym.rewards.base import DenseReward, EnvSettings, EpisodeState, StepPayment

UNITS = ("clause", "token")


class OcclusionReward(DenseReward):
    """Each clause's (or token's) leave-one-out drop in the score, renormalised to sum to the score.

    Args:
        settings: The env's settings (its scorer judges the occluded texts).
        mode: ``"episode"``.
        unit: ``"clause"`` or ``"token"`` (one scorer call per token: costlier, finer).
    """

    name = "occlusion"
    summary = "Dense: each clause paid the score's drop when it is left out."
    modes = ("episode",)

    def __init__(self, settings: EnvSettings, mode: str = "episode", unit: str = "clause") -> None:
        super().__init__(settings, mode)
        if unit not in UNITS:
            raise unknown_name("occlusion unit", unit, UNITS)
        self.unit = unit
        self.scorer = settings.get_scorer()

    def config_key(self) -> str:
        """Scorer and placement (an occluded text's score does not depend on the unit)."""
        s = self.settings
        return f"Occlusion:{s.task}:{s.scorer}:{sorted((s.scorer_kwargs or {}).items())}:{s.device}/{s.dtype}"

    def evaluate(self, queries):
        """The scorer on each (item, occluded text), in one batch."""
        return self.scorer([item for item, _ in queries], [text for _, text in queries])

    def pieces(self, state: EpisodeState) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
        """The completion, its tokens' character ranges and the ranges of the units to occlude."""
        text = self.text(state.tokens)
        ranges = self.token_ranges(state.tokens)
        units = clauses(text) if self.unit == "clause" else [(a, b) for a, b in ranges if text[a:b].strip()]
        return text, ranges, units

    def queries(self, state: EpisodeState, done: bool, extrinsic: float) -> list:
        """At the end, the completion without each unit."""
        if not done:
            return []
        text, ranges, units = self.pieces(state)
        state.memo["pieces"] = (ranges, units)
        return [(state.item, text[:start] + text[end:]) for start, end in units]

    def settle(self, state: EpisodeState, answers: list, done: bool, extrinsic: float) -> StepPayment:
        """At the end, each unit's drop over its tokens plus an even share of the remainder."""
        if not done:
            return StepPayment(0.0)
        ranges, units = state.memo["pieces"]
        n = len(state.tokens)
        shares = np.zeros(n)
        owner = [next((u for u, (a, b) in enumerate(units) if s < e and s < b and a < e), None) for s, e in ranges]
        for unit, occluded in enumerate(answers):
            members = [t for t, o in enumerate(owner) if o == unit]
            if members:  # a unit with no token of its own (cannot happen for clauses of this text) pays nothing
                shares[members] += (extrinsic - occluded) / len(members)
        shares += (extrinsic - shares.sum()) / n
        return StepPayment(extrinsic, shares)
