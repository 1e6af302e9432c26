"""The training commands of the ``textgym`` command line: ``textgym train`` and ``textgym compare`` (the main job).

Their agent flags are generated from the registered agents' config dataclasses (:mod:`textgym.cli_flags`): every
config field is a flag, documented by its config's docstring, so a new agent or setting needs no change here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMPARE_IDS = ("TextSentiment-critic-v0", "TextSentiment-sparse-v0")
MAIN_JOB = {"iterations": 32, "num_envs": 8, "eval_episodes": 32, "eval_every": 8}
"""The main job's budget: 256 episodes of the task's own length per environment, 5-10 minutes each on 2 CPU cores.
These are the rewards grid's settings (``benchmarks/grids/rewards.yaml``), so its LM-PPO sentiment sparse and critic
runs are the main job's seeds (see the README); at 96 episodes neither reward had yet moved the eval score."""

NOT_FLAGS = ("env_id", "seed", "env_kwargs")
"""Config fields with no generated flag: the env id is positional, the seed has its own flag(s), and env arguments
come from the env flags and ``--set env_kwargs=...``."""
ALIASES = {"learning_rate": ["--lr"]}
DENSE_ENV_FLAGS = ("mode", "critic")
"""Env flags that only some envs take: ``--mode`` a dense reward's, ``--critic`` a critic's (see :func:`env_flags`)."""


def env_flags(env_id: str) -> tuple[str, ...]:
    """The dense-reward env flags that ``env_id`` takes (read from its spec's reward kind)."""
    from textgym.envs.registration import reward_of

    reward = reward_of(env_id)
    return () if reward == "sparse" else ("mode", "critic") if reward == "critic" else ("mode",)


def agent_config(
    args: argparse.Namespace, env_id: str, seed: int, defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The settings of ``args.agent`` that the command line gives (settings not given keep the config's defaults).

    Args:
        args: The parsed command line.
        env_id: The env id of the run.
        seed: The seed of the run.
        defaults: The command's own defaults (used where the agent's config has the field and no flag is given).

    Raises:
        SettingsError: A flag of another agent's config, or ``--mode`` / ``--critic`` for an env without a critic.
    """
    from textgym.cli_flags import given_settings
    from textgym.training import agent_spec

    takes = agent_spec(args.agent).setting_names()
    config = {key: value for key, value in (defaults or {}).items() if key in takes}
    config.update(given_settings(args, args.config_flags, args.agent, takes))
    config.update({"env_id": env_id, "seed": seed})
    env_kwargs: dict[str, Any] = {}
    if args.max_new_tokens is not None:
        env_kwargs["max_new_tokens"] = args.max_new_tokens
    if args.prompts_path:
        env_kwargs["prompts_path"] = args.prompts_path
    env_kwargs.update({key: getattr(args, key) for key in env_flags(env_id) if getattr(args, key)})
    for item in args.set or []:
        from textgym.bench.grid import parse_assignment

        key, value = parse_assignment(item)
        config[key] = value
    config["env_kwargs"] = {**env_kwargs, **config.get("env_kwargs", {})}
    return config


def _check_critic_flags(args: argparse.Namespace, env_ids: list[str]) -> None:
    from textgym.error import SettingsError

    for key in DENSE_ENV_FLAGS:
        if getattr(args, key) and not any(key in env_flags(env_id) for env_id in env_ids):
            kind = "a critic" if key == "critic" else "a dense reward"
            raise SettingsError(
                f"--{key} only applies to envs with {kind}, and {', '.join(env_ids)} have none: use a "
                f"Text*-{'critic' if key == 'critic' else '<reward>'}-v0 id (`textgym list` shows them)."
            )


def cmd_train(args: argparse.Namespace) -> int:
    """Trains one agent on one environment id and prints its before/after evaluation."""
    from textgym.training import train

    _check_critic_flags(args, [args.env_id])
    out = Path(args.out or f"runs/{args.agent}-{args.env_id}-seed{args.seed}")
    summary = train(args.agent, agent_config(args, args.env_id, args.seed), out, resume=args.resume)
    _print_table([summary])
    print(f"Wrote {out}/ (TensorBoard logs, metrics.jsonl, a checkpoint, summary.json, learning_curve.png)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The main job: trains LM-PPO on each id (critic and sparse rewards by default), prints and plots both."""
    from textgym.training import plot_curves, train

    _check_critic_flags(args, args.env_ids)
    out = Path(args.out)
    # every id's settings before the first run: a typo in the second id must not cost the first run's minutes
    configs = {
        (env_id, seed): agent_config(args, env_id, seed, MAIN_JOB) for env_id in args.env_ids for seed in args.seeds
    }
    summaries, runs = [], {}
    for (env_id, seed), config in configs.items():
        run = out / f"{env_id}-seed{seed}"
        summaries.append(train(args.agent, config, run, resume=args.resume))
        runs[f"{env_id} seed {seed}"] = run
    plot_curves(runs, out / "comparison.png")
    (out / "summary.json").write_text(json.dumps(summaries, indent=2))
    _print_table(summaries)
    print(f"Wrote {out / 'summary.json'} and {out / 'comparison.png'}; TensorBoard: tensorboard --logdir {out}")
    return 0


def _print_table(summaries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Mean extrinsic reward on the eval prompts, before and after training")
    for column in ("environment", "agent", "seed", "episodes", "before", "after", "change", "KL to ref", "minutes"):
        table.add_column(column, justify="left" if column == "environment" else "right", no_wrap=True)
    for s in summaries:
        before, after = s["eval_before"], s["eval_after"]
        known = before is not None and after is not None
        table.add_row(
            s["env_id"],
            s["agent"],
            str(s["seed"]),
            str(s["episodes"]),
            f"{before:.3f}" if before is not None else "-",
            f"{after:.3f}" if after is not None else "-",
            f"{after - before:+.3f}" if known else "-",
            f"{s['kl_after']:.2f}" if s["kl_after"] is not None else "-",
            f"{s['seconds'] / 60:.1f}",
        )
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def agents_help() -> str:
    """The agents' one-line descriptions, for the commands' help."""
    from textgym.training import AGENTS

    width = max(len(name) for name in AGENTS)
    lines = [f"  {spec.name:<{width}}  {spec.help}" for spec in AGENTS.values()]
    return "agents (--agent; each takes the flags of its group below):\n" + "\n".join(lines)


def _training_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    from textgym.cli_flags import add_config_flags
    from textgym.training import AGENTS

    defaults = defaults or {}
    parser.add_argument("--agent", default="lmppo", choices=AGENTS, help="the agent to train (default: lmppo)")
    env = parser.add_argument_group("environment (arguments of the env, for every agent)")
    limit = defaults.get("max_new_tokens") or "the task's limit"
    env.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.get("max_new_tokens"),
        help=f"the episode's length limit (default: {limit})",
    )
    env.add_argument("--prompts-path", default=None, help="a prompt file (see textgym data prepare)")
    env.add_argument(
        "--mode",
        choices=["episode", "prefix"],
        default=None,
        help="dense reward envs: payment mode (prefix: critic, potential)",
    )
    env.add_argument("--critic", default=None, help="critic envs: the critic spec (see critic-eval)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any agent setting (JSON value)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    configs = {spec.name: spec.config_class() for spec in AGENTS.values()}
    flags = add_config_flags(parser, configs, skip=NOT_FLAGS, defaults=defaults, aliases=ALIASES)
    parser.set_defaults(config_flags=flags)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ``train`` and ``compare`` to the ``textgym`` command's sub-commands."""
    raw = argparse.RawDescriptionHelpFormatter
    train = commands.add_parser(
        "train",
        help="train an agent on an environment id",
        description="Trains an agent on an environment id into a run folder.\n\n" + agents_help(),
        formatter_class=raw,
    )
    train.add_argument("env_id", help="a registered textgym id, e.g. TextSentiment-critic-v0")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="run folder (default runs/AGENT-ENV_ID-seedSEED)")
    _training_flags(train)
    train.set_defaults(func=cmd_train)
    compare = commands.add_parser(
        "compare",
        help="the main job: LM-PPO on critic vs sparse rewards, table and plot",
        description="The main job: trains an agent (LM-PPO by default) on each env id, then prints and plots the "
        "before/after evaluations.\n\n" + agents_help(),
        formatter_class=raw,
    )
    compare.add_argument("env_ids", nargs="*", default=list(COMPARE_IDS))
    compare.add_argument("--seeds", type=int, nargs="+", default=[0])
    compare.add_argument("--out", default="runs/compare")
    _training_flags(compare, MAIN_JOB)
    compare.set_defaults(func=cmd_compare)
