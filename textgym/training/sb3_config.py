"""The settings of an SB3 run (``sb3-a2c``: :class:`SB3Config`, ``sb3-ppo``: :class:`SB3PPOConfig`).

Kept apart from :mod:`textgym.training.sb3` so that reading them (the command line builds its flags from them)
needs no stable-baselines3, which is an optional extra.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from textgym.models import DEFAULT_POLICY_MODEL


@dataclass
class SB3Config:
    """Settings of SB3's A2C (and the base of PPO's) with :class:`~textgym.agents.sb3.TextGymLMPolicy`.

    ``gamma`` and ``lam`` (SB3's ``gae_lambda``) default to LM-PPO's values, 1 and 0.95, not SB3's (0.99, and a
    lambda of 1 for A2C), so that SB3 and textgym's agents are compared on the same returns and advantages. Fields
    that LM-PPO also has carry its names, so one flag sets both.

    Attributes:
        env_id: A registered textgym id.
        env_kwargs: Extra arguments of the env (e.g. ``{"mode": "prefix"}``).
        model: The policy's model (named, folder or hub id); the env's tokenizer follows it.
        seed: Seeds SB3 (its env resets, sampling and shuffling).
        iterations: Rollouts of ``n_steps`` tokens, each followed by an update.
        n_steps: Tokens (env steps) per rollout, of each training env.
        learning_rate: Adam step size of the LM and its value head (SB3 uses one for both).
        gamma: Discount over tokens.
        lam: GAE lambda.
        freeze_layers: Embeddings and this many lowest layers are frozen and shared with the reference (None:
            60 % of the layers, rounded down; 0 trains everything).
        eval_episodes: Episodes of each evaluation on the eval split (0: no evaluation); SB3 runs evaluate before
            and after training.
        num_envs: Envs stepped together in evaluation.
        train_envs: Envs SB3 steps together while training (a rollout is ``n_steps`` tokens of each; the policy runs
            them as one batch).
        device: Where the policy and reference run: auto (a GPU when there is one), cpu, cuda or cuda:N.
        dtype: The LM's weights: float32 or bfloat16 (the value head stays float32).
    """

    env_id: str = "TextSentiment-critic-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = DEFAULT_POLICY_MODEL
    seed: int = 0
    iterations: int = 10
    n_steps: int = 64
    learning_rate: float = 1e-5
    gamma: float = 1.0
    lam: float = 0.95
    freeze_layers: int | None = None
    eval_episodes: int = 16
    num_envs: int = 8
    train_envs: int = 1
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        from textgym.error import SettingsError

        checks = self._checks()
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise SettingsError(f"Invalid settings of {type(self).__name__}: need {'; '.join(failed)}.")
        from textgym.devices import check_device_settings

        check_device_settings(self.device, self.dtype)

    def _checks(self) -> dict[str, bool]:
        return {
            "iterations >= 0": self.iterations >= 0,
            "n_steps >= 1": self.n_steps >= 1,
            "learning_rate > 0": self.learning_rate > 0,
            "0 <= gamma <= 1": 0 <= self.gamma <= 1,
            "0 <= lam <= 1": 0 <= self.lam <= 1,
            "freeze_layers >= -1 or None (-1 freezes every layer)": self.freeze_layers is None
            or self.freeze_layers >= -1,
            "eval_episodes >= 0": self.eval_episodes >= 0,
            "num_envs >= 1": self.num_envs >= 1,
            "train_envs >= 1": self.train_envs >= 1,
        }

    def algorithm_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the SB3 algorithm these settings give (besides the policy and the env)."""
        from textgym.devices import resolve_device

        return {
            "n_steps": self.n_steps,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "gae_lambda": self.lam,
            "seed": self.seed,
            "device": str(resolve_device(self.device)),
            "policy_kwargs": {"model": self.model, "freeze_layers": self.freeze_layers, "dtype": self.dtype},
        }

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for ``config.json``)."""
        return asdict(self)


@dataclass
class SB3PPOConfig(SB3Config):
    """Settings of SB3's PPO (see :class:`SB3Config` for the shared ones).

    Attributes:
        batch_size: Minibatch size in tokens (at most a rollout's ``n_steps * train_envs``: a larger one is cut to it).
        n_epochs: Passes over each rollout.
    """

    batch_size: int = 32
    n_epochs: int = 2

    def _checks(self) -> dict[str, bool]:
        return {**super()._checks(), "batch_size >= 1": self.batch_size >= 1, "n_epochs >= 1": self.n_epochs >= 1}

    def algorithm_kwargs(self) -> dict[str, Any]:
        """A2C's arguments plus PPO's minibatch size and epochs."""
        batch_size = min(self.batch_size, self.n_steps * self.train_envs)
        return {**super().algorithm_kwargs(), "batch_size": batch_size, "n_epochs": self.n_epochs}
