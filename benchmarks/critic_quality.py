"""Critic quality on the project's gold spans: word-level precision, recall, F1 and latency for each critic.

``--split dev test`` measures each part (default: test only, the reported number); ``--critics default`` only each
task's default critic, into ``results/critic_quality_defaults``.

The OpenAI-compatible critic needs a server: ``openai_critic_quality.py`` serves a local model over HTTP for it, and
``textgym critic-eval --critic http://...`` evaluates it against any real server.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from report import write

from textgym.critics.evaluation import evaluate, load_gold
from textgym.critics.registry import DEFAULT_CRITICS, build_critic
from textgym.splits import MEASURED_SPLITS

SINGLE_QUESTION = str(Path(__file__).parent / "templates" / "summarize_judge_single.json")
"""The summary judge before it had three questions: one few-shot "Supported:" question, labelling incorrect."""
LISTING = [("lm-list", {}), ("lm-list", {"model": "gemma3-270m"})]

GRID = {
    "sentiment": [
        ("lm-judge", {}),
        ("lm-judge", {"trim": False}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
        ("attribution", {"method": "occlusion"}),
        *LISTING,
    ],
    "detox": [
        ("lm-judge", {}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
        ("attribution", {"method": "occlusion"}),
        ("attribution", {"method": "occlusion", "trim": False}),
        *LISTING,
    ],
    "summarize": [
        ("lm-judge", {}),
        ("lm-judge", {"trim": False}),
        ("lm-judge", {"template_path": SINGLE_QUESTION}),
        ("lm-judge", {"template_path": SINGLE_QUESTION, "trim": False}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
        *LISTING,
    ],
}


def describe(kind: str, kwargs: dict) -> str:
    """The critic column: type and arguments, the old template by name."""
    shown = {k: ("single-question (old)" if v == SINGLE_QUESTION else v) for k, v in kwargs.items()}
    return kind + (" " + ", ".join(f"{k}={v}" for k, v in shown.items()) if shown else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split",
        nargs="+",
        default=["test"],
        choices=MEASURED_SPLITS,
        help="gold parts to measure, a row of the table each (default: test, the reported number)",
    )
    parser.add_argument(
        "--critics",
        default="grid",
        choices=("grid", "default"),
        help="every critic of GRID (results/critic_quality) or each task's default (results/critic_quality_defaults)",
    )
    parser.add_argument("--tasks", nargs="+", default=list(GRID), choices=list(GRID))
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    rows, counts = [], []
    for task in args.tasks:
        default = DEFAULT_CRITICS[task]
        settings = {k: v for k, v in default.items() if k != "type"}
        grid = GRID[task] if args.critics == "grid" else [(default["type"], settings)]
        golds = {split: load_gold(task, split=split) for split in args.split}
        counts.append(f"{task} " + ", ".join(f"{len(gold)} {split}" for split, gold in golds.items()))
        for kind, kwargs in grid:
            critic = build_critic(task, kind, **kwargs)
            is_default = {"type": kind, **kwargs} == default
            for split, gold in golds.items():
                scores = evaluate(critic, gold)
                rows.append(
                    {
                        "task": task,
                        "critic": describe(kind, kwargs),
                        "default": "yes" if is_default else "",
                        "split": split,
                        **scores.table_row(),
                        "extrinsic shown": "yes" if getattr(critic, "uses_extrinsic", False) else "",
                    }
                )
    write(
        "critic_quality" if args.critics == "grid" else "critic_quality_defaults",
        rows,
        notes="Word-level micro P/R/F1 of (word, label) pairs against textgym/data/critic_gold_{task}.jsonl, on the "
        f"parts named in the split column (texts: {'; '.join(counts)}). The gold rows are v1 (the first sets, "
        "written for this project) and hard-v2 (written later by another procedure: other styles, lower-cased "
        "tokenised sentences, negation, contrast, sarcasm, toxicity without swear words, long texts with one bad "
        "clause, harmless texts with scary words); textgym/splits.py assigns each row to dev or test by a hash of its "
        "text. test is the reported number, dev is for choices. The defaults were chosen before the split existed, "
        "on the v1 rows of both parts, so v1 test rows are not untouched: the hard-v2 test rows are. "
        "lm-judge: SmolLM2-135M judging each "
        "clause few-shot; for summaries three questions (templates/summarize_judge.json: 'supported' -> incorrect, "
        "the post's context gain -> irrelevant, 'garbled' -> incoherent), and 'single-question (old)' is the judge "
        "before (one 'Supported:' question -> incorrect). attribution: the task's own scorer on each clause (segment) "
        "or without it (occlusion). lm-list: the model lists spans with the listing templates (SmolLM2-135M-Instruct "
        "through its chat template, gemma3-270m as plain text), read by the OpenAI-compatible critic's parser; "
        "failures are replies that name no label. trim narrows flagged clauses. extrinsic shown: the critic sees each "
        "text's score from the task's default scorer (summaries: no reference, so similarity and length only). "
        "ms/text is the mean over batches of 16, 1 torch thread, on the shared 2-core CPU.",
    )


if __name__ == "__main__":
    main()
