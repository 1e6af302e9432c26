"""GRPO: group-relative policy optimisation (Shao et al. 2024, DeepSeekMath), on textgym's shared agent parts.

One iteration:

1. **Rollout**: ``num_envs / samples_per_prompt`` prompts, ``samples_per_prompt`` completions each (same reset seed,
   same prompt), sampled in lockstep with a key/value cache; per-token rewards as for the other agents (a dense
   wrapper's ``info["token_rewards"]`` credited to the tokens that earned them).
2. **Advantages**: no value function. ``credit="sequence"`` gives every token of completion ``i`` the group-
   normalised return ``(R_i - mean R) / (std R + eps)``; ``credit="returns-to-go"`` gives token ``t`` the
   group-normalised sum of the rewards from ``t`` on, ``(G_{i,t} - mean R) / (std R + eps)``, which equals the
   former under a sparse reward and lets dense rewards credit their own tokens (see :mod:`textgym.agents.group`).
3. **Update**: ``epochs`` passes over ``minibatches`` of the batch maximising the clipped surrogate
   ``min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)`` minus ``kl_coef`` times the per-token KL to the reference,
   estimated with the unbiased, non-negative ``k3`` estimator ``ref/pi - log(ref/pi) - 1`` (in the loss, not in the
   reward, as in GRPO), averaged over all the batch's tokens. With one epoch of one minibatch (the default, and
   TRL's) the step is on-policy: the old log-probabilities are the same forward pass's, detached, so a batch costs
   one pass of the policy's upper layers and one of the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from textgym.agents.group import CREDITS, group_advantages, grouped_seeds
from textgym.agents.lm_agent import LMAgent, LMAgentConfig, finite, masked_mean
from textgym.agents.lm_policy import token_entropy
from textgym.agents.lm_rollout import Batch


@dataclass
class GRPOConfig(LMAgentConfig):
    """GRPO's settings (see :class:`LMAgentConfig` for the common ones; ``kl_coef`` is GRPO's beta).

    Attributes:
        samples_per_prompt: Completions per prompt, the group (at least 2; must divide ``num_envs``).
        credit: sequence (each completion's normalised return for all its tokens) or returns-to-go (each token's
            normalised rewards from it on; the same under sparse rewards).
        scale_rewards: Divide by the group's standard deviation of returns (off: only subtract the group mean).
        epochs: Passes over each batch.
        minibatches: Minibatches per pass (of episodes; whole groups are not required).
        clip_coef: Ratio clip of the surrogate.
        max_update_kl: Early stop: no more minibatch steps once a minibatch's approximate KL from the rollout
            policy (nats per token, before its step) passes this (None: never stop).
    """

    samples_per_prompt: int = 4
    credit: str = "returns-to-go"
    scale_rewards: bool = True
    epochs: int = 1
    minibatches: int = 1
    clip_coef: float = 0.2
    max_update_kl: float | None = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "samples_per_prompt >= 2 and dividing num_envs": self.samples_per_prompt >= 2
            and self.num_envs % self.samples_per_prompt == 0,
            f"credit in {CREDITS}": self.credit in CREDITS,
            "epochs >= 1": self.epochs >= 1,
            "1 <= minibatches <= num_envs": 1 <= self.minibatches <= self.num_envs,
            "max_update_kl > 0 or None": self.max_update_kl is None or self.max_update_kl > 0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            from textgym.error import SettingsError

            raise SettingsError(f"Invalid settings: need {'; '.join(failed)}.")


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token ``k3`` KL estimate ``exp(ref - logp) - (ref - logp) - 1`` (Schulman 2020), >= 0."""
    delta = ref_logprobs - logprobs
    return delta.exp() - delta - 1


class GRPO(LMAgent):
    """The GRPO agent; :meth:`step` runs one iteration. Train with :func:`textgym.training.train`."""

    config: GRPOConfig

    def __init__(self, config: GRPOConfig) -> None:
        super().__init__(config)
        self.optimizer = torch.optim.Adam(self.optimizer_groups()[:1])

    def seeds(self, iteration: int) -> list[int]:
        """Each prompt's reset seed repeated ``samples_per_prompt`` times (same seed, same prompt)."""
        return grouped_seeds(super().seeds(iteration), self.config.samples_per_prompt)

    def update(self, batch: Batch) -> dict[str, float]:
        """Group-relative advantages, then clipped surrogate steps with a k3 KL penalty to the reference."""
        c = self.config
        valid = batch.valid
        on_policy = c.epochs == 1 and c.minibatches == 1
        ref = self.ref_logprobs(batch)
        advantages = group_advantages(
            batch.rewards, valid, c.samples_per_prompt, c.credit, leave_one_out=False, scale=c.scale_rewards
        )
        old = None if on_policy else self.score_batch(batch)["logprobs"]
        history: dict[str, list[float]] = {
            "loss/policy": [], "grpo/kl_loss": [], "ppo/clipfrac": [], "ppo/approx_kl": [], "policy/entropy": [],
            "grad/norm": [],
        }  # fmt: skip
        rows = len(batch.completions)
        size = max(1, rows // c.minibatches)
        steps, stopped, first_logprobs = 0, False, None
        for _ in range(c.epochs):
            order = torch.arange(rows) if on_policy else torch.randperm(rows, generator=self.shuffle)
            for first in range(0, rows, size):
                index = order[first : first + size]
                stats, logprobs = self._minibatch(batch.rows(index), old, ref, advantages, index)
                if first_logprobs is None and on_policy:
                    first_logprobs = logprobs
                if c.max_update_kl is not None and stats["ppo/approx_kl"] > c.max_update_kl:
                    stopped = True
                    history["ppo/approx_kl"].append(stats["ppo/approx_kl"])
                    break
                steps += 1
                for key, value in stats.items():
                    history[key].append(value)
            if stopped:
                break
        behaviour = first_logprobs if on_policy else old
        kl_per_episode = float(((behaviour - ref) * valid).sum(1).mean())
        self.update_kl_coef(kl_per_episode)
        out = {key: float(np.mean(values)) if values else float("nan") for key, values in history.items()}
        out.update(
            {
                "kl/per_episode": kl_per_episode,
                "kl/coef": self.kl_coef,
                "grpo/advantage_std": float(advantages[valid].std()),
                "ppo/post_update_kl": self.post_update_kl(batch, behaviour),
                "ppo/steps": float(steps),
                "ppo/early_stop": float(stopped),
            }
        )
        return out

    def _minibatch(self, mb: Batch, old, ref, advantages, index) -> tuple[dict[str, float], torch.Tensor]:
        c = self.config
        index = index.to(mb.tokens.device)
        logits, _ = self.forward(mb)
        new = self.logprobs(mb, logits)
        valid = mb.valid
        behaviour = new.detach() if old is None else old[index]
        log_ratio = (new - behaviour) * valid
        ratio = log_ratio.exp()
        adv = advantages[index]
        with torch.no_grad():
            approx_kl = float(masked_mean((ratio - 1) - log_ratio, valid))
            stats = {
                "ppo/clipfrac": float(masked_mean(((ratio - 1).abs() > c.clip_coef).float(), valid)),
                "ppo/approx_kl": approx_kl,
                "policy/entropy": float(
                    masked_mean(token_entropy(logits, mb.support, c.temperature, self.vocab), valid)
                ),
            }
        if c.max_update_kl is not None and approx_kl > c.max_update_kl:
            return stats, behaviour * valid
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef) * adv)
        kl = k3_kl(new, ref[index]) * valid
        policy_loss = -masked_mean(surrogate, valid)
        kl_loss = masked_mean(kl, valid)
        loss = policy_loss + self.kl_coef * kl_loss
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = self.clip_gradients()
        self.optimizer.step()
        stats.update(
            {"loss/policy": finite(policy_loss.item()), "grpo/kl_loss": kl_loss.item(), "grad/norm": grad_norm}
        )
        return stats, behaviour * valid
