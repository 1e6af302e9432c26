"""The few-shot judge's answer columns against the full vocabulary head: CPU time and scores, side by side.

A yes/no judge reads two columns of the last position's logits; ``_ColumnHead`` computes only those (see
``textgym/scorers/fewshot_judge.py``). This scores the same texts with the default sentiment scorer (Gemma 3 270M,
262k words) both ways, alternating rounds in one process with one torch thread, new texts each round (no cache
hits), and reports texts per process CPU second and the largest difference between the two ways' scores.

    python benchmarks/judge_head.py --rounds 3 --texts 64 --batch 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from report import write

from textgym.tasks import get_items, get_scorer

COMPLETIONS = [
    "I thought it was a thoughtful, well made and quietly moving story about family.",
    "It drags on forever and the jokes fall flat, a waste of a good cast.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=64, help="eval prompts scored per round and way")
    parser.add_argument("--batch", type=int, default=8, help="texts per scorer call (an agent's 8 envs: 8)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scorer = get_scorer("sentiment")
    items = list(get_items("sentiment", "eval"))[: args.texts]
    scorer(items[:2], COMPLETIONS)  # model load and caches outside the timing
    runner = scorer.positive.judge._runner
    column_head = runner._column_head
    if column_head is None:
        raise SystemExit("The column head does not apply to the default sentiment scorer's model.")
    seconds = {"columns": 0.0, "full": 0.0}
    largest = 0.0
    for round_ in range(args.rounds):
        completions = [f"{COMPLETIONS[i % 2]} ({round_}, {i})" for i in range(len(items))]  # unseen each round
        scores = {}
        for way in ("columns", "full"):
            runner._column_head = column_head if way == "columns" else None
            start = time.process_time()
            starts = range(0, len(items), args.batch)
            calls = [scorer(items[k : k + args.batch], completions[k : k + args.batch]) for k in starts]
            scores[way] = np.concatenate(calls)
            seconds[way] += time.process_time() - start
        largest = max(largest, float(np.abs(scores["columns"] - scores["full"]).max()))
    runner._column_head = column_head
    texts = args.rounds * len(items)
    rows = [
        {
            "scorer": "sentiment (LMSentimentScorer, gemma3-270m)",
            "texts per way": texts,
            "texts per call": args.batch,
            "full head texts/CPU-s": texts / seconds["full"],
            "answer columns texts/CPU-s": texts / seconds["columns"],
            "columns / full (speed)": seconds["full"] / seconds["columns"],
            "largest score difference": largest,
        }
    ]
    write(
        "judge_head",
        rows,
        notes=f"{args.rounds} rounds x {len(items)} sentiment eval prompts with a completion, each round scored "
        "both ways (answer columns first, then the full head) on texts no earlier round saw; process CPU seconds, "
        f"one torch thread, {args.batch} texts per scorer call (the vector env scores a batch's finished episodes in "
        "one call). Scores are P(positive) in [0, 1].",
    )


if __name__ == "__main__":
    main()
