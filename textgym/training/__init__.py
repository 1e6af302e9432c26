"""Training runs: the agent registry, the run folder, and the loops that fill it.

:func:`train` trains any registered agent (:data:`AGENTS`) into a run folder (:class:`RunFolder`): textgym's own
agents in :mod:`textgym.training.lm`, stable-baselines3's in :mod:`textgym.training.sb3`. Importing this package
loads neither torch nor SB3; the loops import them when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textgym.training.lm import make_agent, save_checkpoint
from textgym.training.registry import AGENT_SPECS, AGENTS, LOOPS, AgentSpec, agent_spec, load, make_config
from textgym.training.report import plot_curves, summarize_run
from textgym.training.run_folder import RunFolder

__all__ = [
    "AGENTS",
    "AGENT_SPECS",
    "AgentSpec",
    "RunFolder",
    "agent_spec",
    "make_agent",
    "make_config",
    "plot_curves",
    "save_checkpoint",
    "summarize_run",
    "train",
]


def train(
    agent_name: str,
    config: dict[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    checkpoint_every: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains a registered agent for ``config["iterations"]`` iterations in ``run_dir`` and returns its summary.

    Args:
        agent_name: A name of :data:`AGENTS` (``"lmppo"``, ``"rloo"``, ``"sb3-ppo"``, ...).
        config: The agent's settings, the fields of its config class (unknown keys raise a
            :class:`~textgym.error.SettingsError`).
        run_dir: The run folder.
        resume: Continue from the run folder's checkpoint.
        checkpoint_every: Write a checkpoint every this many iterations (and after the last); SB3 runs write one
            after every rollout.
        progress: Show a progress bar.

    Returns:
        The summary written to ``summary.json``: agent, env id, seed, iterations, episodes, the first and last
        evaluation's mean extrinsic reward, the last one's KL to the reference, and the training seconds.
    """
    spec = agent_spec(agent_name)
    loop = load(LOOPS[spec.loop])
    return loop(spec, config, run_dir, resume=resume, checkpoint_every=checkpoint_every, progress=progress)
