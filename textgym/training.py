"""Training runs: the loop around an agent.

With a progress bar, TensorBoard logs, evaluation, checkpoints, resume and a final summary with a learning curve.
A run folder holds ``config.json``, ``events.*`` (TensorBoard), ``metrics.jsonl`` (one line per iteration and per
evaluation), ``checkpoint.pt`` (written atomically: to a temporary file, then renamed, so a kill never leaves a
corrupt one), ``summary.json`` and ``learning_curve.png``. ``resume=True`` continues from the checkpoint: the
iterations already done are not repeated and the metrics file is cut back to the checkpoint, so a killed run
resumed gives the run that was not killed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from textgym.agents.lm_agent import LMAgent, LMAgentConfig
from textgym.metrics_log import read_metrics, truncate_metrics

log = logging.getLogger(__name__)

AGENTS = ("lmppo", "rloo", "sb3-ppo", "sb3-a2c")


def make_agent(agent: str, config: dict[str, Any]) -> LMAgent:
    """Builds an agent by name from a config dict (unknown keys raise a clear error)."""
    from textgym.error import unknown_name

    if agent == "lmppo":
        from textgym.agents.lm_ppo import LMPPO, LMPPOConfig

        return LMPPO(_config(LMPPOConfig, config))
    if agent == "rloo":
        from textgym.agents.rloo import RLOO, RLOOConfig

        return RLOO(_config(RLOOConfig, config))
    raise unknown_name("agent", agent, AGENTS)


def _config(cls: type[LMAgentConfig], values: dict[str, Any]) -> LMAgentConfig:
    from dataclasses import fields

    from textgym.error import SettingsError

    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SettingsError(f"Unknown settings {unknown} for {cls.__name__}; known: {sorted(names)}.")
    return cls(**values)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def train(
    agent_name: str,
    config: dict[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    checkpoint_every: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains an agent for ``config["iterations"]`` iterations and returns the summary.

    Args:
        agent_name: ``"lmppo"``, ``"rloo"``, ``"sb3-ppo"`` or ``"sb3-a2c"`` (the SB3 ones run through
            :func:`textgym.training_sb3.train_sb3`, which takes its own settings).
        config: The agent's settings (see its config class).
        run_dir: The run folder.
        resume: Continue from ``run_dir/checkpoint.pt`` (its config is used; ``config`` must agree on it).
        checkpoint_every: Write a checkpoint every this many iterations (and after the last).
        progress: Show a progress bar.
    """
    if agent_name.startswith("sb3-"):
        from textgym.training_sb3 import train_sb3

        return train_sb3(agent_name, config, run_dir, resume=resume, progress=progress)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    checkpoint = run / "checkpoint.pt"
    state = None
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        config = {**config, **state["config"], "iterations": config.get("iterations", state["config"]["iterations"])}
    elif resume:
        log.warning("No checkpoint in %s: starting a new run.", run)
    agent = make_agent(agent_name, config)
    metrics_path = run / "metrics.jsonl"
    if state is not None:
        agent.load_state_dict(state)
        truncate_metrics(metrics_path, agent.iteration)
    else:
        metrics_path.write_text("")
        (run / "config.json").write_text(json.dumps({"agent": agent_name, **agent.config.to_dict()}, indent=2))
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run), purge_step=agent.episodes if state is not None else None)
    c = agent.config
    evaluations = [m for m in read_metrics(metrics_path) if m["kind"] == "eval"]
    try:
        if agent.iteration == 0 and c.eval_episodes:
            evaluations.append(_evaluate(agent, writer, metrics_path))
        with tqdm(
            total=c.iterations, initial=agent.iteration, desc=f"{agent_name} {c.env_id}", disable=not progress
        ) as bar:  # noqa: E501
            while agent.iteration < c.iterations:
                start = time.perf_counter()
                stats = agent.step()
                stats["time/iteration_s"] = time.perf_counter() - start
                _log(writer, metrics_path, "train", agent, stats)
                bar.set_postfix(reward=f"{stats['reward/extrinsic']:.3f}", kl=f"{stats['kl/per_episode']:.2f}")
                bar.update()
                last = agent.iteration == c.iterations
                if c.eval_episodes and (agent.iteration % c.eval_every == 0 or last):
                    evaluations.append(_evaluate(agent, writer, metrics_path))
                if agent.iteration % checkpoint_every == 0 or last:
                    save_checkpoint(checkpoint, agent.state_dict())
    finally:
        writer.close()
        agent.close()
    summary = summarize_run(run, agent_name, agent.config.to_dict(), evaluations)
    return summary


def _evaluate(agent: LMAgent, writer, metrics_path: Path) -> dict[str, Any]:
    result = agent.evaluate()
    record = _log(
        writer,
        metrics_path,
        "eval",
        agent,
        {"eval/extrinsic": result["extrinsic_mean"], "eval/kl": result["kl_mean"]},
        extra={"samples": result["samples"], "extrinsic_std": result["extrinsic_std"]},
    )
    return record


def _log(writer, path: Path, kind: str, agent: LMAgent, stats: dict[str, float], extra=None) -> dict[str, Any]:
    for key, value in stats.items():
        writer.add_scalar(key, value, agent.episodes)
    record = {"kind": kind, "iteration": agent.iteration, "episodes": agent.episodes, **stats, **(extra or {})}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return record


def summarize_run(run: Path, agent_name: str, config: dict[str, Any], evaluations: list[dict]) -> dict[str, Any]:
    """Writes ``summary.json`` and ``learning_curve.png`` for a finished run and returns the summary."""
    train_records = [m for m in read_metrics(run / "metrics.jsonl") if m["kind"] == "train"]
    summary = {
        "agent": agent_name,
        "env_id": config["env_id"],
        "seed": config["seed"],
        "iterations": len(train_records),
        "episodes": train_records[-1]["episodes"] if train_records else 0,
        "eval_before": evaluations[0]["eval/extrinsic"] if evaluations else None,
        "eval_after": evaluations[-1]["eval/extrinsic"] if evaluations else None,
        "kl_after": evaluations[-1]["eval/kl"] if evaluations else None,
        "seconds": sum(m["time/iteration_s"] for m in train_records),
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_curves({f"{agent_name} {config['env_id']}": run}, run / "learning_curve.png")
    return summary


def plot_curves(runs: dict[str, Path], out: Path) -> None:
    """Plots eval (and faint train-batch) extrinsic reward against episodes for several runs in one PNG.

    Runs of the same environment id and agent share a colour (their seeds are drawn in it) and one legend entry.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    colours: dict[str, str] = {}
    for label, run in runs.items():
        config_path = Path(run) / "config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        group = f"{config.get('agent', '')} {config.get('env_id', label)}".strip()
        first = group not in colours
        colour = colours.setdefault(group, f"C{len(colours)}")
        metrics = read_metrics(Path(run) / "metrics.jsonl")
        train_points = [(m["episodes"], m["reward/extrinsic"]) for m in metrics if m["kind"] == "train"]
        eval_points = [(m["episodes"], m["eval/extrinsic"]) for m in metrics if m["kind"] == "eval"]
        if train_points:
            axis.plot(*zip(*train_points, strict=True), color=colour, alpha=0.2, linewidth=0.8)
        if eval_points:
            axis.plot(*zip(*eval_points, strict=True), "o-", color=colour, label=f"{group} (eval)" if first else None)
    axis.set_xlabel("training episodes")
    axis.set_ylabel("mean extrinsic reward")
    axis.set_title("eval prompts (dots) and training batches (faint)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
