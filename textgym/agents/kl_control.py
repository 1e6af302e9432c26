"""How far the policy may move: the KL-penalty coefficient, and the trust region that bounds each update.

:class:`KLController` sets the coefficient of the per-token KL penalty to the reference (fixed or adaptive);
:class:`StepGuard` keeps each update within ``max_update_kl`` of the rollout policy by undoing optimizer steps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from textgym.agents.lm_agent import LMAgent
    from textgym.agents.lm_rollout import Batch

log = logging.getLogger(__name__)


class KLController:
    """The KL-penalty coefficient: fixed, or adaptive after Ziegler et al. (2019).

    The adaptive form moves the coefficient towards a target per-episode KL: after each batch of ``n`` episodes
    with mean KL ``k``, ``coef *= 1 + clip(k / target - 1, -0.2, 0.2) * n / horizon``. Ziegler et al. used a
    horizon of 10,000 episodes in runs of millions; textgym's default horizon is a tenth of the run's episodes
    (at least one batch), so over a run the coefficient can change by a factor of up to about e^2 either way.
    """

    def __init__(self, coef: float, target: float | None, horizon: int | None, batch: int, iterations: int) -> None:
        self.coef, self.target, self.batch = coef, target, batch
        self.horizon = horizon if horizon is not None else max(batch, batch * iterations // 10)

    def update(self, kl_per_episode: float) -> float:
        """Moves the coefficient after a batch whose mean per-episode KL was ``kl_per_episode``; returns it."""
        if self.target is not None:
            error = float(np.clip(kl_per_episode / self.target - 1, -0.2, 0.2))
            self.coef *= 1 + error * self.batch / self.horizon
        return self.coef


class StepGuard:
    """Keeps each update within ``bound`` nats per token (approximate KL) of the rollout policy, by undoing steps.

    Steps are taken while the KL measured before each minibatch's step (from that minibatch's own forward pass,
    which the step needs anyway) stays within the bound; when one passes it, the last step is undone and the update
    stops. After the update the KL over the whole batch is measured: if it passes the bound the last step is
    undone, and if it still does, the whole update. So no update ends outside the bound, however large the
    learning rate; a run whose steps are often undone (``ppo/undone_steps``) has too large a learning rate. Adam's
    moment estimates keep the undone steps' gradients. Costs: a copy of the trainable weights (and of their
    float32 master weights, in bfloat16) before each step.
    """

    def __init__(self, agent: LMAgent, bound: float | None) -> None:
        self.agent, self.bound = agent, bound
        self.params = [p for p in agent.policy.parameters() if p.requires_grad]
        self.params += getattr(agent.optimizer, "master_weights", [])  # an undo restores the masters too
        self.start = self._copy() if bound is not None else None
        self.before_last: list[torch.Tensor] | None = None
        self.steps = self.undone = 0

    def _copy(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def _restore(self, copy: list[torch.Tensor]) -> None:
        for parameter, saved in zip(self.params, copy, strict=True):
            parameter.copy_(saved)

    def _kl(self, batch: Batch, old_logprobs: torch.Tensor) -> float:
        """The KL of the current weights from the rollout policy over the batch.

        With no step left (none taken, or all undone) the weights are the start's, the policy ``old_logprobs`` came
        from (the same forward pass on the same weights): the KL is 0 and is not measured.
        """
        return self.agent.post_update_kl(batch, old_logprobs) if self.steps else 0.0

    def exceeded(self, kl: float) -> bool:
        """Whether ``kl`` passes the bound."""
        return self.bound is not None and kl > self.bound

    def before_step(self) -> None:
        """Call just before each optimizer step."""
        if self.bound is not None:
            self.before_last = self.start if self.steps == 0 else self._copy()
        self.steps += 1

    def undo_last(self) -> None:
        """Restores the weights from before the last step."""
        if self.before_last is not None and self.steps:
            self._restore(self.before_last)
            self.before_last = None
            self.steps -= 1
            self.undone += 1

    def finish(self, batch: Batch, old_logprobs: torch.Tensor) -> float:
        """The KL over the whole batch after the update, within the bound (undoing steps where needed)."""
        kl = self._kl(batch, old_logprobs)
        if self.exceeded(kl) and self.before_last is not None:
            self.undo_last()
            kl = self._kl(batch, old_logprobs)
        if self.exceeded(kl):
            self._restore(self.start)
            self.undone += self.steps
            self.steps = 0
            kl = self._kl(batch, old_logprobs)
        if self.steps == 0 and self.undone:
            log.warning(
                "Every step of this update left the trust region (max_update_kl=%g) and was undone: the policy did "
                "not move. Lower the learning rate (or raise max_update_kl).",
                self.bound,
            )
        return kl
