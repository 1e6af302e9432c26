"""``textgym data prepare``: prompt files from the paper's data sets (see :mod:`textgym.data_sources`)."""

from __future__ import annotations

import argparse
import json


def cmd_prepare(args: argparse.Namespace) -> int:
    """Writes a prompt file (both splits) from a hub id or a local copy of IMDB, RealToxicityPrompts or TL;DR."""
    from textgym.data_sources import DATASET_TASKS, prepare
    from textgym.envs.registration import env_id
    from textgym.tasks.base import SPLITS

    options = {}
    for item in args.option or []:
        key, _, raw = item.partition("=")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    source = {"train": args.train_source, "eval": args.eval_source} if args.train_source or args.eval_source else None
    counts = prepare(args.dataset, source or args.source, args.out, splits=tuple(args.split or SPLITS), **options)
    task = DATASET_TASKS[args.dataset]
    print(", ".join(f"{split}: {count} prompts" for split, count in counts.items()) + f" -> {args.out}")
    print(f"Train on it: textgym train {env_id(task, 'critic')} --prompts-path {args.out}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ``data prepare`` to the ``textgym`` command's sub-commands."""
    from textgym.data_sources import LOADERS
    from textgym.tasks.base import SPLITS

    data = commands.add_parser("data", help="prepare prompt files from the paper's data sets")
    sub = data.add_subparsers(dest="data_command", required=True)
    prep = sub.add_parser("prepare", help="IMDB / RealToxicityPrompts / TL;DR -> a textgym prompt file")
    prep.add_argument("dataset", choices=sorted(LOADERS))
    prep.add_argument("--source", default=None, help="hub id or local file/folder (default: the hub id)")
    prep.add_argument("--train-source", default=None, help="a local file for the train split")
    prep.add_argument("--eval-source", default=None, help="a local file for the eval split")
    prep.add_argument("--out", default="prompts.jsonl")
    prep.add_argument("--split", action="append", choices=SPLITS, help="only these splits (repeatable)")
    prep.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option, e.g. n_words=8")
    prep.set_defaults(func=cmd_prepare)
