"""LM-PPO: PPO on a causal-LM policy with a value head and a per-token KL penalty to a frozen reference.

One iteration (the RLHF form of PPO, as in Ziegler et al. 2019 and the RELC paper):

1. **Rollout**: ``num_envs`` episodes sampled token by token on the vector env with a key/value cache. Rewards are
   per token: the environment's step rewards, with a dense wrapper's ``info["token_rewards"]`` credited to the
   tokens that earned them (see :mod:`textgym.agents.lm_rollout`). The shared frozen layers' output is recorded.
2. **Scoring**: one pass of the policy's upper layers (old log-probs, values) and of the reference's (reference
   log-probs, full vocabulary) over the recorded trunk. Each token's reward becomes
   ``r_t - kl_coef * (log pi(a_t) - log ref(a_t))``.
3. **Advantages**: GAE(``gamma``, ``lam``) over each episode's tokens; the episode ends after its last token
   (end-of-sequence and the length limit are both terminal in textgym), so nothing is bootstrapped. With
   ``value_norm`` the value head predicts returns standardised by their running moments.
4. **Update**: ``epochs`` passes over shuffled minibatches of episodes (learning rate warmed up over the first
   iterations); clipped policy loss on whitened advantages, value loss (optionally clipped), gradient clipping.
   The update stays within ``max_update_kl`` of the rollout policy (steps that would pass it are undone, see
   :class:`~textgym.agents.kl_control.StepGuard`); the KL after the whole update is logged
   (``ppo/post_update_kl``) with the entropy, the gradient norm, the value's explained variance and the share of
   episodes that ended at end-of-sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textgym.agents.lm_agent import LMAgent, LMAgentConfig, finite, masked_mean, masked_whiten
from textgym.agents.lm_rollout import Batch


@dataclass
class LMPPOConfig(LMAgentConfig):
    """LM-PPO's settings (see :class:`LMAgentConfig` for the common ones).

    Attributes:
        gamma: Discount over tokens.
        lam: GAE lambda.
        epochs: Passes over each batch.
        minibatches: Minibatches per pass (of episodes).
        clip_coef: PPO ratio clip.
        value_clip: Value-loss clip around the old values, in normalised units when value_norm is on (None: off).
        value_coef: Weight of the value loss.
        value_norm: Learn values of returns standardised by their running mean and std (the value head's scale
            stays near 1 whatever the rewards' scale).
        value_through_lm: Let the value loss's gradient reach the LM's layers (off: only the value head learns
            from it, so value regression cannot move the policy).
        whiten_advantages: Standardise advantages over the batch's tokens.
    """

    gamma: float = 1.0
    lam: float = 0.95
    epochs: int = 2
    minibatches: int = 2
    clip_coef: float = 0.2
    value_clip: float | None = None
    value_coef: float = 0.5
    value_norm: bool = True
    value_through_lm: bool = False
    whiten_advantages: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "0 <= gamma <= 1": 0 <= self.gamma <= 1,
            "0 <= lam <= 1": 0 <= self.lam <= 1,
            "epochs >= 1": self.epochs >= 1,
            "1 <= minibatches <= num_envs": 1 <= self.minibatches <= self.num_envs,
            "value_clip > 0 or None": self.value_clip is None or self.value_clip > 0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            from textgym.error import SettingsError

            raise SettingsError(f"Invalid settings: need {'; '.join(failed)}.")


class RunningMoments:
    """Running mean and variance of value targets (Chan et al.'s parallel update), for value normalisation."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 0

    def update(self, values: torch.Tensor) -> None:
        """Adds a batch of values."""
        n = values.numel()
        if n == 0:
            return
        mean, var = float(values.mean()), float(values.var(unbiased=False))
        total = self.count + n
        delta = mean - self.mean
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        """The running standard deviation (at least 1e-4)."""
        return max(self.var, 1e-8) ** 0.5

    def state_dict(self) -> dict[str, float]:
        """For checkpoints."""
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restores :meth:`state_dict`'s output."""
        self.mean, self.var, self.count = state["mean"], state["var"], int(state["count"])


def explained_variance(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var(target - predicted) / Var(target)`` over the masked entries (nan when the target is constant)."""
    mask = mask.bool()
    target, predicted = target[mask].double(), predicted[mask].double()
    variance = float(target.var(unbiased=False)) if target.numel() else 0.0
    if variance == 0:
        return float("nan")
    return 1.0 - float((target - predicted).var(unbiased=False)) / variance


def gae(
    rewards: torch.Tensor, values: torch.Tensor, valid: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns over (rows, tokens).

    Each row's episode ends after its last valid token: nothing is bootstrapped after it.

    Args:
        rewards: Per-token rewards (zero where not valid).
        values: Value of the state before each token.
        valid: Which positions hold a generated token.
        gamma: Discount.
        lam: GAE lambda.
    """
    valid = valid.float()
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0])
    next_value = torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * valid[:, t]
        advantages[:, t] = running
        next_value = values[:, t] * valid[:, t]
    return advantages, (advantages + values) * valid


def kl_penalised_rewards(rewards: torch.Tensor, kl: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards minus ``kl_coef`` times the per-token KL estimate ``log pi(a) - log ref(a)``."""
    return rewards - kl_coef * kl


class LMPPO(LMAgent):
    """The LM-PPO agent; :meth:`step` runs one iteration. Train with :func:`textgym.training.train`."""

    config: LMPPOConfig

    def __init__(self, config: LMPPOConfig) -> None:
        super().__init__(config)
        self.optimizer = self.make_optimizer()
        self.value_moments = RunningMoments()

    def scores_before_update(self) -> bool:
        """LM-PPO needs the old log-probs and values of every row before its first step."""
        return True

    def update(self, batch: Batch) -> dict[str, float]:
        """KL-penalised rewards, GAE, then clipped PPO epochs over minibatches of episodes."""
        c = self.config
        old = self.score_batch(batch)
        valid = batch.valid
        scale, shift = (self.value_moments.std, self.value_moments.mean) if c.value_norm else (1.0, 0.0)
        values = (old["values"] * scale + shift) * valid  # the head predicts normalised values
        rewards = kl_penalised_rewards(batch.rewards, old["kl"], self.kl_coef) * valid
        advantages, returns = gae(rewards, values, valid, c.gamma, c.lam)
        explained = explained_variance(values, returns, valid)
        if c.value_norm:
            self.value_moments.update(returns[valid])
            scale, shift = self.value_moments.std, self.value_moments.mean
        targets = (returns - shift) / scale * valid
        old_heads = (values - shift) / scale * valid  # the old predictions in the new normalisation
        if c.whiten_advantages:
            advantages = masked_whiten(advantages, valid)
        kl_per_episode = float(old["kl"].sum(1).mean())

        def loss_of(mb: Batch, index: torch.Tensor):
            logits, heads = self.forward(mb, detach_value=not c.value_through_lm)
            new = self.logprobs(mb, logits)
            valid = mb.valid
            adv, target, old_head = advantages[index], targets[index], old_heads[index]
            log_ratio = (new - old["logprobs"][index]) * valid
            ratio = log_ratio.exp()
            surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef))
            policy_loss = masked_mean(surrogate, valid)
            value_loss = (heads - target) ** 2
            if c.value_clip is not None:
                clipped = old_head + (heads - old_head).clamp(-c.value_clip, c.value_clip)
                value_loss = torch.max(value_loss, (clipped - target) ** 2)
            value_loss = 0.5 * masked_mean(value_loss, valid)
            stats = {
                "loss/policy": finite(policy_loss.item()),
                "loss/value": finite(value_loss.item()),
                **self.ratio_stats(mb, logits, log_ratio, c.clip_coef),
            }
            return policy_loss + c.value_coef * value_loss, new, stats

        out = self.minibatch_steps(batch, old["logprobs"], loss_of, c.epochs, c.minibatches)
        self.update_kl_coef(kl_per_episode)
        out.update(
            {
                "kl/per_episode": kl_per_episode,
                "kl/coef": self.kl_coef,
                "value/explained_variance": explained,
                "value/return_mean": float(masked_mean(returns, valid)),
            }
        )
        return out

    def state_dict(self) -> dict:
        """The base state plus the value normalisation's running moments."""
        return {**super().state_dict(), "value_moments": self.value_moments.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`'s output."""
        super().load_state_dict(state)
        if "value_moments" in state:
            self.value_moments.load_state_dict(state["value_moments"])
