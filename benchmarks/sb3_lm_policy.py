"""SB3 PPO and A2C with TextGymLMPolicy on the default model: a longer run than the tests' tiny-model one.

Each agent trains on ``TextSentiment-critic-v0`` (episode mode, TokenRewardCredit on) for ``--rollouts`` rollouts of
``--n-steps`` tokens, and is evaluated on the eval prompts before and after (same seeds and sampling noise).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from report import write

from textgym.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    args = parser.parse_args()
    rows = []
    for agent in ("sb3-ppo", "sb3-a2c"):
        config = {
            "env_id": "TextSentiment-critic-v0", "iterations": args.rollouts, "n_steps": args.n_steps,
            "learning_rate": args.learning_rate, "eval_episodes": 32, "env_kwargs": {"max_new_tokens": 20},
        }  # fmt: skip
        with tempfile.TemporaryDirectory() as run:
            start = time.perf_counter()
            summary = train(agent, config, run, progress=False)
            seconds = time.perf_counter() - start
            records = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
        train_seconds = sum(r["time/iteration_s"] for r in records if r["kind"] == "train")
        rows.append(
            {
                "agent": agent,
                "tokens": args.rollouts * args.n_steps,
                "episodes": summary["episodes"],
                "eval before": summary["eval_before"],
                "eval after": summary["eval_after"],
                "KL to ref after": summary["kl_after"],
                "training tokens/s": args.rollouts * args.n_steps / train_seconds,
                "minutes (with evals)": seconds / 60,
            }
        )
        print(rows[-1], flush=True)
    write(
        "sb3_lm_policy",
        rows,
        notes=f"SB3 with TextGymLMPolicy (SmolLM2-135M, 60 % of layers frozen), 1 env, n_steps={args.n_steps}, "
        f"lr={args.learning_rate}, TokenRewardCredit; eval = mean extrinsic reward on 32 eval prompts "
        "(sampling, fixed seeds). Speed of the SB3 paths (KV cache, episode minibatches): sb3_throughput.md.",
    )


if __name__ == "__main__":
    main()
