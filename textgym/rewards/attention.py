"""Attention-based credit: the score shared out by where the scorer looks.

Formula (Chan et al. 2024, "Dense Reward for Free in Reinforcement Learning from Human Feedback", arXiv
2402.00782): with score ``S`` and ``a_t >= 0`` the share of the scorer's attention from its final position that
falls on completion token ``t`` (``sum_t a_t = 1``), token ``t`` gets ``beta * S * a_t`` and the last token also
keeps ``(1 - beta) * S``. The shares sum to ``S``: the return is the sparse one, so with a discount of 1 the
optimal policy is kept (the paper's argument: the redistribution is a potential-based shaping in disguise).

Where the attention comes from is the task's scorer's ``attribution`` (see :mod:`textgym.tasks`): the sentiment
LM judge's last-layer attention from the position that predicts the label, averaged over heads; a transformers
classifier's from its pooled position; for summaries the MiniLM encoder's attention from its [CLS] position; the
toxicity BiLSTM has no attention, so it stands in with gradient x input saliency of the same shape (a weight per
input token, normalised over the completion). The scorer's tokens are mapped to the policy's tokens by their
characters: a policy token gets the weight of the characters it covers. When the scorer gives the completion no
weight at all, the shares are uniform. Cost: one attribution pass of the scorer (a forward, or a forward and a
backward for the BiLSTM) per episode, batched; cached. Episode mode only.
"""

from __future__ import annotations

import numpy as np

from textgym.error import SettingsError
from textgym.rewards.base import DenseReward, EnvSettings, EpisodeState, StepPayment


class AttentionReward(DenseReward):
    """``(1 - beta)`` of the score on the last token, ``beta`` of it by the scorer's attention.

    Args:
        settings: The env's settings (its scorer gives the attention).
        mode: ``"episode"``.
        beta: The share of the score spread by attention, in [0, 1] (the paper treats it as a tuned knob; 0.8 is
            this library's default, chosen without a sweep; 0 gives the sparse reward).
    """

    name = "attention"
    summary = "Dense: the score shared out by the scorer's attention (or saliency)."
    modes = ("episode",)

    def __init__(self, settings: EnvSettings, mode: str = "episode", beta: float = 0.8) -> None:
        super().__init__(settings, mode)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {beta!r}.")
        self.beta = float(beta)
        scorer = settings.get_scorer()
        if not callable(getattr(scorer, "attribution", None)):
            raise SettingsError(
                f"The {settings.task} scorer {settings.scorer or '(default)'!r} gives no attribution, which the "
                "attention reward needs: use the task's default scorer, or a reward that needs only scores "
                "(uniform, potential, occlusion)."
            )
        self.scorer = scorer

    def config_key(self) -> str:
        """Scorer and placement (the attention does not depend on beta)."""
        s = self.settings
        return f"Attention:{s.task}:{s.scorer}:{sorted((s.scorer_kwargs or {}).items())}:{s.device}/{s.dtype}"

    def evaluate(self, queries):
        """Per-character attention weights over each completion, in one batch."""
        return self.scorer.attribution([item for item, _ in queries], [text for _, text in queries])

    def queries(self, state: EpisodeState, done: bool, extrinsic: float) -> list:
        """At the end, the completion."""
        return [(state.item, self.text(state.tokens))] if done else []

    def token_weights(self, tokens: list[int], char_weights: np.ndarray) -> np.ndarray:
        """Each policy token's share of the per-character weights (uniform when they are all 0)."""
        ranges = self.token_ranges(tokens)
        weights = np.array([float(np.sum(char_weights[start:end])) for start, end in ranges])
        total = weights.sum()
        return weights / total if total > 0 else np.full(len(tokens), 1.0 / len(tokens))

    def settle(self, state: EpisodeState, answers: list, done: bool, extrinsic: float) -> StepPayment:
        """At the end, ``beta * S * a_t`` each and ``(1 - beta) * S`` more on the last token."""
        if not done:
            return StepPayment(0.0)
        shares = self.beta * extrinsic * self.token_weights(state.tokens, np.asarray(answers[0], dtype=np.float64))
        shares[-1] += (1.0 - self.beta) * extrinsic
        return StepPayment(extrinsic, shares)
