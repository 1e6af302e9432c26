"""Per-iteration time of an LM agent, split into sampling, scoring and update, before and after a change.

Runs the same agent settings (LM-PPO by default; ``--settings grpo-summarize,rloo-summarize`` for the group agents,
see ``SETTINGS``) on two source trees side by side: ``--before`` (a checkout of the code before the
change, e.g. ``git worktree add /tmp/before bf2d65c``) and this tree. Each tree runs in fresh processes with one
torch thread, alternating (before, after, before, after, ...) so that any other load on the machine falls on both
alike; each process runs one warm-up iteration and then the timed ones, timed in process CPU seconds (one thread:
far less sensitive than wall time to the other load on a shared machine). The split follows
``benchmarks/lmppo_throughput.py``: sampling = token-by-token generation (rollout time less the task scorer's and the
critic's), scoring = the task's extrinsic scorer, critic = critic calls, update = everything after the rollout (the
policy/reference scoring pass and the PPO epochs). Both trees take the same number of optimizer steps (2 epochs x 2
minibatches for LM-PPO, one for GRPO and RLOO; the trust region is switched off with ``max_update_kl=None`` so it
cannot make either side cheaper by taking fewer steps); both still pay the post-update KL measurement.

    git worktree add /tmp/before bf2d65c
    python benchmarks/iteration_split.py --before /tmp/before --rounds 2 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "sparse": {"env_id": "TextSentiment-sparse-v0"},
    "critic": {"env_id": "TextSentiment-critic-v0"},
    "grpo-sentiment": {"agent": "grpo", "env_id": "TextSentiment-sparse-v0"},
    "grpo-summarize": {"agent": "grpo", "env_id": "TextSummarize-sparse-v0"},
    "rloo-summarize": {"agent": "rloo", "env_id": "TextSummarize-sparse-v0"},
}
"""LM-PPO (2 epochs x 2 minibatches) unless ``agent`` says otherwise; GRPO and RLOO take one step per batch (their
defaults), over 2 prompts x 4 completions."""
PARTS = ("sampling", "scoring", "critic", "update", "total")


def measure(config: dict, iterations: int) -> dict:
    """In the child process: times ``iterations`` LM-PPO iterations after a warm-up one."""
    import dataclasses

    import torch

    from textgym.agents.grpo import GRPO, GRPOConfig
    from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
    from textgym.agents.rloo import RLOO, RLOOConfig

    torch.set_num_threads(1)
    config = dict(config)
    kind = config.pop("agent", "lmppo")
    agent_class, config_class = {"lmppo": (LMPPO, LMPPOConfig), "grpo": (GRPO, GRPOConfig), "rloo": (RLOO, RLOOConfig)}[
        kind
    ]
    names = {f.name for f in dataclasses.fields(config_class)}
    shape = {"epochs": 2, "minibatches": 2} if kind == "lmppo" else {"samples_per_prompt": 4}
    config = {"num_envs": 8, "eval_episodes": 0, **shape, **config}
    config.update({key: value for key, value in {"max_update_kl": None, "device": "cpu"}.items() if key in names})
    config["env_kwargs"] = {"max_new_tokens": 20, **config.get("env_kwargs", {})}
    agent = agent_class(config_class(**config))
    clocks = {"critic": 0.0, "scoring": 0.0, "rollout": 0.0, "update": 0.0}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                clocks[name] += time.process_time() - start

        return wrapper

    critic = getattr(agent.envs, "critic", None)
    if critic is not None:
        critic.critique = timed("critic", critic.critique)
    first = agent.envs.unwrapped.envs[0]  # the vector env scores every finished episode through its first env
    first._scorer = timed("scoring", first.scorer)
    agent.rollout = timed("rollout", agent.rollout)
    agent.update = timed("update", agent.update)
    agent.step()
    for key in clocks:
        clocks[key] = 0.0
    for _ in range(iterations):
        agent.step()
    per = {
        "sampling": (clocks["rollout"] - clocks["critic"] - clocks["scoring"]) / iterations,
        "scoring": clocks["scoring"] / iterations,
        "critic": clocks["critic"] / iterations,
        "update": clocks["update"] / iterations,
    }
    per["total"] = sum(per.values())
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the source tree of the code before the change")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per process")
    parser.add_argument("--settings", default="sparse,critic", help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--name", default="iteration_split", help="results file name under benchmarks/results/")
    parser.add_argument("--before-label", default="the code before issue 10", help="what the before tree is")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(json.loads(args.child), args.iterations)), flush=True)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from report import write

    here = str(Path(__file__).resolve().parent.parent)
    trees = {"before": str(Path(args.before).resolve()), "after": here}
    samples: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for setting in args.settings.split(","):
            for side, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
                command = [sys.executable, __file__, "--iterations", str(args.iterations), "--before", args.before]
                out = subprocess.run(
                    [*command, "--child", json.dumps(SETTINGS[setting])], env=env, cwd=tree, check=True,
                    capture_output=True, text=True,
                ).stdout  # fmt: skip
                result = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
                samples.setdefault((setting, side), []).append(result)
                print(setting, side, result, flush=True)
    rows = []
    for setting in args.settings.split(","):
        mean = {
            side: {part: sum(r[part] for r in samples[(setting, side)]) / args.rounds for part in PARTS}
            for side in trees
        }
        for part in PARTS:
            before, after = mean["before"][part], mean["after"][part]
            rows.append(
                {
                    "setting": setting,
                    "part": part,
                    "before CPU-s/iter": before,
                    "after CPU-s/iter": after,
                    "after / before": after / before if before else float("nan"),
                }
            )
    write(
        args.name,
        rows,
        notes=f"Settings: {', '.join(f'{name} = {SETTINGS[name]}' for name in args.settings.split(','))}; LM-PPO "
        "unless the setting names another agent. SmolLM2-135M fp32, 8 envs x 20 new tokens; LM-PPO 2 epochs x 2 "
        "minibatches, GRPO and RLOO one step per batch over 2 prompts x 4 completions, the same on both sides (trust "
        f"region off wherever it exists), one torch thread; {args.rounds} rounds x {args.iterations} timed iterations "
        f"per tree, the trees alternating in fresh processes, process CPU seconds per iteration. before = "
        f"{trees['before']} ({args.before_label}), after = this tree. Other processes shared the 2 cores "
        "during the run; both sides alike.",
    )


if __name__ == "__main__":
    main()
