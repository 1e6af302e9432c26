"""Why the LM agents sample with copies of the weights laid out for few rows: the product's speed by layout.

Two parts, each timed in this one process with the layouts taking turns (best of ``--rounds`` rounds, process CPU
time, one torch thread):

- **products**: ``F.linear(x, W)`` (torch's ``[out, in]`` weight, multiplied as ``x @ W.T``) against ``x @ W_t``
  (a contiguous ``[in, out]`` copy) and oneDNN's product with its packed copy of ``W``, for each linear shape of
  SmolLM2-135M, at 1 row (an evaluation at batch 1), 8 rows (a sampling step of 8 envs), 32 and 240 rows (a
  prompt's first pass). One weight again and again, so it stays in the caches: the layouts' arithmetic, not the
  memory's (``benchmarks/results/speed_floor.md`` streams every weight).
- **decode step**: one KV-cached token step of the whole SmolLM2-135M at ``--batch`` rows after a 24-token prompt,
  plain and inside :meth:`textgym.agents.decode_weights.DecodeWeights.active` with a store made for one row
  (every weight transposed) and one made for the batch (the sampler's: every weight packed), and the largest
  difference of their logits from the plain step's.

Usage: ``python benchmarks/decode_layout.py [--rounds 5] [--batch 8]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from report import write

from textgym.agents import decode_weights
from textgym.agents.decode_weights import DecodeWeights, packed_products
from textgym.lm_compat import output_cache, with_cache
from textgym.models import load_causal_lm

SHAPES = {
    "q_proj, o_proj": (576, 576),
    "k_proj, v_proj": (192, 576),
    "gate_proj, up_proj": (1536, 576),
    "down_proj": (576, 1536),
    "lm_head (tied)": (49152, 576),
}
"""SmolLM2-135M's linear shapes, (out, in)."""


def best_ms(runs: dict[str, Callable[[], object]], rounds: int, repeat: int) -> dict[str, float]:
    """Best CPU-ms per call of each function, the functions taking turns in every round."""
    best = dict.fromkeys(runs, float("inf"))
    for function in runs.values():
        function()  # warm-up
    for _ in range(rounds):
        for name, function in runs.items():
            start = time.process_time()
            for _ in range(repeat):
                function()
            best[name] = min(best[name], (time.process_time() - start) / repeat * 1e3)
    return best


def products(rounds: int) -> list[dict]:
    rows = []
    packed = packed_products()
    for name, (out_features, in_features) in SHAPES.items():
        weight = torch.randn(out_features, in_features)
        transposed = weight.t().contiguous()
        packed_weight = decode_weights._pack(weight) if packed else None
        for count in (1, 8, 32, 240):
            x = torch.randn(count, in_features)
            repeat = max(3, int(2e8 / (count * out_features * in_features)))
            runs = {
                "plain": lambda x=x, w=weight: torch.nn.functional.linear(x, w),
                "transposed": lambda x=x, w=transposed: x @ w,
            }
            if packed:
                runs["packed"] = lambda x=x, p=packed_weight: decode_weights._packed_product(x, p, None)
            ms = best_ms(runs, rounds, repeat)
            rows.append(
                {
                    "part": "product",
                    "what": f"{name} {out_features}x{in_features}",
                    "rows": count,
                    **{f"{layout} ms": ms.get(layout, float("nan")) for layout in ("plain", "transposed", "packed")},
                    "plain / transposed": ms["plain"] / ms["transposed"],
                    "plain / packed": ms["plain"] / ms["packed"] if packed else float("nan"),
                }
            )
    return rows


@torch.no_grad()
def decode_step(rounds: int, batch: int) -> dict:
    model = load_causal_lm("smollm2-135m-instruct", "cpu", "float32")
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, model.config.vocab_size, (batch, 24), generator=generator)
    token = torch.randint(0, model.config.vocab_size, (batch, 1), generator=generator)
    cache = output_cache(model(input_ids=prompt, use_cache=True))
    layouts = {"transposed": DecodeWeights(rows=1), "packed": DecodeWeights(rows=batch)}
    if not layouts["packed"].packed:
        del layouts["packed"]

    def step():
        logits = model(input_ids=token, use_cache=True, **with_cache(model, cache)).logits
        cache.crop(-1)  # back to the prompt's cache for the next call
        return logits

    def through(weights):
        def run():
            with weights.active(model):
                return step()

        return run

    runs = {"plain": step, **{layout: through(weights) for layout, weights in layouts.items()}}
    reference = step()
    difference = max(float((reference - run()).abs().max()) for run in runs.values())
    ms = best_ms(runs, rounds, 5)
    return {
        "part": "decode step",
        "what": f"SmolLM2-135M, one KV-cached token after 24 (max logit difference {difference:.1e})",
        "rows": batch,
        **{f"{layout} ms": ms.get(layout, float("nan")) for layout in ("plain", "transposed", "packed")},
        "plain / transposed": ms["plain"] / ms["transposed"],
        "plain / packed": ms["plain"] / ms["packed"] if "packed" in ms else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [*products(args.rounds), decode_step(args.rounds, args.batch)]
    write(
        "decode_layout",
        rows,
        notes="plain: torch's nn.Linear (F.linear with the [out, in] weight); transposed: x @ W_t with a contiguous "
        "[in, out] copy; packed: oneDNN's product with its packed copy of the weight (torch.ops.mkldnn), what "
        "textgym's sampler runs for more than one row where torch has it (textgym/agents/decode_weights.py). Best of "
        "the rounds, the layouts taking turns in each, process CPU ms per call, one torch thread. Products: one weight "
        "again and again (it stays in the caches). The decode step starts from the same prompt cache every call (the "
        "cache is cropped back after each step); its transposed and packed columns are the sampler's two stores: made "
        "for one row (every weight transposed) and for the batch's rows (every weight packed).",
    )


if __name__ == "__main__":
    main()
