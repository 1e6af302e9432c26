"""LM-PPO: PPO on a causal-LM policy with a value head and a per-token KL penalty to a frozen reference.

One iteration (the RLHF form of PPO, as in Ziegler et al. 2019 and the RELC paper):

1. **Rollout**: ``num_envs`` episodes sampled token by token on the vector env with a key/value cache. Rewards are
   per token: the environment's step rewards, with a critic's ``episode``-mode ``info["token_rewards"]`` credited
   to the tokens that earned them (see :mod:`textgym.agents.lm_rollout`).
2. **Scoring**: one pass of the policy (old log-probs, values) and of the reference (reference log-probs) over the
   finished sequences. Each token's reward becomes ``r_t - kl_coef * (log pi(a_t) - log ref(a_t))``.
3. **Advantages**: GAE(``gamma``, ``lam``) over each episode's tokens; the episode ends after its last token
   (end-of-sequence and the length limit are both terminal in textgym), so nothing is bootstrapped.
4. **Update**: ``epochs`` passes over shuffled minibatches of episodes; clipped policy loss on whitened
   advantages, clipped value loss, gradient clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
        value_clip: Value-loss clip around the old values.
        value_coef: Weight of the value loss.
        whiten_advantages: Standardise advantages over the batch's tokens.
    """

    gamma: float = 1.0
    lam: float = 0.95
    epochs: int = 2
    minibatches: int = 2
    clip_coef: float = 0.2
    value_clip: float = 0.2
    value_coef: float = 0.5
    whiten_advantages: bool = True


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
        lm = [p for p in self.policy.lm.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            [
                {"params": lm, "lr": config.learning_rate},
                {"params": self.policy.value_head.parameters(), "lr": config.value_learning_rate},
            ]
        )

    def update(self, batch: Batch) -> dict[str, float]:
        """KL-penalised rewards, GAE, then clipped PPO epochs over minibatches of episodes."""
        c = self.config
        old = self.score_batch(batch)
        rewards = kl_penalised_rewards(batch.rewards, old["kl"], self.kl_coef) * batch.valid
        advantages, returns = gae(rewards, old["values"], batch.valid, c.gamma, c.lam)
        if c.whiten_advantages:
            advantages = masked_whiten(advantages, batch.valid)
        kl_per_episode = float(old["kl"].sum(1).mean())
        history: dict[str, list[float]] = {"loss/policy": [], "loss/value": [], "ppo/clipfrac": [], "ppo/approx_kl": []}
        rows = len(batch.completions)
        size = max(1, rows // c.minibatches)
        for _ in range(c.epochs):
            order = torch.randperm(rows, generator=self.shuffle)
            for first in range(0, rows, size):
                index = order[first : first + size]
                stats = self._minibatch(batch.rows(index), old, advantages, returns, index)
                for key, value in stats.items():
                    history[key].append(value)
        self.update_kl_coef(kl_per_episode)
        out = {key: float(np.mean(values)) for key, values in history.items()}
        out.update({"kl/per_episode": kl_per_episode, "kl/coef": self.kl_coef})
        return out

    def _minibatch(self, mb: Batch, old: dict, advantages, returns, index) -> dict[str, float]:
        c = self.config
        ids, mask = mb.sequences
        logits, values = self.policy(ids, mask, mb.start, mb.tokens.shape[1])
        new = self.logprobs(mb, logits)
        valid = mb.valid
        adv, ret = advantages[index], returns[index]
        old_logprobs, old_values = old["logprobs"][index], old["values"][index]
        log_ratio = (new - old_logprobs) * valid
        ratio = log_ratio.exp()
        policy_loss = masked_mean(torch.max(-adv * ratio, -adv * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef)), valid)
        clipped = old_values + (values - old_values).clamp(-c.value_clip, c.value_clip)
        value_loss = 0.5 * masked_mean(torch.max((values - ret) ** 2, (clipped - ret) ** 2), valid)
        loss = policy_loss + c.value_coef * value_loss
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.policy.parameters() if p.requires_grad], c.max_grad_norm)
        self.optimizer.step()
        with torch.no_grad():
            return {
                "loss/policy": finite(float(policy_loss)),
                "loss/value": finite(float(value_loss)),
                "ppo/clipfrac": float(masked_mean(((ratio - 1).abs() > c.clip_coef).float(), valid)),
                "ppo/approx_kl": float(masked_mean((ratio - 1) - log_ratio, valid)),
            }
