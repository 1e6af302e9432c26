"""Scorer throughput: texts per second of each task's default scorer, one at a time against batched."""

from __future__ import annotations

import time

from report import write

from textgym.tasks import PromptItem, get_items, get_scorer


def throughput(task: str, items: list[PromptItem], completions: list[str], batched: bool) -> float:
    scorer = get_scorer(task)
    scorer(items[:2], completions[:2])  # warm-up and model load outside the timing
    start = time.perf_counter()
    if batched:
        scorer(items, completions)
    else:
        for item, completion in zip(items, completions, strict=True):
            scorer([item], [completion])
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    rows = []
    for task in ("sentiment", "detox", "summarize"):
        items = list(get_items(task, "eval"))[:64]
        completions = ["I thought it was a thoughtful, well made and quietly moving story about family." for _ in items]
        one = throughput(task, items, completions, batched=False)
        many = throughput(task, items, completions, batched=True)
        rows.append(
            {
                "task": task,
                "texts": len(items),
                "one at a time texts/s": one,
                "batched texts/s": many,
                "batched / one": many / one,
            }
        )
    write("scorer_throughput", rows, notes="64 eval prompts with a 15-word completion each; default scorers.")


if __name__ == "__main__":
    main()
