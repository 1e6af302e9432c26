"""Training runs with stable-baselines3's PPO or A2C and :class:`~textgym.agents.sb3.TextGymLMPolicy`.

The run folder matches :mod:`textgym.training`'s: TensorBoard logs (SB3's own, plus ``reward/extrinsic`` and
``reward/critic`` per rollout), ``metrics.jsonl``, ``checkpoint.zip`` (SB3's format, written atomically after
every rollout), ``summary.json`` and ``learning_curve.png``. ``resume=True`` loads the checkpoint and continues
with the remaining timesteps; SB3 does not save its random generators, so a resumed SB3 run continues but is not
bit-identical to an uninterrupted one (textgym's own agents are).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm

SB3_AGENTS = ("sb3-ppo", "sb3-a2c")
DEFAULTS = {
    "env_id": "TextSentiment-critic-v0",
    "env_kwargs": {},
    "model": DEFAULT_POLICY_MODEL,
    "seed": 0,
    "iterations": 10,
    "n_steps": 64,
    "batch_size": 32,
    "n_epochs": 2,
    "learning_rate": 1e-5,
    "freeze_layers": None,
    "eval_episodes": 16,
    "num_envs": 8,
}
"""Settings of an SB3 run (``iterations`` rollouts of ``n_steps`` tokens); ``num_envs`` sizes evaluation batches."""


class RunLogger(BaseCallback):
    """Logs each rollout's mean extrinsic and critic reward, then writes an atomic checkpoint.

    The rewards are those of the episodes that finished during the rollout; they go to TensorBoard (through SB3's
    logger) and to ``metrics.jsonl``.
    """

    def __init__(self, run: Path, metrics: Path) -> None:
        super().__init__()
        self.run, self.metrics = run, metrics
        self.extrinsic: list[float] = []
        self.critic: list[float] = []
        self.episodes = 0
        self.clock = time.perf_counter()

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done:
                self.extrinsic.append(float(info["extrinsic_score"]))
                self.critic.append(float(info.get("critic_reward", 0.0)))
        return True

    def _on_rollout_end(self) -> None:
        self.episodes += len(self.extrinsic)
        stats = {
            "reward/extrinsic": float(np.mean(self.extrinsic)) if self.extrinsic else float("nan"),
            "reward/critic": float(np.mean(self.critic)) if self.critic else float("nan"),
            "time/iteration_s": time.perf_counter() - self.clock,
        }
        self.clock = time.perf_counter()
        for key, value in stats.items():
            self.logger.record(key, value)
        record = {"kind": "train", "iteration": self.num_timesteps, "episodes": self.episodes, **stats}
        with open(self.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.extrinsic, self.critic = [], []
        temporary = self.run / ".checkpoint.tmp.zip"
        self.model.save(temporary)
        os.replace(temporary, self.run / "checkpoint.zip")


def train_sb3(
    agent: str, config: dict[str, Any], run_dir: str | Path, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Trains SB3 PPO or A2C with the LM policy; returns the same summary as :func:`textgym.training.train`."""
    from stable_baselines3 import A2C, PPO

    from textgym.agents.lm_eval import evaluate_lm, make_eval_envs
    from textgym.agents.sb3 import TextGymLMPolicy, TokenRewardCredit
    from textgym.error import SettingsError, unknown_name
    from textgym.metrics_log import read_metrics
    from textgym.training import summarize_run

    if agent not in SB3_AGENTS:
        raise unknown_name("SB3 agent", agent, SB3_AGENTS)
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise SettingsError(f"Unknown settings {unknown} for {agent}; known: {sorted(DEFAULTS)}.")
    c = {**DEFAULTS, **config}
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    metrics = run / "metrics.jsonl"
    env = gym.make(c["env_id"], model=c["model"], **c["env_kwargs"])
    algorithm = PPO if agent == "sb3-ppo" else A2C
    total = c["iterations"] * c["n_steps"]
    checkpoint = run / "checkpoint.zip"
    if resume and checkpoint.exists():
        model = algorithm.load(checkpoint, env=env, tensorboard_log=str(run))
        kept = [r for r in read_metrics(metrics) if r["kind"] != "train" or r["iteration"] <= model.num_timesteps]
        metrics.write_text("".join(json.dumps(r) + "\n" for r in kept))
    else:
        batch = min(c["batch_size"], c["n_steps"])
        kwargs = {"batch_size": batch, "n_epochs": c["n_epochs"]} if algorithm is PPO else {}
        model = algorithm(
            TextGymLMPolicy, env, n_steps=c["n_steps"], learning_rate=c["learning_rate"], seed=c["seed"],
            tensorboard_log=str(run), policy_kwargs={"model": c["model"], "freeze_layers": c["freeze_layers"]},
            **kwargs,
        )  # fmt: skip
        metrics.write_text("")
        (run / "config.json").write_text(json.dumps({"agent": agent, **c}, indent=2))
    lm, reference = model.policy.net.lm, load_causal_lm(c["model"])
    eval_envs = make_eval_envs(c["env_id"], c["model"], min(c["num_envs"], c["eval_episodes"] or 1), c["env_kwargs"])

    logger = RunLogger(run, metrics)
    train_records = [record for record in read_metrics(metrics) if record["kind"] == "train"]
    logger.episodes = train_records[-1]["episodes"] if train_records else 0

    def evaluate() -> dict[str, Any]:
        result = evaluate_lm(eval_envs, lm, reference, c["eval_episodes"])
        record = {
            "kind": "eval", "iteration": model.num_timesteps, "episodes": logger.episodes,
            "eval/extrinsic": result["extrinsic_mean"], "eval/kl": result["kl_mean"], "samples": result["samples"],
        }  # fmt: skip
        with open(metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    evaluations = [record for record in read_metrics(metrics) if record["kind"] == "eval"]
    if c["eval_episodes"] and not evaluations:
        evaluations.append(evaluate())
    remaining = total - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining, callback=CallbackList([TokenRewardCredit(), logger]), progress_bar=progress,
            reset_num_timesteps=False, tb_log_name=agent,
        )  # fmt: skip
    if c["eval_episodes"]:
        evaluations.append(evaluate())
    env.close()
    eval_envs.close()
    return summarize_run(run, agent, c, evaluations)

    return load_causal_lm(model)
