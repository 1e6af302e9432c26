"""``textgym eval``: the evaluation suite from the command line (see :mod:`textgym.evaluation.suite`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METRIC_NAMES = {
    "reward_mean": "task reward (mean)",
    "positive_share": "% positive (p > 0.5)",
    "expected_max_toxicity": "expected max toxicity",
    "toxicity_probability": "toxicity probability",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "perplexity": "perplexity (fluency)",
    "distinct_1": "distinct-1",
    "distinct_2": "distinct-2",
    "distinct_3": "distinct-3",
}


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluates one or more policies on an id's eval prompts; prints a table, writes JSON."""
    from rich.console import Console
    from rich.table import Table

    from textgym.envs.registration import check_ids
    from textgym.evaluation.suite import evaluate_policy

    check_ids([args.env_id])  # before any policy is loaded
    env_kwargs = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    results = [
        evaluate_policy(
            args.env_id,
            policy,
            samples=args.samples,
            prompts=args.prompts,
            batch_size=args.batch_size,
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            fluency_model=None if args.fluency_model == "none" else args.fluency_model,
            env_kwargs=env_kwargs,
        )  # fmt: skip
        for policy in args.policies
    ]
    table = Table(title=f"{args.env_id}: {results[0]['prompts']} eval prompts x {args.samples} samples")
    table.add_column("metric", no_wrap=True)
    for policy in args.policies:
        table.add_column(policy, justify="right", no_wrap=True)
    for key, name in METRIC_NAMES.items():
        if key in results[0]:
            table.add_row(name, *(f"{result[key]:.3f}" for result in results))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
        print(f"Wrote {args.json}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ``eval`` to the ``textgym`` command's sub-commands."""
    parser = commands.add_parser("eval", help="evaluate policies: task reward, toxicity, fluency, diversity, ROUGE")
    parser.add_argument("env_id", help="a textgym id; its task's eval prompts are used")
    parser.add_argument(
        "--policy", dest="policies", nargs="+", default=["smollm2-135m-instruct"],
        help="model names, folders, hub ids or training run folders (several: side by side)",
    )  # fmt: skip
    parser.add_argument("--samples", type=int, default=4, help="completions per prompt (K)")
    parser.add_argument("--prompts", type=int, default=None, help="eval prompts to use (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--fluency-model", default="gemma3-270m", help="LM for perplexity, or 'none'")
    parser.add_argument("--json", default=None, help="write all results (with every episode) to this file")
    parser.set_defaults(func=cmd_eval)
