"""LM agents' throughput on a GPU (and the CPU beside it), for benchmarks/gpu_check.sh.

For each agent, device and dtype: one warm-up iteration, then ``--iterations`` timed ones, each setting in its own
process; completions and generated tokens per second of training, the per-iteration split (rollout, scoring pass,
update) and peak GPU memory. The environment (detox: the toxicity BiLSTM scores, cheap) stays on the CPU; the
policy, the reference and the scorer's model go to the device.

    python benchmarks/gpu_throughput.py --devices cuda cpu --dtypes bfloat16 float32 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def measure(agent_name: str, device: str, dtype: str, num_envs: int, iterations: int, model: str) -> dict:
    """In the child process: times ``iterations`` iterations of one agent after a warm-up one."""
    import torch

    from textgym.training import make_agent

    config = {
        "env_id": "TextDetox-sparse-v0", "model": model, "num_envs": num_envs, "iterations": iterations + 1,
        "device": device, "dtype": dtype, "eval_episodes": 0, "env_kwargs": {"max_new_tokens": 20},
    }  # fmt: skip
    if agent_name in ("grpo", "rloo"):
        config["samples_per_prompt"] = 4
    agent = make_agent(agent_name, config)
    agent.step()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    parts = {"time/rollout_s": 0.0, "time/score_s": 0.0, "time/update_s": 0.0}
    tokens = 0
    start = time.perf_counter()
    for _ in range(iterations):
        stats = agent.step()
        for key in parts:
            parts[key] += stats.get(key, 0.0)
        tokens += int(round(stats["episode/length"] * num_envs))
    seconds = time.perf_counter() - start
    return {
        "completions/s": num_envs * iterations / seconds,
        "tokens/s": tokens / seconds,
        **{f"{key[5:-2]} s/iter": value / iterations for key, value in parts.items()},
        "peak GPU GiB": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["lmppo", "grpo"])
    parser.add_argument("--devices", nargs="+", default=["cuda"])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--name", default="gpu_throughput")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        agent, device, dtype = json.loads(args.child)
        print("RESULT " + json.dumps(measure(agent, device, dtype, args.num_envs, args.iterations, args.model)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from report import write

    rows = []
    for agent in args.agents:
        for device in args.devices:
            for dtype in args.dtypes if device != "cpu" else ["float32"]:
                command = [sys.executable, __file__, "--num-envs", str(args.num_envs), "--model", args.model]
                command += ["--iterations", str(args.iterations), "--child", json.dumps([agent, device, dtype])]
                done = subprocess.run(command, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode or not lines:
                    tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
                    rows.append({"agent": agent, "device": device, "dtype": dtype, "status": tail})
                else:
                    rows.append({"agent": agent, "device": device, "dtype": dtype, **json.loads(lines[-1][7:])})
                print(rows[-1], flush=True)
    write(
        args.name,
        rows,  # a failed setting's row has its status instead of numbers; the table shows every row's columns
        notes=f"{args.model}, TextDetox-sparse-v0, {args.num_envs} envs x 20 new tokens, one warm-up then "
        f"{args.iterations} timed iterations per setting, each in its own process; defaults otherwise.",
    )


if __name__ == "__main__":
    main()
