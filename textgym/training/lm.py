"""The training loop of textgym's own LM agents (LM-PPO, RLOO, ...): ``agent.step()`` once per iteration.

With a progress bar, TensorBoard logs, evaluation, checkpoints, resume and a final summary with a learning curve, in
a :class:`~textgym.training.run_folder.RunFolder`. The checkpoint is written atomically after every
``checkpoint_every`` iterations, so a kill never leaves a corrupt one. ``resume=True`` continues from it: the
iterations already done are not repeated and the metrics file is cut back to the checkpoint, so a killed run
resumed gives the run that was not killed (bit for bit: the agents checkpoint their random generators).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textgym.error import SettingsError
from textgym.files import atomic_write
from textgym.training.registry import AgentSpec, agent_spec, make_config
from textgym.training.report import summarize_run
from textgym.training.run_folder import RunFolder

FINAL_COMPLETIONS = "final_completions.jsonl"
"""Every completion of a run's last evaluation (prompt, completion, reward), one JSON object per line."""

if TYPE_CHECKING:
    from textgym.agents.lm_agent import LMAgent

log = logging.getLogger(__name__)


def make_agent(agent: str, config: dict[str, Any]) -> LMAgent:
    """Builds one of textgym's own agents by name from a config dict (unknown keys raise a clear error)."""
    spec = agent_spec(agent)
    if spec.loop != "lm":
        raise SettingsError(
            f"{agent} is not one of textgym's own agents: it trains in its library's loop. Train it with "
            f"textgym.training.train({agent!r}, config, run_dir) or `textgym train ENV_ID --agent {agent}`."
        )
    return spec.agent_class()(make_config(agent, config))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically (see :func:`textgym.files.atomic_write`)."""
    import torch

    atomic_write(path, lambda temporary: torch.save(state, temporary))


def train_lm(
    spec: AgentSpec,
    config: dict[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    checkpoint_every: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains an LM agent for ``config["iterations"]`` iterations and returns the summary.

    Args:
        spec: The agent's registry entry.
        config: The agent's settings (see its config class).
        run_dir: The run folder.
        resume: Continue from the run folder's checkpoint (its config is used; ``config`` may raise
            ``iterations``).
        checkpoint_every: Write a checkpoint every this many iterations (and after the last).
        progress: Show a progress bar.
    """
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    run = RunFolder(run_dir, spec.loop).create()
    state = None
    if resume and run.checkpoint.exists():
        state = torch.load(run.checkpoint, weights_only=False)
        config = {**config, **state["config"], "iterations": config.get("iterations", state["config"]["iterations"])}
    elif resume:
        log.warning("No checkpoint in %s: starting a new run.", run.path)
    agent = make_agent(spec.name, config)
    if state is not None:
        agent.load_state_dict(state)
        run.cut_metrics(agent.iteration)
    else:
        run.start_metrics()
        run.write_config(spec.name, agent.config.to_dict())
    run.record_environment(agent.iteration, resumed=state is not None)
    writer = SummaryWriter(str(run.path), purge_step=agent.episodes if state is not None else None)
    c = agent.config
    evaluations = run.records("eval")
    try:
        if agent.iteration == 0 and c.eval_episodes:
            evaluations.append(_evaluate(agent, writer, run))
        with tqdm(
            total=c.iterations, initial=agent.iteration, desc=f"{spec.name} {c.env_id}", disable=not progress
        ) as bar:
            while agent.iteration < c.iterations:
                start, cpu = time.perf_counter(), time.process_time()
                stats = agent.step()
                stats["time/iteration_s"] = time.perf_counter() - start
                stats["time/iteration_cpu_s"] = time.process_time() - cpu  # all threads of this process
                _log(writer, run, "train", agent, stats)
                bar.set_postfix(reward=f"{stats['reward/extrinsic']:.3f}", kl=f"{stats['kl/per_episode']:.2f}")
                bar.update()
                last = agent.iteration == c.iterations
                if c.eval_episodes and (agent.iteration % c.eval_every == 0 or last):
                    evaluations.append(_evaluate(agent, writer, run, final=last))
                if agent.iteration % checkpoint_every == 0 or last:
                    save_checkpoint(run.checkpoint, agent.state_dict())
    finally:
        writer.close()
        agent.close()
    return summarize_run(run.path, spec.name, agent.config.to_dict(), evaluations)


def _evaluate(agent: LMAgent, writer, run: RunFolder, final: bool = False) -> dict[str, Any]:
    result = agent.evaluate()
    if final:  # every completion of the last evaluation, for judges that no reward used (the reward-hacking check)
        lines = "".join(json.dumps(row) + "\n" for row in result["completions"])
        atomic_write(run.path / FINAL_COMPLETIONS, lambda temporary: temporary.write_text(lines, encoding="utf-8"))
    return _log(
        writer,
        run,
        "eval",
        agent,
        {"eval/extrinsic": result["extrinsic_mean"], "eval/kl": result["kl_mean"]},
        extra={"samples": result["samples"], "extrinsic_std": result["extrinsic_std"]},
    )


def _log(writer, run: RunFolder, kind: str, agent: LMAgent, stats: dict[str, float], extra=None) -> dict[str, Any]:
    for key, value in stats.items():
        writer.add_scalar(key, value, agent.episodes)
    return run.log({"kind": kind, "iteration": agent.iteration, "episodes": agent.episodes, **stats, **(extra or {})})
