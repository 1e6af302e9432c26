"""Critique throughput of each task's default critic: one text at a time against batches, side by side in one run.

Each task's default critic (``default_critic(task)``) critiques its gold texts (every split) one text per call and
in batches, in one process on one torch thread, after a warm-up. Wall-clock and process CPU time are both taken: the
machine is shared, and CPU seconds are the robust number (the ratios use them). The modes take turns until each has
run ``--seconds`` of CPU time (one pass at least); each keeps its fastest pass. Every batched pass is checked against
the one-at-a-time spans (start, end and label exactly; the largest score difference is shown).

What the models read is counted too: the positions (rows x columns of token or word ids, padding included) that
go into the critic's torch models per text, and the CPU time per position. Where one text alone already costs about
what it costs in a batch per position, batching cannot buy much. Last, the cost of a cache hit: all the texts again
through a ``CachedCritic`` that has seen them.

    python benchmarks/critic_throughput.py [--tasks detox sentiment] [--batch-sizes 16 64] [--seconds 3] [--texts N]
"""

from __future__ import annotations

import argparse
import time

import torch
from report import write

from textgym.critics.cache import CachedCritic
from textgym.critics.evaluation import load_gold
from textgym.critics.registry import build_critic, default_critic
from textgym.tasks import task_names


def describe(config: dict) -> str:
    """``attribution(method=occlusion)`` for ``{"type": "attribution", "method": "occlusion"}``."""
    kind = config.pop("type")
    return kind + (f"({', '.join(f'{key}={value}' for key, value in sorted(config.items()))})" if config else "")


def models_of(thing: object, depth: int = 3) -> list[torch.nn.Module]:
    """The torch models an object holds in its attributes, a few levels down (each once)."""
    found: dict[int, torch.nn.Module] = {}

    def visit(value: object, level: int) -> None:
        if isinstance(value, torch.nn.Module):
            found.setdefault(id(value), value)
        elif level < depth and isinstance(value, list | tuple):
            for item in value:
                visit(item, level + 1)
        elif level < depth and hasattr(value, "__dict__") and not isinstance(value, type):
            for item in vars(value).values():
                visit(item, level + 1)

    visit(thing, 0)
    return list(found.values())


class Positions:
    """Counts the id positions (rows x columns, padding included) that go into some models' forward passes."""

    def __init__(self, models: list[torch.nn.Module]) -> None:
        self.count = 0
        for model in models:
            model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if isinstance(ids, torch.Tensor) and not ids.is_floating_point():
            self.count += ids.numel()


def timed_pass(critic, prompts: list[str], texts: list[str], batch_size: int) -> tuple[float, float, list]:
    """CPU seconds, wall seconds and the critiques of one pass over the texts, ``batch_size`` texts a call."""
    cpu, wall = time.process_time(), time.perf_counter()
    critiques = []
    for first in range(0, len(texts), batch_size):
        critiques += critic.critique(prompts[first : first + batch_size], texts[first : first + batch_size])
    return time.process_time() - cpu, time.perf_counter() - wall, critiques


def score_difference(alone: list, batched: list) -> float | None:
    """The largest score difference of matching spans, or None when any span (start, end, label) differs."""
    largest = 0.0
    for one, many in zip(alone, batched, strict=True):
        if [(s.start, s.end, s.label) for s in one.spans] != [(s.start, s.end, s.label) for s in many.spans]:
            return None
        largest = max([largest, *(abs(a.score - b.score) for a, b in zip(one.spans, many.spans, strict=True))])
    return largest


def measure(task: str, batch_sizes: list[int], seconds: float, limit: int | None) -> list[dict]:
    """One row per mode (one at a time, each batch size, cache hit) of the task's default critic."""
    gold = load_gold(task)[:limit]
    prompts, texts = [g.prompt for g in gold], [g.completion for g in gold]
    config = default_critic(task)
    critic = build_critic(task, config)
    critic.critique(prompts[:2], texts[:2])  # warm-up, the model loaded outside the timing
    positions = Positions(models_of(critic))
    sizes = [1, *batch_sizes]
    best = {size: (float("inf"), float("inf")) for size in sizes}
    spent, read, critiques = dict.fromkeys(sizes, 0.0), {}, {}
    while min(spent.values()) < seconds or not critiques:
        for size in sizes:
            before = positions.count
            cpu, wall, critiques[size] = timed_pass(critic, prompts, texts, size)
            best[size], spent[size] = (min(best[size][0], cpu), min(best[size][1], wall)), spent[size] + cpu
            read[size] = positions.count - before
    name, rows = describe(config), []
    for size in sizes:
        cpu, wall = best[size]
        difference = 0.0 if size == 1 else score_difference(critiques[1], critiques[size])
        rows.append(
            {
                "task": task,
                "critic": name,
                "texts": len(texts),
                "texts a call": "one" if size == 1 else size,
                "texts/CPU-s": len(texts) / cpu,
                "x one (CPU)": best[1][0] / cpu,
                "texts/s wall": len(texts) / wall,
                "model positions/text": read[size] / len(texts),
                "CPU-us/position": cpu / read[size] * 1e6 if read[size] else float("nan"),
                "same spans": "yes" if difference is not None else "NO",
                "max score diff": difference if difference is not None else float("nan"),
            }
        )
    cached = CachedCritic(critic)
    cached.critique(prompts, texts)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(10):
        cached.critique(prompts, texts)
    cpu, wall = (time.process_time() - cpu) / 10, (time.perf_counter() - wall) / 10
    rows.append(
        {**rows[0], "texts a call": f"{len(texts)}, cache hits", "texts/CPU-s": len(texts) / cpu}
        | {"x one (CPU)": best[1][0] / cpu, "texts/s wall": len(texts) / wall, "model positions/text": 0.0}
        | {"CPU-us/position": float("nan"), "same spans": "", "max score diff": float("nan")}
    )
    for row in rows:
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks (default: every registered task)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 64], help="texts per batched call")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time each mode runs at least")
    parser.add_argument("--texts", type=int, default=None, help="the first N gold texts of each task (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [
        row for task in args.tasks or task_names() for row in measure(task, args.batch_sizes, args.seconds, args.texts)
    ]
    write(
        "critic_throughput",
        rows,
        notes="Each task's default critic on its gold texts (every split), one text per call against batches, in "
        f"one process on one torch thread; the modes took turns until each ran {args.seconds:g} CPU-s (one pass at "
        "least), and each row is the mode's fastest pass. x one: throughput over one at a time's, by process CPU "
        "time (the machine is shared). Model positions: rows x columns of ids into the critic's torch models "
        "(SmolLM2 tokens, or the toxicity BiLSTM's 100 word columns a row), padding included. Same spans: the "
        "batched pass gives the one-at-a-time spans (start, end, label); max score diff: the largest difference of "
        "their scores. Cache hits: the texts again through a CachedCritic that has seen them.",
    )


if __name__ == "__main__":
    main()
