"""Critic quality on the project's gold spans: word-level precision, recall, F1 and latency for each critic.

The OpenAI-compatible critic needs a server and is evaluated with ``textgym critic-eval --critic http://...``.
"""

from __future__ import annotations

from report import write

from textgym.critics.evaluation import evaluate, load_gold
from textgym.critics.registry import DEFAULT_CRITICS, build_critic

GRID = {
    "sentiment": [
        ("lm-judge", {}),
        ("lm-judge", {"trim": False}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
        ("attribution", {"method": "occlusion"}),
    ],
    "detox": [
        ("lm-judge", {}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
        ("attribution", {"method": "occlusion"}),
        ("attribution", {"method": "occlusion", "trim": False}),
    ],
    "summarize": [
        ("lm-judge", {}),
        ("lm-judge", {"trim": False}),
        ("attribution", {}),
        ("attribution", {"trim": False}),
    ],
}


def main() -> None:
    rows = []
    for task, grid in GRID.items():
        gold = load_gold(task)
        default = DEFAULT_CRITICS[task]
        for kind, kwargs in grid:
            scores = evaluate(build_critic(task, kind, **kwargs), gold)
            is_default = {"type": kind, **kwargs} == default
            rows.append(
                {
                    "task": task,
                    "critic": kind + (" " + ", ".join(f"{k}={v}" for k, v in kwargs.items()) if kwargs else ""),
                    "default": "yes" if is_default else "",
                    "texts": scores.examples,
                    "precision": scores.precision,
                    "recall": scores.recall,
                    "F1": scores.f1,
                    "ms/text": scores.seconds_per_text * 1000,
                }
            )
    write(
        "critic_quality",
        rows,
        notes="Word-level micro P/R/F1 of (word, label) pairs against textgym/data/critic_gold_{task}.jsonl "
        "(60 sentiment, 60 detox, 30 summary texts written for this project). lm-judge: SmolLM2-135M judging each "
        "clause few-shot; attribution: the task's own scorer on each clause (segment) or without it (occlusion); "
        "trim narrows flagged clauses. ms/text is the mean over batches of 16 on the 2-core CPU.",
    )


if __name__ == "__main__":
    main()
