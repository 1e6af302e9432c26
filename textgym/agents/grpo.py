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
   one pass of the policy's upper layers and one of the reference's (and one more to measure the KL after the
   update, which :class:`~textgym.agents.kl_control.StepGuard` keeps within ``max_update_kl``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textgym.agents.group import GroupAgent, group_advantages, group_setting_errors
from textgym.agents.lm_agent import LMAgentConfig, finite, masked_mean
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
    """

    samples_per_prompt: int = 4
    credit: str = "returns-to-go"
    scale_rewards: bool = True
    epochs: int = 1
    minibatches: int = 1
    clip_coef: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "epochs >= 1": self.epochs >= 1,
            "1 <= minibatches <= num_envs": 1 <= self.minibatches <= self.num_envs,
        }
        failed = group_setting_errors(self) + [rule for rule, ok in checks.items() if not ok]
        if failed:
            from textgym.error import SettingsError

            raise SettingsError(f"Invalid settings: need {'; '.join(failed)}.")


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token ``k3`` KL estimate ``exp(ref - logp) - (ref - logp) - 1`` (Schulman 2020), >= 0."""
    delta = ref_logprobs - logprobs
    return delta.exp() - delta - 1


class GRPO(GroupAgent):
    """The GRPO agent; :meth:`step` runs one iteration. Train with :func:`textgym.training.train`."""

    config: GRPOConfig

    def scores_before_update(self) -> bool:
        """With more than one step per batch the old log-probs come from a scoring pass (or the sampler)."""
        return not (self.config.epochs == 1 and self.config.minibatches == 1)

    def update(self, batch: Batch) -> dict[str, float]:
        """Group-relative advantages, then clipped surrogate steps with a k3 KL penalty to the reference."""
        c = self.config
        valid = batch.valid
        on_policy = not self.scores_before_update()
        if on_policy:  # the old log-probs are the step's own forward pass's, detached
            old, ref = None, self.ref_logprobs(batch)
        else:  # one scoring pass gives both
            scores = self.score_batch(batch)
            old, ref = scores["logprobs"], scores["ref_logprobs"]
        advantages = group_advantages(
            batch.rewards, valid, c.samples_per_prompt, c.credit, leave_one_out=False, scale=c.scale_rewards
        )

        def loss_of(mb: Batch, index: torch.Tensor):
            logits, _ = self.forward(mb)
            new = self.logprobs(mb, logits)
            valid = mb.valid
            behaviour = new.detach() if old is None else old[index]
            log_ratio = (new - behaviour) * valid
            ratio = log_ratio.exp()
            adv = advantages[index]
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef) * adv)
            policy_loss = -masked_mean(surrogate, valid)
            kl_loss = masked_mean(k3_kl(new, ref[index]) * valid, valid)
            stats = {
                "loss/policy": finite(policy_loss.item()),
                "grpo/kl_loss": kl_loss.item(),
                **self.ratio_stats(mb, logits, log_ratio, c.clip_coef),
            }
            return policy_loss + self.kl_coef * kl_loss, new, stats

        out = self.minibatch_steps(batch, old, loss_of, c.epochs, c.minibatches, shuffle=not on_policy)
        kl_per_episode = float(((self.behaviour_logprobs - ref) * valid).sum(1).mean())
        self.update_kl_coef(kl_per_episode)
        out.update(
            {
                "kl/per_episode": kl_per_episode,
                "kl/coef": self.kl_coef,
                "grpo/advantage_std": float(advantages[valid].std()),
            }
        )
        return out
