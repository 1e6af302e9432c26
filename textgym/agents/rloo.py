"""RLOO: REINFORCE with a leave-one-out baseline, a simple policy-gradient baseline for LM-PPO.

After Kool et al. 2019 and Ahmadian et al. 2024.
Each batch holds ``num_envs / samples_per_prompt`` prompts with ``samples_per_prompt`` completions each. Each
token's reward is the environment's minus ``kl_coef`` times its KL estimate to the reference; an episode's return
is their sum and its advantage is its return minus the mean return of the *other* completions of the same prompt
(``credit="sequence"``, the published form), or, with ``credit="returns-to-go"``, each token's sum of rewards from
it on minus that baseline, so dense rewards reach the tokens that earned them (see :mod:`textgym.agents.group`).
One gradient step per batch raises each token's log-probability in proportion to its advantage. The policy's
log-probabilities come from the same forward pass as the step (one pass of the layers above the shared trunk, and
one of the reference's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textgym.agents.group import GroupAgent, group_advantages, group_setting_errors
from textgym.agents.lm_agent import LMAgentConfig, finite
from textgym.agents.lm_rollout import Batch


@dataclass
class RLOOConfig(LMAgentConfig):
    """RLOO's settings (see :class:`LMAgentConfig` for the common ones).

    Attributes:
        samples_per_prompt: Completions per prompt (at least 2; must divide ``num_envs``).
        credit: sequence (each completion's return for all its tokens) or returns-to-go (each token's rewards
            from it on; the same under sparse rewards).
    """

    samples_per_prompt: int = 4
    credit: str = "sequence"

    def __post_init__(self) -> None:
        super().__post_init__()
        failed = group_setting_errors(self)
        if failed:
            from textgym.error import SettingsError

            raise SettingsError(f"Invalid settings: need {'; '.join(failed)}.")


def leave_one_out_advantages(returns: torch.Tensor, group: int) -> torch.Tensor:
    """Each return minus the mean of the other returns of its group (consecutive blocks of ``group``)."""
    blocks = returns.view(-1, group)
    others = (blocks.sum(1, keepdim=True) - blocks) / (group - 1)
    return (blocks - others).reshape(-1)


class RLOO(GroupAgent):
    """The RLOO agent; :meth:`step` runs one iteration."""

    config: RLOOConfig

    def update(self, batch: Batch) -> dict[str, float]:
        """One REINFORCE step with leave-one-out advantages (undone if it leaves the trust region)."""
        c = self.config
        valid = batch.valid
        ref = self.ref_logprobs(batch)
        record: dict[str, torch.Tensor] = {}

        def loss_of(mb: Batch, index: torch.Tensor):
            logits, _ = self.forward(mb)
            logprobs = self.logprobs(mb, logits) * valid
            with torch.no_grad():
                kl = (logprobs - ref) * valid
                rewards = (batch.rewards - self.kl_coef * kl) * valid
                advantages = group_advantages(rewards, valid, c.samples_per_prompt, c.credit, leave_one_out=True)
                record.update(kl=kl, advantages=advantages)
            loss = -(advantages * logprobs).sum(1).mean()
            return loss, logprobs, {"loss/policy": finite(loss.item()), "ppo/approx_kl": 0.0}

        out = self.minibatch_steps(batch, None, loss_of, epochs=1, minibatches=1, shuffle=False)
        kl_per_episode = float(record["kl"].sum(1).mean())
        self.update_kl_coef(kl_per_episode)
        out.update(
            {
                "rloo/advantage_std": float(record["advantages"][:, 0].std()),
                "kl/per_episode": kl_per_episode,
                "kl/coef": self.kl_coef,
            }
        )
        return out
