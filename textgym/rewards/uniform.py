"""Uniform credit: the extrinsic score spread evenly over the completion's tokens.

Formula: every token of a completion of ``n`` tokens gets ``score / n``; the return is the score, unchanged.

The baseline of Chan et al. 2024 ("Dense Reward for Free in Reinforcement Learning from Human Feedback",
arXiv 2402.00782): it moves no credit between tokens, it only removes the delay. With a discount of 1 the return is
the sparse one, so the optimal policy is kept; with a discount below 1 it is not (early tokens gain weight). Cost:
no scorer or critic call beyond the env's own score. Episode mode only: ``n`` is known at the end.
"""

from __future__ import annotations

import numpy as np

from textgym.rewards.base import DenseReward, EpisodeState, StepPayment


class UniformReward(DenseReward):
    """The score divided evenly between the completion's tokens (see the module docstring)."""

    name = "uniform"
    summary = "Dense: the score spread evenly over the tokens."
    modes = ("episode",)

    def settle(self, state: EpisodeState, answers: list, done: bool, extrinsic: float) -> StepPayment:
        """0 before the end; at the end the score, shared evenly."""
        if not done:
            return StepPayment(0.0)
        return StepPayment(extrinsic, np.full(len(state.tokens), extrinsic / len(state.tokens)))
