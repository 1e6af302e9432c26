"""How far each update moves the policy, on the real model with the default settings (issue 10).

Short LM-PPO runs on SmolLM2-135M over the three tasks, sparse and critic rewards, each in its own process with one
torch thread. For every update it records the approximate KL per token from the rollout policy to the updated one
(``ppo/post_update_kl``, measured after the update on the whole batch), the pre-step KL of each minibatch that
early stopping reads, steps taken, the value's explained variance, entropy, gradient norm and the share of
episodes that ended at end-of-sequence. The table has one row per run and says whether every update stayed within
the bound (0.05 nats per token).

    python benchmarks/update_stability.py --iterations 6
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNS = [
    ("TextSentiment-sparse-v0", 0),
    ("TextSentiment-critic-v0", 0),
    ("TextDetox-sparse-v0", 0),
    ("TextDetox-critic-v0", 0),
    ("TextSummarize-sparse-v0", 0),
    ("TextSummarize-critic-v0", 0),
    ("TextSentiment-sparse-v0", 1),
    ("TextSentiment-critic-v0", 1),
    ("TextDetox-sparse-v0", 1),
    ("TextDetox-critic-v0", 1),
]
BOUND = 0.05
KEYS = (
    "ppo/post_update_kl", "ppo/approx_kl", "ppo/steps", "ppo/early_stop", "ppo/undone_steps",
    "value/explained_variance", "policy/entropy", "grad/norm", "episode/eos_share", "reward/extrinsic",
    "kl/per_episode", "time/iteration_s", "time/rollout_s", "time/score_s", "time/update_s",
)  # fmt: skip


def run(env_id: str, seed: int, iterations: int, overrides: dict) -> list[dict]:
    """Runs in the child process: ``iterations`` LM-PPO iterations; the statistics of each update."""
    import time

    import torch

    from textgym.agents.lm_ppo import LMPPO, LMPPOConfig

    torch.set_num_threads(1)
    config = {"env_id": env_id, "seed": seed, "iterations": iterations, "eval_episodes": 0, "device": "cpu"}
    config.update(overrides)
    config["env_kwargs"] = {"max_new_tokens": 20, **config.get("env_kwargs", {})}
    agent = LMPPO(LMPPOConfig(**config))
    updates = []
    for _ in range(iterations):
        start = time.perf_counter()
        stats = agent.step()
        stats["time/iteration_s"] = time.perf_counter() - start
        updates.append({key: stats.get(key) for key in KEYS})
        print("UPDATE " + json.dumps(updates[-1]), flush=True)
    return updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--set", default="{}", help="JSON of LM-PPO settings to override (default: none)")
    parser.add_argument("--runs", type=int, default=len(RUNS), help="the first N of the 10 runs")
    parser.add_argument("--name", default="update_stability")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env_id, seed = json.loads(args.child)
        run(env_id, seed, args.iterations, json.loads(args.set))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from report import write

    rows, every = [], []
    for env_id, seed in RUNS[: args.runs]:
        command = [sys.executable, __file__, "--iterations", str(args.iterations), "--set", args.set]
        out = subprocess.run(
            [*command, "--child", json.dumps([env_id, seed])], check=True, capture_output=True, text=True
        ).stdout
        updates = [json.loads(line[7:]) for line in out.splitlines() if line.startswith("UPDATE ")]
        every.append({"env_id": env_id, "seed": seed, "updates": updates})
        post = [u["ppo/post_update_kl"] for u in updates]
        explained = [u["value/explained_variance"] for u in updates]
        rows.append(
            {
                "env_id": env_id,
                "seed": seed,
                "updates": len(updates),
                "max post-update KL": max(post),
                "median post-update KL": sorted(post)[len(post) // 2],
                f"all <= {BOUND}": all(kl <= BOUND for kl in post),
                "early stops": sum(int(u["ppo/early_stop"]) for u in updates),
                "undone steps": sum(int(u.get("ppo/undone_steps") or 0) for u in updates),
                "mean steps": sum(u["ppo/steps"] for u in updates) / len(updates),
                "explained var (first, last)": f"{explained[0]:.2f}, {explained[-1]:.2f}",
                "entropy (first, last)": f"{updates[0]['policy/entropy']:.2f}, {updates[-1]['policy/entropy']:.2f}",
                "EOS share": sum(u["episode/eos_share"] for u in updates) / len(updates),
                "s/iter": sum(u["time/iteration_s"] for u in updates) / len(updates),
            }
        )
        print(rows[-1], flush=True)
    every_kl = [u["ppo/post_update_kl"] for r in every for u in r["updates"]]
    write(
        args.name,
        rows,
        notes=f"LM-PPO defaults (overrides: {args.set}) on SmolLM2-135M, 8 envs x 20 new tokens, {args.iterations} "
        f"iterations a run, one torch thread, each run in its own process. Post-update KL = approximate KL per token "
        f"E[(r - 1) - log r] from the rollout policy to the updated one over the whole batch, after the update. "
        f"Over all {len(every_kl)} updates: max {max(every_kl):.4f}, all <= {BOUND}: "
        f"{all(kl <= BOUND for kl in every_kl)}. Per-update values in {args.name}_updates.json.",
    )
    (Path(__file__).parent / "results" / f"{args.name}_updates.json").write_text(json.dumps(every, indent=1))


if __name__ == "__main__":
    main()
