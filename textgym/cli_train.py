"""The training commands of the ``textgym`` command line: ``textgym train`` and ``textgym compare`` (the main job)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMPARE_IDS = ("TextSentiment-critic-v0", "TextSentiment-sparse-v0")
MAIN_JOB = {"iterations": 12, "num_envs": 8, "max_new_tokens": 20, "eval_episodes": 32, "eval_every": 6}
"""The main job's budget: a few minutes per environment on 2 CPU cores (see the README)."""


def agent_config(args: argparse.Namespace, env_id: str, seed: int) -> dict[str, Any]:
    """The agent settings the command-line flags give (flags left unset keep the config class's defaults)."""
    config: dict[str, Any] = {"env_id": env_id, "seed": seed}
    env_kwargs: dict[str, Any] = {}
    for flag, key in (
        ("iterations", "iterations"),
        ("num_envs", "num_envs"),
        ("learning_rate", "learning_rate"),
        ("kl_coef", "kl_coef"),
        ("target_kl", "target_kl"),
        ("temperature", "temperature"),
        ("top_k", "top_k"),
        ("top_p", "top_p"),
        ("freeze_layers", "freeze_layers"),
        ("eval_episodes", "eval_episodes"),
        ("eval_every", "eval_every"),
        ("model", "model"),
        ("n_steps", "n_steps"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            config[key] = value
    if getattr(args, "self_critique", False):
        config["self_critique"] = True
    if args.max_new_tokens is not None:
        env_kwargs["max_new_tokens"] = args.max_new_tokens
    if getattr(args, "prompts_path", None):
        env_kwargs["prompts_path"] = args.prompts_path
    if "-critic-" in env_id:
        if getattr(args, "mode", None):
            env_kwargs["mode"] = args.mode
        if getattr(args, "critic", None):
            env_kwargs["critic"] = args.critic
    for item in getattr(args, "set", None) or []:
        key, _, raw = item.partition("=")
        try:
            config[key] = json.loads(raw)
        except json.JSONDecodeError:
            config[key] = raw
    config["env_kwargs"] = {**env_kwargs, **config.get("env_kwargs", {})}
    return config


def cmd_train(args: argparse.Namespace) -> int:
    """Trains one agent on one environment id and prints its before/after evaluation."""
    from textgym.training import train

    out = Path(args.out or f"runs/{args.agent}-{args.env_id}-seed{args.seed}")
    config = agent_config(args, args.env_id, args.seed)
    if args.agent.startswith("sb3-"):
        from textgym.training_sb3 import DEFAULTS

        dropped = sorted(key for key in config if key not in DEFAULTS)
        if dropped:
            print(f"textgym: note: {args.agent} ignores {dropped} (settings of textgym's own agents)", file=sys.stderr)
        config = {key: value for key, value in config.items() if key in DEFAULTS}
    summary = train(args.agent, config, out, resume=args.resume)
    _print_table([summary])
    print(f"Wrote {out}/ (TensorBoard logs, metrics.jsonl, a checkpoint, summary.json, learning_curve.png)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The main job: trains LM-PPO on each id (critic and sparse rewards by default), prints and plots both."""
    from textgym.training import plot_curves, train

    out = Path(args.out)
    summaries, runs = [], {}
    for env_id in args.env_ids:
        for seed in args.seeds:
            run = out / f"{env_id}-seed{seed}"
            summaries.append(train(args.agent, agent_config(args, env_id, seed), run, resume=args.resume))
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


def _training_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    from textgym.training import AGENTS

    defaults = defaults or {}
    parser.add_argument("--agent", default="lmppo", choices=AGENTS)
    parser.add_argument("--n-steps", type=int, default=None, help="SB3 agents: tokens per rollout")
    parser.add_argument("--iterations", type=int, default=defaults.get("iterations"), help="rollout+update rounds")
    parser.add_argument("--num-envs", type=int, default=defaults.get("num_envs"), help="episodes per round")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.get("max_new_tokens"))
    parser.add_argument("--prompts-path", default=None, help="a prompt file (see textgym data prepare)")
    parser.add_argument("--eval-episodes", type=int, default=defaults.get("eval_episodes"))
    parser.add_argument("--eval-every", type=int, default=defaults.get("eval_every"))
    parser.add_argument("--learning-rate", "--lr", type=float, default=None)
    parser.add_argument("--kl-coef", type=float, default=None, help="KL penalty coefficient (start value if adaptive)")
    parser.add_argument("--target-kl", type=float, default=None, help="adaptive KL target per episode")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--freeze-layers", type=int, default=None, help="lowest layers frozen and shared with ref")
    parser.add_argument("--model", default=None, help="policy model: named, folder or hub id")
    parser.add_argument("--mode", choices=["episode", "prefix"], default=None, help="critic reward mode")
    parser.add_argument("--critic", default=None, help="critic spec for *-critic-v0 ids (see critic-eval)")
    parser.add_argument("--self-critique", action="store_true", help="the critic uses the live policy model")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other agent setting (JSON value)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ``train`` and ``compare`` to the ``textgym`` command's sub-commands."""
    train = commands.add_parser("train", help="train an agent on an environment id")
    train.add_argument("env_id", help="a registered textgym id, e.g. TextSentiment-critic-v0")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="run folder (default runs/AGENT-ENV_ID-seedSEED)")
    _training_flags(train)
    train.set_defaults(func=cmd_train)
    compare = commands.add_parser("compare", help="the main job: LM-PPO on critic vs sparse rewards, table and plot")
    compare.add_argument("env_ids", nargs="*", default=list(COMPARE_IDS))
    compare.add_argument("--seeds", type=int, nargs="+", default=[0])
    compare.add_argument("--out", default="runs/compare")
    _training_flags(compare, MAIN_JOB)
    compare.set_defaults(func=cmd_compare)
