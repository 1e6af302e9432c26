"""Critic quality on the project's gold spans: word-level precision, recall, F1 and latency for each critic.

The OpenAI-compatible critic needs a server: ``openai_critic_quality.py`` serves a local model over HTTP for it, and
``textgym critic-eval --critic http://...`` evaluates it against any real server.
"""

from __future__ import annotations

from pathlib import Path

import torch
from report import write

from textgym.critics.evaluation import evaluate, load_gold
from textgym.critics.registry import DEFAULT_CRITICS, build_critic

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


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for task, grid in GRID.items():
        gold = load_gold(task)
        default = DEFAULT_CRITICS[task]
        for kind, kwargs in grid:
            critic = build_critic(task, kind, **kwargs)
            scores = evaluate(critic, gold)
            is_default = {"type": kind, **kwargs} == default
            rows.append(
                {
                    "task": task,
                    "critic": describe(kind, kwargs),
                    "default": "yes" if is_default else "",
                    **scores.table_row(),
                    "extrinsic shown": "yes" if getattr(critic, "uses_extrinsic", False) else "",
                }
            )
    write(
        "critic_quality",
        rows,
        notes="Word-level micro P/R/F1 of (word, label) pairs against textgym/data/critic_gold_{task}.jsonl "
        "(60 sentiment, 60 detox, 30 summary texts written for this project). lm-judge: SmolLM2-135M judging each "
        "clause few-shot; for summaries three questions (templates/summarize_judge.json: 'supported' -> incorrect, "
        "the post's context gain -> irrelevant, 'garbled' -> incoherent), and 'single-question (old)' is the judge "
        "before (one 'Supported:' question -> incorrect). attribution: the task's own scorer on each clause (segment) "
        "or without it (occlusion). lm-list: the model lists spans with the listing templates (SmolLM2-135M-Instruct "
        "through its chat template, gemma3-270m as plain text), read by the OpenAI-compatible critic's parser; "
        "failures are replies that name no label. trim narrows flagged clauses. extrinsic shown: the critic sees each "
        "text's score from the task's default scorer (summaries: no reference, so similarity and length only). The "
        "summary judge's thresholds were chosen on this same gold set (there is no held-out set), so its F1 is "
        "optimistic. ms/text is the mean over batches of 16, 1 torch thread, on the shared 2-core CPU.",
    )


if __name__ == "__main__":
    main()
