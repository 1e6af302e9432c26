"""The training loop of stable-baselines3's PPO and A2C with :class:`~textgym.agents.sb3.TextGymLMPolicy`.

The run folder is the LM loop's (:class:`~textgym.training.run_folder.RunFolder`): TensorBoard logs (SB3's own,
plus ``reward/extrinsic`` and ``reward/critic`` per rollout), ``metrics.jsonl``, ``checkpoint.zip`` (SB3's format,
written atomically after every rollout), ``summary.json`` and ``learning_curve.png``. ``resume=True`` loads the
checkpoint and continues with the remaining timesteps; SB3 does not save its random generators, so a resumed SB3
run continues but is not bit-identical to an uninterrupted one (textgym's own agents are).

The model is built with the fast paths of :mod:`textgym.agents.sb3`: the policy's key/value cache while collecting
(on by default in :class:`~textgym.agents.sb3.TextGymLMPolicy`) and
:class:`~textgym.agents.sb3.EpisodeRolloutBuffer`, whose minibatches of whole episodes let one forward pass serve
all of an episode's steps in the update.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from textgym.files import atomic_write
from textgym.models import load_causal_lm
from textgym.training.registry import AgentSpec, make_config
from textgym.training.report import summarize_run
from textgym.training.run_folder import RunFolder
from textgym.training.sb3_config import SB3Config


class RunLogger(BaseCallback):
    """Logs each rollout's mean extrinsic and critic reward, then writes an atomic checkpoint.

    The rewards are those of the episodes that finished during the rollout; they go to TensorBoard (through SB3's
    logger) and to ``metrics.jsonl``.
    """

    def __init__(self, run: RunFolder) -> None:
        super().__init__()
        self.run = run
        self.extrinsic: list[float] = []
        self.critic: list[float] = []
        self.episodes = 0
        self.clock, self.cpu_clock = time.perf_counter(), time.process_time()

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
            "time/iteration_cpu_s": time.process_time() - self.cpu_clock,
        }
        self.clock, self.cpu_clock = time.perf_counter(), time.process_time()
        for key, value in stats.items():
            self.logger.record(key, value)
        self.run.log({"kind": "train", "iteration": self.num_timesteps, "episodes": self.episodes, **stats})
        self.extrinsic, self.critic = [], []
        atomic_write(self.run.checkpoint, self.model.save)


def build_model(algorithm: type[BaseAlgorithm], config: SB3Config, env: gym.Env | VecEnv, log_dir: str | None = None):
    """A new SB3 ``algorithm`` (PPO or A2C) with the LM policy on ``env``, set up as ``config`` says.

    Its rollout buffer is :class:`~textgym.agents.sb3.EpisodeRolloutBuffer` (minibatches of whole episodes).
    """
    from textgym.agents.sb3 import EpisodeRolloutBuffer, TextGymLMPolicy

    return algorithm(
        TextGymLMPolicy, env, tensorboard_log=log_dir, rollout_buffer_class=EpisodeRolloutBuffer,
        **config.algorithm_kwargs(),
    )  # fmt: skip


def train_sb3(
    spec: AgentSpec,
    config: dict[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    checkpoint_every: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains SB3 PPO or A2C with the LM policy; returns the same summary as the LM loop.

    Args:
        spec: The agent's registry entry (its ``agent`` is the SB3 algorithm).
        config: The settings (see :class:`~textgym.training.sb3_config.SB3Config`).
        run_dir: The run folder.
        resume: Continue from the run folder's checkpoint.
        checkpoint_every: Unused: SB3 runs write a checkpoint after every rollout.
        progress: Show SB3's progress bar.
    """
    from textgym.agents.lm_eval import evaluate_lm, make_eval_envs
    from textgym.agents.sb3 import TokenRewardCredit

    c = make_config(spec.name, config)
    algorithm = spec.agent_class()
    run = RunFolder(run_dir, spec.loop).create()
    device = c.algorithm_kwargs()["device"]
    # The envs stay on the CPU; their scorer's and critic's models follow the policy's device and dtype.
    env_kwargs = {"device": device, "dtype": c.dtype, **c.env_kwargs}
    env = make_vec_env(functools.partial(gym.make, c.env_id, model=c.model, **env_kwargs), n_envs=c.train_envs)
    total = c.iterations * c.n_steps * c.train_envs
    resumed = resume and run.checkpoint.exists()
    if resumed:
        model = algorithm.load(run.checkpoint, env=env, tensorboard_log=str(run.path), device=device)
        run.cut_metrics(model.num_timesteps, kinds=("train",))
    else:
        model = build_model(algorithm, c, env, str(run.path))
        run.start_metrics()
        run.write_config(spec.name, c.to_dict())
    run.record_environment(model.num_timesteps, resumed)
    lm, reference = model.policy.net.lm, load_causal_lm(c.model, device=c.device, dtype=c.dtype)
    eval_envs = make_eval_envs(c.env_id, c.model, min(c.num_envs, c.eval_episodes or 1), env_kwargs)

    logger = RunLogger(run)
    train_records = run.records("train")
    logger.episodes = train_records[-1]["episodes"] if train_records else 0

    def evaluate() -> dict[str, Any]:
        result = evaluate_lm(eval_envs, lm, reference, c.eval_episodes)
        return run.log(
            {
                "kind": "eval", "iteration": model.num_timesteps, "episodes": logger.episodes,
                "eval/extrinsic": result["extrinsic_mean"], "eval/kl": result["kl_mean"], "samples": result["samples"],
            }
        )  # fmt: skip

    evaluations = run.records("eval")
    if c.eval_episodes and not evaluations:
        evaluations.append(evaluate())
    remaining = total - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining, callback=CallbackList([TokenRewardCredit(), logger]), progress_bar=progress,
            reset_num_timesteps=False, tb_log_name=spec.name,
        )  # fmt: skip
    if c.eval_episodes:
        evaluations.append(evaluate())
    env.close()
    eval_envs.close()
    return summarize_run(run.path, spec.name, c.to_dict(), evaluations)
