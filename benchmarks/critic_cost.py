"""Critic cost: critique throughput batched vs one at a time, the cost of a cache hit, and critic calls per episode
in each reward mode."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
from report import write

import textgym  # noqa: F401  (registers the ids)
from textgym.critics.cache import CachedCritic
from textgym.critics.evaluation import load_gold
from textgym.critics.registry import build_critic
from textgym.models import load_tokenizer


def throughput(task: str, kind: str) -> dict:
    gold = load_gold(task)
    prompts, texts = [g.prompt for g in gold], [g.completion for g in gold]
    critic = build_critic(task, kind)
    critic.critique(prompts[:2], texts[:2])  # warm-up
    start = time.perf_counter()
    for prompt, text in zip(prompts, texts, strict=True):
        critic.critique([prompt], [text])
    one = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for first in range(0, len(texts), 16):
        critic.critique(prompts[first : first + 16], texts[first : first + 16])
    batched = len(texts) / (time.perf_counter() - start)
    cached = CachedCritic(critic)
    cached.critique(prompts, texts)
    start = time.perf_counter()
    for _ in range(10):
        cached.critique(prompts, texts)
    hit_us = (time.perf_counter() - start) / (10 * len(texts)) * 1e6
    return {
        "task": task,
        "critic": kind,
        "one at a time texts/s": one,
        "batched (16) texts/s": batched,
        "batched / one": batched / one,
        "cache hit us/text": hit_us,
        "miss / hit cost": (1e6 / batched) / hit_us,
    }


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
    rows = [throughput(task, kind) for task, kind in (("detox", "attribution"), ("sentiment", "lm-judge"))]
    write("critic_throughput", rows, notes="Gold texts of each task; the default critics. A hit skips the critic.")
    rows = [calls_per_episode(env_id, mode) for env_id in ("TextDetox-critic-v0",) for mode in ("episode", "prefix")]
    write(
        "critic_calls_per_episode",
        rows,
        notes="8 sub-envs of the vector form, 24-token episodes drawn from a sentence with 5 clause boundaries; "
        "one batched critic call per step serves every sub-env due a critique (cache hits are not sent).",
    )


if __name__ == "__main__":
    main()
