"""RLOO: REINFORCE with a leave-one-out baseline, a simple policy-gradient baseline for LM-PPO.

After Kool et al. 2019 and Ahmadian et al. 2024.
Each batch holds ``num_envs / samples_per_prompt`` prompts with ``samples_per_prompt`` completions each. An
episode's return is the sum of its per-token rewards minus ``kl_coef`` times its summed KL to the reference; its
advantage is its return minus the mean return of the *other* completions of the same prompt. One gradient step
per batch raises the summed log-probability of each completion in proportion to its advantage. Unlike LM-PPO, the
credit is per sequence: dense critic rewards change only the return, not which tokens get it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textgym.agents.lm_agent import LMAgent, LMAgentConfig, finite
from textgym.agents.lm_rollout import Batch


@dataclass
class RLOOConfig(LMAgentConfig):
    """RLOO's settings (see :class:`LMAgentConfig` for the common ones).

    Attributes:
        samples_per_prompt: Completions per prompt (at least 2; must divide ``num_envs``).
    """

    samples_per_prompt: int = 4


def leave_one_out_advantages(returns: torch.Tensor, group: int) -> torch.Tensor:
    """Each return minus the mean of the other returns of its group (consecutive blocks of ``group``)."""
    blocks = returns.view(-1, group)
    others = (blocks.sum(1, keepdim=True) - blocks) / (group - 1)
    return (blocks - others).reshape(-1)


class RLOO(LMAgent):
    """The RLOO agent; :meth:`step` runs one iteration."""

    config: RLOOConfig

    def __init__(self, config: RLOOConfig) -> None:
        if config.samples_per_prompt < 2 or config.num_envs % config.samples_per_prompt:
            raise ValueError(
                f"samples_per_prompt must be at least 2 and divide num_envs; got {config.samples_per_prompt} "
                f"and {config.num_envs}."
            )
        super().__init__(config)
        self.optimizer = torch.optim.Adam(
            [p for p in self.policy.lm.parameters() if p.requires_grad], config.learning_rate
        )

    def seeds(self, iteration: int) -> list[int]:
        """Each prompt's reset seed repeated ``samples_per_prompt`` times (same seed, same prompt)."""
        k = self.config.samples_per_prompt
        return [seed for seed in super().seeds(iteration)[::k] for _ in range(k)]

    def update(self, batch: Batch) -> dict[str, float]:
        """One REINFORCE step with leave-one-out advantages."""
        c = self.config
        old = self.score_batch(batch)
        kl = old["kl"].sum(1)
        returns = batch.rewards.sum(1) - self.kl_coef * kl
        advantages = leave_one_out_advantages(returns, c.samples_per_prompt)
        ids, mask = batch.sequences
        logits, _ = self.policy(ids, mask, batch.start, batch.tokens.shape[1])
        logprobs = (self.logprobs(batch, logits) * batch.valid).sum(1)
        loss = -(advantages * logprobs).mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.policy.parameters() if p.requires_grad], c.max_grad_norm)
        self.optimizer.step()
        self.update_kl_coef(float(kl.mean()))
        return {
            "loss/policy": finite(float(loss.detach())),
            "rloo/advantage_std": float(advantages.std()),
            "kl/per_episode": float(kl.mean()),
            "kl/coef": self.kl_coef,
        }
