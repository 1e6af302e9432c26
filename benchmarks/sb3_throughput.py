"""SB3 PPO's tokens per second with TextGymLMPolicy, before and after its key/value cache and episode minibatches.

Side by side in one process, on the same task and model, the rounds interleaved so that both see the same machine:

- ``per-row (before)``: ``kv_cache=False, group_prefixes=False`` and SB3's own ``DictRolloutBuffer``: every
  observation goes through the whole LM, while collecting and for each minibatch row of the update.
- ``cache + episodes (after)``: the defaults of textgym's SB3 loop: a key/value cache per env while collecting,
  ``EpisodeRolloutBuffer`` minibatches and one forward per episode in the update.
- ``LM-PPO`` (with ``--lm-ppo``): textgym's own agent on the same task, for reference (8 envs in lockstep).

Each variant first runs one untimed rollout + update (scorer load, allocator), then ``--rounds`` timed ones.
SB3 runs SB3PPOConfig's settings (one env, ``n_steps`` tokens a rollout, minibatches of 32, 2 epochs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from report import write


def sb3_variant(env_id: str, max_new_tokens: int, fast: bool, train_envs: int = 1):
    """A ``step()`` that runs one SB3 PPO rollout + update and returns (tokens, collect s, update s).

    ``fast``: textgym's SB3 loop's model (:func:`textgym.training.sb3.build_model`); otherwise the per-row policy
    on SB3's own buffer. With ``train_envs`` > 1, each env collects one episode's worth of tokens a rollout, in two
    minibatches (LM-PPO's shape).
    """
    import functools

    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.buffers import DictRolloutBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from textgym.agents.sb3 import TextGymLMPolicy
    from textgym.training.sb3 import build_model
    from textgym.training.sb3_config import SB3PPOConfig

    shape = {} if train_envs == 1 else {"n_steps": max_new_tokens, "batch_size": max_new_tokens * train_envs // 2}
    config = SB3PPOConfig(env_id=env_id, device="cpu", train_envs=train_envs, **shape)
    env = make_vec_env(functools.partial(gym.make, env_id, max_new_tokens=max_new_tokens), n_envs=train_envs)
    if fast:
        model = build_model(PPO, config, env)
    else:
        kwargs = config.algorithm_kwargs()
        kwargs["policy_kwargs"].update(kv_cache=False, group_prefixes=False)
        model = PPO(TextGymLMPolicy, env, rollout_buffer_class=DictRolloutBuffer, **kwargs)

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start = self.collected = 0.0

        def _on_rollout_start(self) -> None:
            self.start = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.collected = time.perf_counter() - self.start

        def _on_step(self) -> bool:
            return True

    def step() -> tuple[int, float, float]:
        clock = Clock()
        start = time.perf_counter()
        model.learn(model.n_steps * train_envs, callback=clock, reset_num_timesteps=False)
        total = time.perf_counter() - start
        return model.n_steps * train_envs, clock.collected, total - clock.collected

    return step


def lm_ppo_variant(env_id: str, max_new_tokens: int):
    """A ``step()`` that runs one LM-PPO iteration and returns (tokens, rollout s, update s)."""
    from textgym.agents.lm_ppo import LMPPO, LMPPOConfig

    agent = LMPPO(
        LMPPOConfig(env_id=env_id, eval_episodes=0, device="cpu", env_kwargs={"max_new_tokens": max_new_tokens})
    )

    def step() -> tuple[int, float, float]:
        stats = agent.step()
        tokens = int(round(stats["episode/length"] * agent.config.num_envs))
        return tokens, stats["time/rollout_s"], stats["time/update_s"]

    return step


VARIANTS = ("before", "after", "envs", "lm-ppo")
"""``before``: SB3 per-row, 1 env; ``after``: textgym's SB3 loop, 1 env; ``envs``: the same on ``--envs`` envs;
``lm-ppo``: LM-PPO for reference."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="TextSentiment-sparse-v0")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--envs", type=int, default=8, help="training envs of the batched SB3 variant")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokens, envs = args.max_new_tokens, args.envs
    builders = {
        "before": ("SB3 PPO, per-row (before)", lambda: sb3_variant(args.env_id, tokens, fast=False)),
        "after": ("SB3 PPO, cache + episode minibatches", lambda: sb3_variant(args.env_id, tokens, fast=True)),
        "envs": (
            f"SB3 PPO, cache + episode minibatches, {envs} envs",
            lambda: sb3_variant(args.env_id, tokens, True, envs),
        ),
        "lm-ppo": ("LM-PPO (reference)", lambda: lm_ppo_variant(args.env_id, tokens)),
    }
    variants = {key: builders[key][1]() for key in VARIANTS if key in args.variants}
    for key, step in variants.items():
        step()  # warm-up, untimed
        print(f"warmed up: {builders[key][0]}", flush=True)
    times: dict[str, list[tuple[int, float, float]]] = {key: [] for key in variants}
    for round_ in range(args.rounds):
        for key, step in variants.items():
            times[key].append(step())
            count, first, second = times[key][-1]
            print(f"round {round_}: {builders[key][0]}: {count} tokens in {first:.1f} + {second:.1f} s", flush=True)
    rates = {key: np.array([count / (first + second) for count, first, second in runs]) for key, runs in times.items()}
    rows = []
    for key, runs in times.items():
        row = {
            "variant": builders[key][0],
            "tokens/s": f"{rates[key].mean():.2f} ± {rates[key].std():.2f}",
            "collect s/iter": float(np.mean([first for _, first, _ in runs])),
            "update s/iter": float(np.mean([second for _, _, second in runs])),
            "tokens/iter": float(np.mean([count for count, _, _ in runs])),
        }
        for base in ("before", "lm-ppo"):
            if base in rates:
                row[f"x {base}"] = float(rates[key].mean() / rates[base].mean())
        rows.append(row)
    notes = (
        f"{args.env_id}, smollm2-135m-instruct (60 % of layers frozen), {tokens} new tokens, {args.threads} torch "
        f"thread(s), mean ± std over {args.rounds} interleaved rounds after one untimed round each; a tokens/iter "
        "below the rollout size means episodes that ended early. SB3: SB3PPOConfig's settings (n_steps=64 tokens, "
        f"minibatches of 32, 2 epochs) on 1 env; on {envs} envs n_steps={tokens} and minibatches of "
        f"{tokens * envs // 2} (LM-PPO's shape: {envs} episodes, 2 epochs x 2 minibatches). collect = SB3's "
        "collect_rollouts (LM passes, env steps, the task's scorer) or LM-PPO's rollout (scoring included); update "
        "= PPO's train. Before = kv_cache=False, group_prefixes=False on SB3's DictRolloutBuffer: every observation "
        "from scratch, as the policy did before, though with logits at the last position only (the policy before "
        "computed them at every position: 1.3 tokens/s in sb3_lm_policy.md). Both SB3 paths use fused Adam."
    )
    write("sb3_throughput", rows, notes=notes)


if __name__ == "__main__":
    main()
