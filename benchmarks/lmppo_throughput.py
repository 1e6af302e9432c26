"""LM-PPO throughput and memory on the defaults, several settings side by side.

Episodes and tokens per second, split into sampling, scoring, critic and update time, and peak memory.

Each setting runs in a fresh process (so peak memory is its own): one warm-up iteration, then ``--iterations``
timed ones. Sampling is the policy's token-by-token generation; scoring the task's extrinsic scorer; critic the
critic's calls (cache misses and hits); update the KL scoring pass and the PPO epochs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SETTINGS = {
    "critic episode, 60% frozen": {"env_id": "TextSentiment-critic-v0"},
    "critic prefix, 60% frozen": {"env_id": "TextSentiment-critic-v0", "env_kwargs": {"mode": "prefix"}},
    "sparse, 60% frozen": {"env_id": "TextSentiment-sparse-v0"},
    "sparse, nothing frozen": {"env_id": "TextSentiment-sparse-v0", "freeze_layers": 0},
    "detox critic episode, 60% frozen": {"env_id": "TextDetox-critic-v0"},
}


def measure(config: dict, iterations: int) -> dict:
    """Runs in the child process: times ``iterations`` LM-PPO iterations after a warm-up one."""
    import torch

    from textgym.agents.lm_ppo import LMPPO, LMPPOConfig

    config = {"num_envs": 8, "eval_episodes": 0, **config}
    config["env_kwargs"] = {"max_new_tokens": 20, **config.get("env_kwargs", {})}
    agent = LMPPO(LMPPOConfig(**config))
    clocks = {"critic": 0.0, "scoring": 0.0}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clocks[name] += time.perf_counter() - start

        return wrapper

    critic = getattr(agent.envs, "critic", None)
    if critic is not None:
        critic.critique = timed("critic", critic.critique)
    first = agent.envs.unwrapped.envs[0]  # the vector env scores every finished episode through its first env
    first._scorer = timed("scoring", first.scorer)
    agent.step()  # warm-up: scorer and critic caches of few-shot prefixes, allocator
    for key in clocks:
        clocks[key] = 0.0
    rollout = update = 0.0
    tokens = episodes = 0
    start = time.perf_counter()
    for _ in range(iterations):
        stats = agent.step()
        rollout += stats["time/rollout_s"]
        update += stats["time/update_s"]
        tokens += int(stats["episode/length"] * config["num_envs"])
        episodes += config["num_envs"]
    total = time.perf_counter() - start
    trainable = sum(p.numel() for p in agent.policy.parameters() if p.requires_grad)
    return {
        "episodes/s": episodes / total,
        "tokens/s": tokens / total,
        "sampling s/iter": (rollout - clocks["critic"] - clocks["scoring"]) / iterations,
        "scoring s/iter": clocks["scoring"] / iterations,
        "critic s/iter": clocks["critic"] / iterations,
        "update s/iter": update / iterations,
        "trainable M params": trainable / 1e6,
        "peak RSS GiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "torch threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(json.loads(args.child), args.iterations)))
        return
    from report import write

    rows = []
    for name, config in SETTINGS.items():
        out = subprocess.run(
            [sys.executable, __file__, "--iterations", str(args.iterations), "--child", json.dumps(config)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        rows.append({"setting": name, **result})
        print(rows[-1], flush=True)
    write(
        "lmppo_throughput",
        rows,
        notes="LM-PPO on SmolLM2-135M (8 envs, 20 new tokens, 2 epochs x 2 minibatches), one warm-up iteration "
        "then the timed ones, each setting in its own process. Sampling = token-by-token generation; scoring = "
        "the task's extrinsic scorer; critic = critic calls; update = the KL/value scoring pass plus the PPO epochs.",
    )


if __name__ == "__main__":
    main()
