"""What every language-model agent shares.

The vector env, the policy and its reference, sampling, the KL penalty, evaluation and checkpoint state; the KL
coefficient and the per-update trust region are in :mod:`textgym.agents.kl_control`.
:mod:`textgym.agents.lm_ppo` and :mod:`textgym.agents.rloo` add their updates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import textgym  # noqa: F401  (registers the ids)
from textgym.agents.decode_weights import DecodeWeights
from textgym.agents.kl_control import KLController, StepGuard
from textgym.agents.lm_eval import evaluate_lm, make_eval_envs
from textgym.agents.lm_policy import SharedTrunk, build_policy, reference_logits, token_entropy, token_logprobs
from textgym.agents.lm_rollout import Batch, collect
from textgym.agents.precision import with_float32_master
from textgym.devices import check_device_settings, resolve_device
from textgym.models import DEFAULT_POLICY_MODEL


@dataclass
class LMAgentConfig:
    """Settings common to the LM agents.

    Attributes:
        env_id: A registered textgym id.
        env_kwargs: Extra arguments of the env (e.g. ``{"mode": "prefix"}`` or ``{"critic": "self"}``).
        model: The policy's model (named, folder or hub id); the env's tokenizer follows it.
        seed: Seeds the env resets, the sampler and the update's shuffling.
        device: Where the policy and reference run: auto (a GPU when there is one), cpu, cuda or cuda:N.
        dtype: Weights and activations of the policy and reference: float32 or bfloat16 (its trainable weights
            then step through float32 master weights, see :mod:`textgym.agents.precision`).
        num_envs: Episodes per rollout batch.
        iterations: Rollout + update rounds.
        learning_rate: Adam step size of the LM (after warm-up).
        warmup_iterations: The LM's learning rate rises linearly from lr/(n+1) to lr over the first n iterations.
        value_learning_rate: Adam step size of the value head (it starts from zero).
        kl_coef: Per-token KL penalty coefficient (the starting value when target_kl is set).
        target_kl: Adaptive KL: the per-episode KL to the reference the coefficient steers towards (None: fixed).
        kl_horizon: Adaptive KL: episodes over which the controller moves the coefficient by up to 20 % per
            error unit (None: a tenth of the run's episodes, at least one batch, so it acts within the run).
        temperature, top_k, top_p: Sampling controls (the update uses the same processed distribution).
        freeze_layers: Embeddings and this many lowest layers are frozen and shared with the reference (None:
            60 % of the layers, rounded down; 0 trains everything).
        max_grad_norm: Gradient clipping.
        max_update_kl: Trust region of each update: the approximate KL per token from the rollout policy to the
            updated one never ends an update above this; steps are undone when it would (None: no bound).
        self_critique: The critic judges with the live policy model (one LM in both roles).
        eval_episodes: Episodes of each evaluation on the eval split (0: no evaluation).
        eval_every: Evaluate every this many iterations (and before the first and after the last).
        transposed_decode: Sample with a copy of each linear weight laid out for few rows (oneDNN's packed layout, or
            a transposed one) when the policy runs in float32 on a CPU: faster token steps, one more copy of the
            weights in memory (see :mod:`textgym.agents.decode_weights`). The same sampling distribution up to float
            rounding.
        share_prompts: Rows that share a prompt run it once: in the sampler's first pass, and in GRPO's and
            RLOO's passes over their groups (one packed row per prompt; see :mod:`textgym.agents.shared_prompts`).
            The same logits up to float rounding.
        sampler_scores: An update that scores the batch before its first step (LM-PPO; GRPO with several steps)
            takes the old log-probabilities and values from the sampler's own passes (the distribution each token
            was drawn from, and the value head on the last hidden state there) instead of running the policy over
            the batch again. The same numbers up to float rounding.
    """

    env_id: str = "TextSentiment-critic-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = DEFAULT_POLICY_MODEL
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    num_envs: int = 8
    iterations: int = 20
    learning_rate: float = 3e-5
    warmup_iterations: int = 2
    value_learning_rate: float = 1e-3
    kl_coef: float = 0.05
    target_kl: float | None = None
    kl_horizon: int | None = None
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    freeze_layers: int | None = None
    max_grad_norm: float = 1.0
    max_update_kl: float | None = 0.03
    self_critique: bool = False
    eval_episodes: int = 16
    eval_every: int = 5
    transposed_decode: bool = True
    share_prompts: bool = True
    sampler_scores: bool = True

    def __post_init__(self) -> None:
        checks = {
            "num_envs >= 1": self.num_envs >= 1,
            "iterations >= 0": self.iterations >= 0,
            "learning_rate > 0": self.learning_rate > 0,
            "warmup_iterations >= 0": self.warmup_iterations >= 0,
            "kl_coef >= 0": self.kl_coef >= 0,
            "target_kl > 0 or None": self.target_kl is None or self.target_kl > 0,
            "kl_horizon >= 1 or None": self.kl_horizon is None or self.kl_horizon >= 1,
            "max_update_kl > 0 or None": self.max_update_kl is None or self.max_update_kl > 0,
            "temperature > 0 (greedy decoding has no probabilities to train)": self.temperature > 0,
            "top_k >= 0": self.top_k >= 0,
            "0 < top_p <= 1": 0 < self.top_p <= 1,
            "eval_episodes >= 0": self.eval_episodes >= 0,
            "eval_every >= 1": self.eval_every >= 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            from textgym.error import SettingsError

            raise SettingsError(f"Invalid settings: need {'; '.join(failed)}.")
        check_device_settings(self.device, self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for checkpoints and logs)."""
        return asdict(self)


class LMAgent:
    """Base of the LM agents: builds everything from a config; subclasses implement :meth:`update`."""

    config: LMAgentConfig

    def __init__(self, config: LMAgentConfig) -> None:
        self.config = config
        torch.manual_seed(config.seed)
        self.device = resolve_device(config.device)
        self.policy, self.reference = build_policy(config.model, config.freeze_layers, str(self.device), config.dtype)
        self.trunk = SharedTrunk(self.policy.lm, self.reference, self.policy.frozen_layers)
        # The env stays on the CPU; its scorer's and critic's models follow the policy's device and dtype.
        env_kwargs = {"model": config.model, "device": str(self.device), "dtype": config.dtype, **config.env_kwargs}
        if config.self_critique:
            env_kwargs["critic"] = self._self_critic(env_kwargs)
        self.envs = gym.make_vec(
            config.env_id, num_envs=config.num_envs, vectorization_mode="vector_entry_point",
            autoreset_mode="disabled", **env_kwargs,
        )  # fmt: skip
        self.task = self.envs.get_attr("task")[0].name
        self.vocab = self.envs.single_action_space.n
        self.generator = torch.Generator().manual_seed(config.seed)
        self.decode = DecodeWeights(config.num_envs) if config.transposed_decode else None
        self.policy_version = 0
        """Moves whenever the policy's weights may change (optimizer steps, loading): a batch sampled at another
        version has stale sampler scores (``Batch.policy_version``)."""
        self.shuffle = torch.Generator().manual_seed(config.seed + 1)
        self.kl = KLController(config.kl_coef, config.target_kl, config.kl_horizon, config.num_envs, config.iterations)
        self.iteration = 0
        self.episodes = 0
        self.score_seconds = 0.0

    @property
    def kl_coef(self) -> float:
        """The KL-penalty coefficient now."""
        return self.kl.coef

    def _self_critic(self, env_kwargs: dict[str, Any]):
        from textgym.error import SettingsError

        if "critic" in env_kwargs:
            raise SettingsError("self_critique replaces the critic: do not pass critic= in env_kwargs as well.")
        from textgym.envs.registration import has_critic

        if not has_critic(self.config.env_id):
            raise SettingsError(f"self_critique needs a critic env id (Text*-critic-v0), got {self.config.env_id!r}.")
        from textgym.critics.segment_judge import SegmentJudgeCritic
        from textgym.models import load_tokenizer

        task = gym.spec(self.config.env_id).kwargs["task"]
        self.critic = SegmentJudgeCritic(task, model=self.policy.lm, tokenizer=load_tokenizer(self.config.model))
        return self.critic

    def optimizer_groups(self) -> list[dict[str, Any]]:
        """Adam's parameter groups: the LM's trainable parameters (with warm-up) and the value head."""
        c = self.config
        lm = [p for p in self.policy.lm.parameters() if p.requires_grad]
        return [
            {"params": lm, "lr": c.learning_rate, "base_lr": c.learning_rate},
            {"params": list(self.policy.value_head.parameters()), "lr": c.value_learning_rate},
        ]

    def make_optimizer(self, with_value_head: bool = True) -> torch.optim.Adam:
        """Fused Adam over :meth:`optimizer_groups` (the value head's group only when asked).

        Fused: one kernel for all parameters, several times faster per step on a CPU than the per-tensor loop and
        equal to it up to rounding. Low-precision (bfloat16) parameters are stepped through float32 master
        weights (:mod:`textgym.agents.precision`): in bfloat16 itself most steps would round away.
        """
        groups = self.optimizer_groups()
        return with_float32_master(torch.optim.Adam)(groups if with_value_head else groups[:1], fused=True)

    def warm_up(self) -> float:
        """Sets the LM's learning rate for this iteration (linear warm-up) and returns it."""
        c = self.config
        scale = min(1.0, (self.iteration + 1) / (c.warmup_iterations + 1))
        for group in self.optimizer.param_groups:
            if "base_lr" in group:
                group["lr"] = group["base_lr"] * scale
        return c.learning_rate * scale

    def clip_gradients(self) -> float:
        """Clips the gradient norm to ``max_grad_norm``; returns the norm before clipping."""
        parameters = [p for p in self.policy.parameters() if p.requires_grad]
        return float(torch.nn.utils.clip_grad_norm_(parameters, self.config.max_grad_norm))

    # -- rollouts ------------------------------------------------------------------------------------------

    def seeds(self, iteration: int) -> list[int]:
        """The env reset seeds of an iteration (a pure function of the seed and iteration: resumes repeat them)."""
        base = self.config.seed * 1_000_003 + iteration * self.config.num_envs
        return [base + i for i in range(self.config.num_envs)]

    def rollout(self, seeds: list[int]) -> Batch:
        """Samples one batch of episodes with the current policy (recording the shared trunk)."""
        c = self.config
        batch = collect(
            self.envs, self.policy.lm, self.generator, seeds, c.temperature, c.top_k, c.top_p, trunk=self.trunk,
            decode=self.decode, share_prompts=c.share_prompts,
            behaviour=c.sampler_scores and c.temperature > 0 and self.scores_before_update(),
        )  # fmt: skip
        batch.policy_version = self.policy_version
        return batch

    def scores_before_update(self) -> bool:
        """Whether :meth:`update` runs :meth:`score_batch` (the sampler then keeps what it needs)."""
        return False

    def values_at(self, hidden: torch.Tensor) -> torch.Tensor | None:
        """The value head on last hidden states (None for an agent without one)."""
        return self.policy.values(hidden)

    def logprobs(self, batch: Batch, model_logits: torch.Tensor) -> torch.Tensor:
        """The policy's per-token log-probabilities of the batch's tokens (over the sampling support)."""
        return token_logprobs(model_logits, batch.tokens, batch.support, self.config.temperature, self.vocab)

    def ref_logprobs(self, batch: Batch) -> torch.Tensor:
        """The reference's per-token log-probabilities, over the full vocabulary at the sampling temperature."""
        start = time.perf_counter()
        logits = self.reference_logits(batch)
        logprobs = token_logprobs(logits, batch.tokens, None, self.config.temperature, self.vocab) * batch.valid
        self.score_seconds += time.perf_counter() - start  # time/score_s: scoring passes, whichever agent runs them
        return logprobs

    def reference_logits(self, batch: Batch) -> torch.Tensor:
        """The reference's logits at the batch's generated positions (no gradient)."""
        ids, mask = batch.inputs
        return reference_logits(self.reference, ids, mask, batch.length, batch.trunk, self.trunk)

    def forward(self, batch: Batch, detach_value: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's logits and values at the batch's generated positions (only the layers above the trunk)."""
        ids, mask = batch.inputs
        return self.policy(ids, mask, batch.length, batch.trunk, self.trunk, detach_value)

    @torch.no_grad()
    def score_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Old log-probs and values of the policy, reference log-probs, and the per-token KL estimate.

        The policy's part comes from the sampler when it kept it (``Batch.behaviour_logprobs``, see
        ``sampler_scores``) and the policy has not changed since, else from a pass over the batch.
        """
        start = time.perf_counter()
        kept = batch.behaviour_logprobs is not None and batch.last_hidden is not None
        if kept and batch.policy_version == self.policy_version:
            old, values = batch.behaviour_logprobs, self.values_at(batch.last_hidden)
        else:
            logits, values = self.forward(batch)
            old = self.logprobs(batch, logits)
        self.score_seconds += time.perf_counter() - start
        ref = self.ref_logprobs(batch)
        valid = batch.valid.float()
        return {
            "logprobs": old * valid,
            "values": None if values is None else values * valid,  # a group agent has no value head
            "ref_logprobs": ref * valid,
            "kl": (old - ref) * valid,
        }

    @torch.no_grad()
    def ratio_stats(self, mb: Batch, logits: torch.Tensor, log_ratio: torch.Tensor, clip_coef: float) -> dict:
        """A minibatch's clip fraction, approximate KL from the rollout policy (before the step) and entropy."""
        valid = mb.valid
        ratio = log_ratio.exp()
        entropy = masked_mean(token_entropy(logits, mb.support, self.config.temperature, self.vocab), valid)
        return {
            "ppo/clipfrac": float(masked_mean(((ratio - 1).abs() > clip_coef).float(), valid)),
            "ppo/approx_kl": float(masked_mean((ratio - 1) - log_ratio, valid)),
            "policy/entropy": float(entropy),
        }

    @torch.no_grad()
    def post_update_kl(self, batch: Batch, old_logprobs: torch.Tensor) -> float:
        """Approximate KL (nats per token, ``E[(r - 1) - log r]``) from the rollout policy to the updated one."""
        logits, _ = self.forward(batch)
        log_ratio = (self.logprobs(batch, logits) - old_logprobs) * batch.valid
        return float(masked_mean(log_ratio.exp() - 1 - log_ratio, batch.valid))

    def minibatch_steps(
        self,
        batch: Batch,
        old_logprobs: torch.Tensor | None,
        loss_of: Callable[[Batch, torch.Tensor], tuple[torch.Tensor, torch.Tensor, dict[str, float]]],
        epochs: int,
        minibatches: int,
        shuffle: bool = True,
    ) -> dict[str, float]:
        """``epochs`` passes of optimizer steps over ``minibatches`` minibatches of episodes, within the trust region.

        Args:
            batch: The batch.
            old_logprobs: The rollout policy's log-probabilities (None: those of the first pass's forward, for
                an on-policy single pass).
            loss_of: ``(minibatch, row index) -> (loss, logprobs, stats)``; ``stats`` must hold ``ppo/approx_kl``,
                the minibatch's KL from the rollout policy before the step.
            epochs: Passes.
            minibatches: Minibatches a pass.
            shuffle: Shuffle the rows each pass.
        """
        guard = StepGuard(self, self.config.max_update_kl)
        self.policy_version += 1  # from here on the weights move: batches sampled before are off-policy
        rows = len(batch.completions)
        size = max(1, rows // minibatches)
        behaviour = old_logprobs if old_logprobs is not None else torch.zeros_like(batch.rewards)
        history: dict[str, list[float]] = {}
        stopped = False
        for epoch in range(epochs):
            order = torch.randperm(rows, generator=self.shuffle) if shuffle else torch.arange(rows)
            for first in range(0, rows, size):
                index = order[first : first + size].to(batch.tokens.device)
                mb = batch.rows(index)
                loss, logprobs, stats = loss_of(mb, index)
                if old_logprobs is None and epoch == 0:
                    behaviour[index] = logprobs.detach() * mb.valid
                if guard.exceeded(stats["ppo/approx_kl"]):
                    guard.undo_last()
                    history.setdefault("ppo/approx_kl", []).append(stats["ppo/approx_kl"])
                    stopped = True
                    break
                guard.before_step()
                self.optimizer.zero_grad()
                loss.backward()
                stats["grad/norm"] = self.clip_gradients()
                self.optimizer.step()
                for key, value in stats.items():
                    history.setdefault(key, []).append(value)
            if stopped:
                break
        out = {key: float(np.mean(values)) for key, values in history.items()}
        out.update(
            {
                "ppo/post_update_kl": guard.finish(batch, behaviour),
                "ppo/steps": float(guard.steps),
                "ppo/undone_steps": float(guard.undone),
                "ppo/early_stop": float(stopped),
            }
        )
        self.behaviour_logprobs = behaviour
        return out

    def update_kl_coef(self, kl_per_episode: float) -> None:
        """Adaptive KL controller (see :class:`~textgym.agents.kl_control.KLController`)."""
        self.kl.update(kl_per_episode)

    def after_update(self) -> None:
        """Lets a self-critic follow the new weights."""
        if self.config.self_critique:
            self.critic.refresh()

    def update(self, batch: Batch) -> dict[str, float]:
        """One update from a batch; returns statistics to log."""
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        """One iteration: rollout, update, statistics."""
        start = time.perf_counter()
        batch = self.rollout(self.seeds(self.iteration))
        rollout_seconds = time.perf_counter() - start
        self.score_seconds = 0.0
        learning_rate = self.warm_up()
        stats = self.update(batch)
        self.after_update()
        self.iteration += 1
        self.episodes += len(batch.completions)
        stats.update(
            {
                "reward/extrinsic": float(batch.extrinsic.mean()),
                "reward/critic": float(batch.critic_reward.mean()),
                "reward/return": float(batch.rewards.sum(1).mean()),
                "episode/length": float(batch.valid.sum(1).float().mean()),
                "episode/eos_share": float(np.mean(batch.terminated)),
                "charts/learning_rate": learning_rate,
                "time/rollout_s": rollout_seconds,
                "time/score_s": self.score_seconds,
                "time/update_s": time.perf_counter() - start - rollout_seconds - self.score_seconds,
                **self.critic_counts(batch),
            }
        )
        return stats

    @staticmethod
    def critic_counts(batch: Batch) -> dict[str, float]:
        """A dense reward's work and a critic's after this batch, and this batch's fallbacks.

        ``dense/`` holds the dense reward's queries, cache hits, evaluations and failures; ``critic/`` a critic's
        calls and hit rate; both cumulative for the reward object (they restart with a resumed run). Each episode's
        info holds the counts when it ended, and the rows end at different steps: the latest are those with the
        most requests (the counts only grow), not the last row's.
        """
        out: dict[str, float] = {}
        for source, prefix in (("reward", "dense"), ("critic", "critic")):
            stats = [info[f"{source}_stats"] for info in batch.infos if f"{source}_stats" in info]
            if stats:
                latest = max(stats, key=lambda counts: counts.get("requests", 0))
                numbers = {key: value for key, value in latest.items() if isinstance(value, (int, float, np.number))}
                out.update({f"{prefix}/{key}": float(value) for key, value in numbers.items()})
            fallbacks = [bool(info[f"{source}_fallback"]) for info in batch.infos if f"{source}_fallback" in info]
            if fallbacks:
                out[f"{prefix}/fallback_episodes"] = float(sum(fallbacks))
        return out

    # -- evaluation -----------------------------------------------------------------------------------------

    def evaluate(self, episodes: int | None = None) -> dict[str, Any]:
        """Mean extrinsic reward and KL to the reference on the eval split (see :mod:`textgym.agents.lm_eval`)."""
        c = self.config
        episodes = c.eval_episodes if episodes is None else episodes
        if not hasattr(self, "eval_envs"):
            placement = {"device": str(self.device), "dtype": c.dtype}
            self.eval_envs = make_eval_envs(c.env_id, c.model, min(c.num_envs, episodes), {**placement, **c.env_kwargs})
        return evaluate_lm(
            self.eval_envs, self.policy.lm, self.reference, episodes, c.temperature, c.top_k, c.top_p, self.trunk,
            self.decode, c.share_prompts,
        )  # fmt: skip

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly."""
        return {
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "episodes": self.episodes,
            "kl_coef": self.kl.coef,
            "policy": self.policy.trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "shuffle": self.shuffle.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s output."""
        missing, unexpected = self.policy.load_state_dict(state["policy"], strict=False)
        self.policy_version += 1
        trainable = set(self.policy.trainable_state())
        if unexpected or trainable - set(state["policy"]):
            raise ValueError(f"The checkpoint does not match this policy (unexpected {unexpected[:3]}).")
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.shuffle.set_state(state["shuffle"])
        self.iteration, self.episodes, self.kl.coef = state["iteration"], state["episodes"], state["kl_coef"]
        self.after_update()

    def close(self) -> None:
        """Closes the environments."""
        self.envs.close()
        if hasattr(self, "eval_envs"):
            self.eval_envs.close()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is set."""
    mask = mask.float()
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` standardised over the masked entries (zero where the mask is off)."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + 1e-8) * mask.float()


def finite(value: float) -> float:
    """``value``, or raises when it is NaN or infinite (a diverged update must stop the run, not poison it)."""
    if not math.isfinite(value):
        raise FloatingPointError("The update produced a non-finite loss; lower the learning rate.")
    return value
