"""Advantages over groups of completions of one prompt, shared by RLOO and GRPO.

A batch holds ``num_envs / group`` prompts with ``group`` completions each, in consecutive rows. Both agents
compare each completion with the others of its prompt instead of learning a value function:

- **sequence** credit (the published algorithms): every token of completion ``i`` gets ``(R_i - b_i) / s``, where
  ``R_i`` is the completion's return (the sum of its per-token rewards).
- **returns-to-go** credit, for dense rewards: token ``t`` of completion ``i`` gets ``(G_{i,t} - b_i) / s``, where
  ``G_{i,t}`` is the sum of the rewards from token ``t`` on. A token is then credited only with the rewards at
  and after it (causality), not with those its prefix earned. With a sparse reward (all of it on the last token)
  ``G_{i,t} = R_i`` and the two forms are identical. The baseline ``b_i`` depends on the other completions (and,
  for GRPO, on ``R_i`` itself, as in GRPO), not on the action at ``t``; it is the same for every token of the
  completion, so it leaves the estimate unbiased (GRPO's self-inclusion aside) but is not the lowest-variance
  choice for late tokens, whose ``G`` is smaller than ``R`` when early tokens earned rewards. This is the
  process-supervision form of GRPO (Shao et al. 2024, section 4.1.3) with every token a step and the group
  statistics taken over the completions' returns.

Baselines and scales: GRPO uses the group mean and divides by the group's standard deviation (Shao et al. 2024);
RLOO uses the mean of the *other* completions and no scale (Kool et al. 2019, Ahmadian et al. 2024).
"""

from __future__ import annotations

from typing import Any

import torch

from textgym.agents.lm_agent import LMAgent
from textgym.agents.lm_rollout import Batch
from textgym.agents.shared_prompts import GroupPacking

CREDITS = ("sequence", "returns-to-go")


def group_setting_errors(config: Any) -> list[str]:
    """The failed rules of a group agent's ``samples_per_prompt`` and ``credit`` settings."""
    checks = {
        "samples_per_prompt >= 2 and dividing num_envs": config.samples_per_prompt >= 2
        and config.num_envs % config.samples_per_prompt == 0,
        f"credit in {CREDITS}": config.credit in CREDITS,
    }
    return [rule for rule, ok in checks.items() if not ok]


class GroupAgent(LMAgent):
    """An LM agent that samples ``samples_per_prompt`` completions of each prompt and has no value function.

    Its optimizer holds only the LM's trainable parameters; each prompt's reset seed is repeated for its group. With
    ``share_prompts`` its passes over a batch of whole groups pack each group behind one copy of its prompt
    (:class:`~textgym.agents.shared_prompts.GroupPacking`); it has no value head, so its passes return no values.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.optimizer = self.make_optimizer(with_value_head=False)
        share = config.share_prompts
        self.packing = GroupPacking(config.samples_per_prompt, self.policy.lm, self.trunk) if share else None

    def forward(self, batch: Batch, detach_value: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The policy's logits at the batch's generated positions, packed by group where the batch allows it."""
        if self.packing is not None and self.packing.applies(batch):
            return self.packing.logits(self.policy.lm, batch), None
        return super().forward(batch, detach_value)

    def values_at(self, hidden: torch.Tensor) -> None:
        """A group agent has no value head."""
        return None

    @torch.no_grad()
    def reference_logits(self, batch: Batch) -> torch.Tensor:
        """The reference's logits at the batch's generated positions, packed by group where the batch allows it."""
        if self.packing is not None and self.packing.applies(batch):
            return self.packing.logits(self.reference, batch)
        return super().reference_logits(batch)

    def seeds(self, iteration: int) -> list[int]:
        """Each prompt's reset seed repeated ``samples_per_prompt`` times (same seed, same prompt)."""
        return grouped_seeds(super().seeds(iteration), self.config.samples_per_prompt)


def grouped_seeds(seeds: list[int], group: int) -> list[int]:
    """Every ``group``-th seed repeated ``group`` times (same seed, same prompt: one group per prompt)."""
    return [seed for seed in seeds[::group] for _ in range(group)]


def returns_to_go(rewards: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``G_t = sum_{s >= t} r_s`` over each row's valid tokens (zero at padding)."""
    rewards = rewards * valid
    return rewards.flip(1).cumsum(1).flip(1) * valid


def group_advantages(
    rewards: torch.Tensor,
    valid: torch.Tensor,
    group: int,
    credit: str = "sequence",
    leave_one_out: bool = False,
    scale: bool = False,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Per-token advantages (rows, tokens) from per-token rewards, compared within groups of ``group`` rows.

    Args:
        rewards: Per-token rewards (rows, tokens); consecutive blocks of ``group`` rows share a prompt.
        valid: Which positions hold a generated token.
        group: Completions per prompt (at least 2).
        credit: ``"sequence"`` or ``"returns-to-go"`` (see the module docstring).
        leave_one_out: Baseline from the other completions only (RLOO); else the group mean with itself (GRPO).
        scale: Divide by the group's standard deviation of returns plus ``eps`` (GRPO).
        eps: Added to the standard deviation.
    """
    if credit not in CREDITS:
        from textgym.error import unknown_name

        raise unknown_name("credit", credit, CREDITS)
    rows = rewards.shape[0]
    if group < 2 or rows % group:
        raise ValueError(f"group must be at least 2 and divide the {rows} rows, got {group}.")
    to_go = returns_to_go(rewards, valid)
    totals = to_go[:, 0].view(-1, group)
    if leave_one_out:
        baseline = (totals.sum(1, keepdim=True) - totals) / (group - 1)
    else:
        baseline = totals.mean(1, keepdim=True).expand_as(totals)
    spread = totals.std(1, keepdim=True).expand_as(totals) + eps if scale else torch.ones_like(totals)
    signal = to_go if credit == "returns-to-go" else to_go[:, :1].expand_as(to_go)
    return (signal - baseline.reshape(-1, 1)) / spread.reshape(-1, 1) * valid
