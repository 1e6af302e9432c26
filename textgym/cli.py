"""The ``textgym`` command line: list, rollout, critic-eval, train, compare, eval, bench and data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def default_rollout_ids() -> list[str]:
    """The sparse id of every registered task."""
    from textgym.envs.registration import env_id
    from textgym.tasks import task_names

    return [env_id(task, "sparse") for task in task_names()]


def _describe(env_id: str) -> str:
    from textgym.envs.registration import reward_of, task_of
    from textgym.rewards import reward_class
    from textgym.tasks import get_task

    reward = reward_of(env_id)
    line = "Sparse extrinsic reward on the last token." if reward == "sparse" else reward_class(reward).summary
    return f"{get_task(task_of(env_id)).description} {line}"


def cmd_list(args: argparse.Namespace) -> int:
    """Prints every registered textgym id with one line on it."""
    from textgym import registered_ids

    ids = registered_ids()
    width = max(len(env_id) for env_id in ids)
    for env_id in ids:
        print(f"{env_id:<{width}}  {_describe(env_id)}")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Rolls the policy out on each id, prints a table of mean extrinsic reward, writes JSON and a plot."""
    from rich.console import Console
    from rich.table import Table

    from textgym.envs.registration import check_ids
    from textgym.rollout import rollout, summarize, to_json

    env_ids = args.env_ids or default_rollout_ids()
    check_ids(env_ids)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env_kwargs = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    results, episodes = {}, []
    for env_id in env_ids:
        records, seconds = rollout(
            env_id,
            episodes=args.episodes,
            batch_size=args.batch_size,
            policy=args.policy,
            seed=args.seed,
            temperature=args.temperature,
            top_p=args.top_p,
            env_kwargs=env_kwargs,
        )
        results[env_id] = {**summarize(records), "seconds": seconds}
        episodes += to_json(records)

    table = Table(title=f"Extrinsic reward of {args.policy} (sampling, T={args.temperature}, top-p={args.top_p})")
    for column in ("environment", "episodes", "mean reward", "std", "new tokens", "seconds"):
        table.add_column(column, justify="left" if column == "environment" else "right", no_wrap=True)
    for env_id, row in results.items():
        table.add_row(
            env_id,
            str(row["episodes"]),
            f"{row['reward_mean']:.3f}",
            f"{row['reward_std']:.3f}",
            f"{row['new_tokens_mean']:.1f}",
            f"{row['seconds']:.1f}",
        )
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # logs get the whole table
    summary = {"args": vars(args) | {"func": None}, "results": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "episodes.json").write_text(json.dumps(episodes, indent=2, ensure_ascii=False))
    _plot(results, episodes, out / "rollout.png", args.policy)
    print(f"Wrote {out / 'summary.json'}, {out / 'episodes.json'} and {out / 'rollout.png'}")
    return 0


def cmd_critic_eval(args: argparse.Namespace) -> int:
    """Scores a critic against the gold spans of a task: word-level precision, recall, F1, and latency."""
    from textgym.critics.evaluation import evaluate, load_gold
    from textgym.critics.registry import build_critic
    from textgym.error import DataError
    from textgym.tasks import get_task

    get_task(args.task)  # an unknown task is named as such, not as a missing gold file
    kwargs = args.critic_kwargs
    gold = load_gold(args.task, args.gold, split=args.split)
    if not gold:
        raise DataError(f"The gold set of {args.task!r} has no {args.split!r} rows; choose another --split.")
    critic = build_critic(args.task, args.critic, **kwargs)
    scores = evaluate(critic, gold, batch_size=args.batch_size)
    result = {"task": args.task, "critic": args.critic, "critic_kwargs": kwargs, "split": args.split}
    result |= scores.as_dict()
    print(
        f"{args.task} / {args.critic} {kwargs or ''} on the {args.split} split: precision {scores.precision:.3f}  "
        f"recall {scores.recall:.3f}  F1 {scores.f1:.3f}  {scores.seconds_per_text * 1000:.0f} ms/text  "
        f"failures {scores.failures}  dropped spans {scores.dropped_spans}  ({scores.examples} texts)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def _plot(results: dict, episodes: list[dict], path: Path, policy: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ids = list(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    for x, env_id in enumerate(ids):
        rewards = [episode["reward"] for episode in episodes if episode["env_id"] == env_id]
        jitter = np.linspace(-0.15, 0.15, len(rewards))
        ax.scatter(x + jitter, rewards, s=12, alpha=0.5, color="tab:gray")
        ax.errorbar(x, results[env_id]["reward_mean"], yerr=results[env_id]["reward_std"], fmt="o", capsize=6)
    ax.set_xticks(range(len(ids)), ids, fontsize=8)
    ax.set_ylabel("extrinsic reward per episode")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Untrained policy {policy}: mean ± std and each episode")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``textgym`` command."""
    from textgym.cli_flags import json_value
    from textgym.splits import MEASURED_SPLITS

    parser = argparse.ArgumentParser(prog="textgym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print every registered environment id").set_defaults(func=cmd_list)
    roll = commands.add_parser("rollout", help="roll a policy out on environments and report the extrinsic reward")
    roll.add_argument("env_ids", nargs="*", default=None, help="environment ids (default: every task's sparse id)")
    roll.add_argument("--episodes", type=int, default=16, help="episodes per environment")
    roll.add_argument("--batch-size", type=int, default=8, help="environments stepped together")
    roll.add_argument("--policy", default="smollm2-135m-instruct", help="named model, folder or hub id")
    roll.add_argument("--seed", type=int, default=0)
    roll.add_argument("--temperature", type=float, default=1.0)
    roll.add_argument("--top-p", type=float, default=0.9)
    roll.add_argument("--max-new-tokens", type=int, default=None, help="override the task's length limit")
    roll.add_argument("--out", default="runs/rollout", help="folder for summary.json, episodes.json, rollout.png")
    roll.set_defaults(func=cmd_rollout)
    crit = commands.add_parser("critic-eval", help="score a critic's spans against the gold spans of a task")
    crit.add_argument("--task", required=True, help="a registered task: sentiment, detox, summarize, ...")
    crit.add_argument(
        "--critic",
        default="default",
        help="default, lm-judge, lm-list, attribution, self, a model id, an http(s):// server URL (with "
        "--critic-kwargs '{\"model\": ...}'), ...",
    )
    crit.add_argument(
        "--critic-kwargs", type=json_value(dict), default={}, metavar="JSON", help="JSON object of critic arguments"
    )
    crit.add_argument("--gold", default=None, help="a JSON-lines gold file instead of the embedded one")
    crit.add_argument(
        "--split",
        default="test",
        choices=MEASURED_SPLITS,
        help="the gold rows measured: test (the reported number), dev (for choosing templates, thresholds, models) "
        "or all; rows without a split field count in every split",
    )
    crit.add_argument("--batch-size", type=int, default=16)
    crit.add_argument("--json", default=None, help="write the result to this file")
    crit.set_defaults(func=cmd_critic_eval)
    from textgym import cli_bench, cli_data, cli_eval, cli_train

    cli_train.add_commands(commands)
    cli_eval.add_commands(commands)
    cli_bench.add_commands(commands)
    cli_data.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``textgym`` command."""
    import gymnasium

    import textgym  # noqa: F401  (registers the ids)

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except gymnasium.error.Error as error:  # textgym's own errors, and Gymnasium's (an id gym.make does not know)
        print(f"textgym: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
