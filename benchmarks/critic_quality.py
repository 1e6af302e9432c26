"""Critic quality on the project's gold spans: word-level precision, recall, F1 and latency for each critic.

``--split dev test`` measures each part (default: test only, the reported number); ``--critics default`` only each
task's default critic, into ``results/critic_quality_defaults``; ``--critics choice --split dev`` the candidates the
defaults were chosen from, on the dev part only, into ``results/critic_choice``.

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


WITH_SUPPORT = "with-support"
"""Stands for the packaged three-question summary template (``summarize_judge_with_support.json``)."""
GEMMA = {"model": "gemma3-270m"}
CHOICE = {
    "sentiment": [
        ("lm-judge", {}),
        ("lm-judge", {"trim": False}),
        ("lm-judge", GEMMA),
        ("lm-judge", {**GEMMA, "trim": False}),
        ("attribution", {"trim": False}),
    ],
    "detox": [
        ("attribution", {"method": "occlusion"}),
        ("attribution", {"method": "occlusion", "trim": False}),
        ("attribution", {"method": "occlusion", "threshold": 0.02}),
        ("attribution", {"trim": False}),
        ("lm-judge", {"trim": False}),
        ("lm-judge", {**GEMMA, "trim": False}),
    ],
    "summarize": [
        ("lm-judge", {"trim": False}),
        ("lm-judge", {"trim": False, "template_path": WITH_SUPPORT}),
    ],
}
"""The candidates of the defaults' choice (issue 12), measured on the gold sets' dev parts only."""


def _resolve(task: str, kwargs: dict) -> dict:
    if kwargs.get("template_path") == WITH_SUPPORT:
        from textgym.critics.prompts import template_path

        return {**kwargs, "template_path": str(template_path(task, f"{task}_judge_with_support.json"))}
    return kwargs


def describe(kind: str, kwargs: dict) -> str:
    """The critic column: type and arguments, the old template by name."""
    names = {SINGLE_QUESTION: "single-question (old)", WITH_SUPPORT: "three questions, with 'supported'"}
    shown = {k: names.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
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
        choices=("grid", "default", "choice"),
        help="every critic of GRID (results/critic_quality), each task's default (results/critic_quality_defaults) "
        "or the candidates of the defaults' choice (CHOICE, results/critic_choice; give --split dev)",
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
        grid = {"grid": GRID[task], "choice": CHOICE[task]}.get(args.critics, [(default["type"], settings)])
        golds = {split: load_gold(task, split=split) for split in args.split}
        counts.append(f"{task} " + ", ".join(f"{len(gold)} {split}" for split, gold in golds.items()))
        for kind, kwargs in grid:
            critic = build_critic(task, kind, **_resolve(task, kwargs))
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
        {"grid": "critic_quality", "choice": "critic_choice"}.get(args.critics, "critic_quality_defaults"),
        rows,
        notes="Word-level micro P/R/F1 of (word, label) pairs against textgym/data/critic_gold_{task}.jsonl, on the "
        f"parts named in the split column (texts: {'; '.join(counts)}). The gold rows are v1 (the first sets, "
        "written for this project) and hard-v2 (written later by another procedure: other styles, lower-cased "
        "tokenised sentences, negation, contrast, sarcasm, toxicity without swear words, long texts with one bad "
        "clause, harmless texts with scary words); textgym/splits.py assigns each row to dev or test by a hash of its "
        "text. test is the reported number, dev is for choices. The defaults were first chosen on the v1 rows of "
        "both parts, before the split existed (so v1 test rows are not untouched: the hard-v2 test rows are), then "
        "re-chosen among the candidates of results/critic_choice.md on the dev part only (issue 12). "
        "lm-judge: a local LM judging each clause few-shot (SmolLM2-135M unless model= says otherwise; the sentiment "
        "default is Gemma 3 270M, untrimmed); for summaries two questions (templates/summarize_judge.json: the "
        "post's context gain -> irrelevant, 'garbled' -> incoherent) or three (summarize_judge_with_support.json, "
        "adding 'supported' -> incorrect, the default before issue 12), and 'single-question (old)' is the first "
        "judge (one 'Supported:' question -> incorrect). attribution: the task's own scorer on each clause (segment) "
        "or without it (occlusion). lm-list: the model lists spans with the listing templates (SmolLM2-135M-Instruct "
        "through its chat template, gemma3-270m as plain text), read by the OpenAI-compatible critic's parser; "
        "failures are replies that name no label. trim narrows flagged clauses. extrinsic shown: the critic sees each "
        "text's score from the task's default scorer (summaries: no reference, so similarity and length only). "
        "ms/text is the mean over batches of 16, 1 torch thread, on the shared 2-core CPU.",
    )


if __name__ == "__main__":
    main()
