"""Critic calls per episode in each reward mode of the vector critic env (critique speed: critic_throughput.py)."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
from report import write

import textgym  # noqa: F401  (registers the ids)
from textgym.models import load_tokenizer


def calls_per_episode(env_id: str, mode: str, episodes: int = 8) -> dict:
    """Random-token episodes of 24 tokens with punctuation mixed in, on 8 vector sub-envs."""
    envs = gym.make_vec(env_id, num_envs=8, mode=mode, max_new_tokens=24)
    tokenizer = load_tokenizer()
    words = tokenizer(" the film was, I think, fine. But the end, sadly, dragged.", add_special_tokens=False).input_ids
    envs.reset(seed=0)
    stats_before = dict(envs.critic.stats.as_dict())
    rng = np.random.default_rng(0)
    done = 0
    start = time.perf_counter()
    while done < episodes * 8:
        _, _, terminations, truncations, _ = envs.step(rng.choice(words, size=8))
        done += int(np.sum(terminations | truncations))
    seconds = time.perf_counter() - start
    stats = envs.critic.stats.as_dict()
    calls = stats["calls"] - stats_before["calls"]
    texts = stats["requests"] - stats_before["requests"]
    return {
        "env": env_id,
        "mode": mode,
        "episodes": done,
        "critiques requested / episode": texts / done,
        "batched critic calls / episode": calls / done,
        "episodes/s": done / seconds,
    }


def main() -> None:
    rows = [calls_per_episode(env_id, mode) for env_id in ("TextDetox-critic-v0",) for mode in ("episode", "prefix")]
    write(
        "critic_calls_per_episode",
        rows,
        notes="8 sub-envs of the vector form, 24-token episodes drawn from a sentence with 5 clause boundaries; "
        "one batched critic call per step serves every sub-env due a critique (cache hits are not sent).",
    )


if __name__ == "__main__":
    main()
