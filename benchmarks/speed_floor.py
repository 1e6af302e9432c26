"""How fast an iteration could be on this machine: each part's arithmetic at the CPU's own peak, against TRL.

``benchmarks/trl_comparison.py`` measures completions per CPU-second; this asks what the machine allows. In one
process tree, one torch thread each, it measures:

- **the machine**: the peak float32 product rate (a 1024 x 576 by 576 x 1536 product, best of
  several), the memory read rate (a sum over 0.5 GB), and the rate at which 8-row products (a sampling step's)
  through every linear layer of the model stream the policy's weights, by each kernel at hand: torch's
  ``F.linear``, a transposed copy, oneDNN's packed copy (the sampler's, :mod:`textgym.agents.decode_weights`),
  numpy's OpenBLAS, and one row;
- **textgym's agents** on the TRL comparison's settings (SmolLM2-135M fp32, sentiment, 8 completions of 20 new
  tokens a step, kl 0.05, lr 3e-5 constant, their own defaults otherwise, trust region included): process CPU
  seconds per iteration of each part (sampling, the reward scorer, the update), then one more iteration under
  torch's ``FlopCounterMode`` for the floating-point operations of each part (sampling with torch's own products
  there, which the counter sees; the sampler's oneDNN products do the same arithmetic) and a count of the
  sampler's one-token passes;
- **TRL's GRPOTrainer** on the same settings: CPU seconds per step of 8 completions (the comparison's own child).

A part's floor is the most its arithmetic allows: its operations at the peak product rate, and for sampling at least
its one-token passes times the weights' bytes at the memory read rate (each pass reads every weight once). Both are
lower bounds (the counter sees matrix products and attention, not the elementwise work; no kernel beats the peak).
The target is TRL's CPU-seconds per step divided by 1.5, issue 10's bar; a floor above it means that no
implementation of that algorithm at these settings reaches the bar on this machine.

    python benchmarks/speed_floor.py --iterations 3 --trl-completions 48
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENTS = {
    "lmppo-sparse": {"agent": "lmppo"},
    "grpo-sparse": {"agent": "grpo", "samples_per_prompt": 4},
}
"""textgym's variants of the TRL comparison that issue 10's bar names."""
PARTS = ("sampling", "scoring", "update")
BAR = 1.5


def machine(model_name: str) -> dict[str, float]:
    """Peak product GFLOP/s, memory read GB/s, and the sampler's weight streaming GB/s at 8 rows (one thread)."""
    import torch
    from torch import nn

    from textgym.agents.decode_weights import DecodeWeights
    from textgym.models import load_causal_lm

    torch.set_num_threads(1)

    def best(function, rounds: int = 7) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    a, b = torch.randn(1024, 576), torch.randn(576, 1536)
    peak = 2 * 1024 * 576 * 1536 / best(lambda: a @ b) / 1e9
    big = torch.randn(2**27)  # 0.5 GB
    read = big.numel() * 4 / best(lambda: big.sum()) / 1e9
    lm = load_causal_lm(model_name)
    layers = list({id(m.weight): m for m in lm.modules() if isinstance(m, nn.Linear)}.values())  # tied: once
    weight_bytes = sum(m.weight.numel() * m.weight.element_size() for m in layers)
    inputs = [torch.randn(8, m.in_features) for m in layers]

    def rate(product, rows: int = 8) -> float:
        return weight_bytes / best(lambda: [product(x[:rows], m) for x, m in zip(inputs, layers, strict=True)]) / 1e9

    # The products of every linear layer at 8 rows (one sampling step's), by each kernel at hand: torch's F.linear
    # (MKL over the [out, in] weight), a transposed copy (MKL), oneDNN's packed copy (what the sampler runs where
    # torch has it), numpy's OpenBLAS; and one row, a matrix-vector product.
    transposed = {id(m): m.weight.detach().t().contiguous() for m in layers}
    packed = DecodeWeights(rows=8)
    arrays = {id(m): transposed[id(m)].numpy() for m in layers}
    rates = {
        "peak_gflops": peak,
        "read_gbs": read,
        "weight_gb": weight_bytes / 1e9,
        "torch_gbs": rate(lambda x, m: nn.functional.linear(x, m.weight)),
        "transposed_gbs": rate(lambda x, m: x @ transposed[id(m)]),
        "onednn_gbs": rate(packed.product) if packed.packed else float("nan"),
        "openblas_gbs": rate(lambda x, m: x.numpy() @ arrays[id(m)]),
        "one_row_gbs": rate(lambda x, m: x @ transposed[id(m)], rows=1),
    }
    rates["sampler_gbs"] = rates["onednn_gbs"] if packed.packed else rates["transposed_gbs"]
    return rates


def measure(name: str, iterations: int, model_name: str) -> dict:
    """In a child process: CPU-s per part over ``iterations`` iterations, then one counted iteration's FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from textgym.agents.grpo import GRPO, GRPOConfig
    from textgym.agents.lm_ppo import LMPPO, LMPPOConfig

    torch.set_num_threads(1)
    spec = dict(AGENTS[name])
    kind = spec.pop("agent")
    agent_class, config_class = {"lmppo": (LMPPO, LMPPOConfig), "grpo": (GRPO, GRPOConfig)}[kind]
    config = config_class(
        env_id="TextSentiment-sparse-v0", env_kwargs={"max_new_tokens": 20}, model=model_name, num_envs=8,
        learning_rate=3e-5, warmup_iterations=0, kl_coef=0.05, temperature=1.0, top_k=0, top_p=1.0,
        eval_episodes=0, device="cpu", **spec,
    )  # fmt: skip
    agent = agent_class(config)
    clocks = dict.fromkeys(("rollout", "scoring", "update"), 0.0)
    flops = dict.fromkeys(clocks, 0)
    counting = {"on": False, "passes": 0}

    def timed(part, function):
        def wrapper(*args, **kwargs):
            if counting["on"]:
                with FlopCounterMode(display=False) as counter:
                    result = function(*args, **kwargs)
                flops[part] += counter.get_total_flops()
                return result
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                clocks[part] += time.process_time() - start

        return wrapper

    def one_token_pass(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if counting["on"] and ids is not None and ids.shape[1] == 1:
            counting["passes"] += 1

    first = agent.envs.unwrapped.envs[0]  # the vector env scores every finished episode through its first env
    first._scorer = timed("scoring", first.scorer)
    agent.rollout = timed("rollout", agent.rollout)
    agent.update = timed("update", agent.update)
    agent.policy.lm.register_forward_pre_hook(one_token_pass, with_kwargs=True)
    agent.step()  # warm-up
    clocks.update(dict.fromkeys(clocks, 0.0))
    for _ in range(iterations):
        agent.step()
    counting["on"] = True
    agent.decode = None  # the counter sees torch's own products only, not the sampler's oneDNN ones: same arithmetic
    agent.step()
    seconds = {
        "sampling": (clocks["rollout"] - clocks["scoring"]) / iterations,
        "scoring": clocks["scoring"] / iterations,
        "update": clocks["update"] / iterations,
    }
    operations = {
        "sampling": flops["rollout"] - flops["scoring"],
        "scoring": flops["scoring"],
        "update": flops["update"],
    }
    return {"seconds": seconds, "flops": operations, "passes": counting["passes"], "completions": config.num_envs}


def trl_seconds(completions: int, model_name: str) -> dict:
    """TRL GRPO's CPU-s per step of 8 completions, run by the TRL comparison's own child on the same settings.

    Needs ``benchmarks/`` on ``sys.path`` (``main`` puts it there).
    """
    from trl_comparison import Settings, run_variant

    s = Settings(
        completions=completions, batch=8, group=4, max_new_tokens=20, eval_episodes=0, learning_rate=3e-5,
        kl_coef=0.05, freeze_layers=None, seed=0, threads=1, model=model_name,
    )  # fmt: skip
    result = run_variant("trl-grpo", s)
    if "error" in result:
        raise SystemExit(f"TRL GRPO failed: {result['error']}")
    steps = result["completions"] / s.batch
    return {
        "step_cpu_s": result["train_cpu_s"] / steps,
        "sampling_cpu_s": result["sampling_cpu_s"] / steps,
        "reward_cpu_s": result["reward_cpu_s"] / steps,
    }


def floors(result: dict, rates: dict[str, float]) -> dict[str, float]:
    """Each part's floor in seconds (see the module's docstring) and their ``total``."""
    out = {part: result["flops"][part] / (rates["peak_gflops"] * 1e9) for part in PARTS}
    out["sampling"] = max(out["sampling"], result["passes"] * rates["weight_gb"] / rates["read_gbs"])
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per textgym agent")
    parser.add_argument("--trl-completions", type=int, default=48, help="completions of the TRL GRPO run")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--name", default="speed_floor", help="results file name under benchmarks/results/")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        found = machine(args.model) if args.child == "machine" else measure(args.child, args.iterations, args.model)
        print("RESULT " + json.dumps(found), flush=True)
        return
    sys.path.insert(0, str(HERE))
    from report import write

    threads = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env = {**os.environ, **threads, "TOKENIZERS_PARALLELISM": "false"}
    results = {}
    for name in (*AGENTS, "machine"):
        command = [sys.executable, __file__, "--child", name, "--iterations", str(args.iterations)]
        out = subprocess.run([*command, "--model", args.model], env=env, check=True, capture_output=True, text=True)
        results[name] = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")))
        print(name, results[name], flush=True)
    rates = results.pop("machine")
    trl = trl_seconds(args.trl_completions, args.model)
    print("trl-grpo", trl, flush=True)
    target = trl["step_cpu_s"] / BAR
    rows = [
        {
            "variant": "trl-grpo",
            "part": "total",
            "measured CPU-s/step": trl["step_cpu_s"],
            "of which sampling + reward": trl["sampling_cpu_s"] + trl["reward_cpu_s"],
        }
    ]
    for name, result in results.items():
        floor_of = floors(result, rates)
        for part in (*PARTS, "total"):
            measured = sum(result["seconds"].values()) if part == "total" else result["seconds"][part]
            floor = floor_of[part]
            rows.append(
                {
                    "variant": name,
                    "part": part,
                    "measured CPU-s/step": measured,
                    "GFLOP": sum(result["flops"].values()) / 1e9 if part == "total" else result["flops"][part] / 1e9,
                    "floor s": floor,
                    "measured / floor": measured / floor if floor else float("nan"),
                    f"target s (TRL / {BAR})": target if part == "total" else "",
                    "floor / target": floor / target if part == "total" else "",
                    "one-token passes": result["passes"] if part == "sampling" else "",
                }
            )
    write(
        args.name,
        rows,
        notes=f"Machine, one thread: peak product {rates['peak_gflops']:.1f} GFLOP/s, memory read "
        f"{rates['read_gbs']:.1f} GB/s. Every linear layer's product at 8 rows (a sampling step's) streams the "
        f"weights ({rates['weight_gb']:.2f} GB) at: torch's F.linear {rates['torch_gbs']:.1f} GB/s, a transposed "
        f"copy {rates['transposed_gbs']:.1f}, oneDNN's packed copy {rates['onednn_gbs']:.1f}, numpy's OpenBLAS "
        f"{rates['openblas_gbs']:.1f}; the sampler runs {rates['sampler_gbs']:.1f}; one row (a matrix-vector "
        f"product) {rates['one_row_gbs']:.1f}. Settings of the TRL comparison: SmolLM2-135M fp32, sentiment "
        "train prompts, 8 completions of at most 20 new tokens a step (GRPO 2 prompts x 4), kl 0.05, lr 3e-05 "
        "constant, each agent's own defaults otherwise (LM-PPO 2 epochs x 2 minibatches with its trust region). "
        f"textgym: CPU-s per step over {args.iterations} iterations after a warm-up, then one counted iteration; "
        f"TRL GRPO: {args.trl_completions} completions in the TRL comparison's child. floor s = the part's counted "
        "operations at the peak rate (sampling: at least its one-token passes x the weights' bytes at the memory "
        "read rate); target = TRL GRPO's CPU-s per step / 1.5 (issue 10's bar): a total floor above it means no "
        "implementation of that algorithm at these settings reaches the bar on this machine. The counted iteration is "
        "one iteration: where LM-PPO's trust region stops its epochs early there and not in the timed ones (or the "
        "other way round), its update's GFLOP and floor are for fewer (more) steps than its measured time.",
    )


if __name__ == "__main__":
    main()
