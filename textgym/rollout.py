"""Roll a causal-LM policy out on an environment id and collect one record per episode."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from textgym.agents.sampler import LMSampler
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm


@dataclass
class Episode:
    """One finished episode."""

    env_id: str
    prompt: str
    completion: str
    reward: float
    num_new_tokens: int


def rollout(
    env_id: str,
    episodes: int = 16,
    batch_size: int = 8,
    policy: str = DEFAULT_POLICY_MODEL,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.9,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[list[Episode], float]:
    """Samples ``episodes`` completions from ``policy`` on ``env_id`` and returns them with the seconds taken.

    Episodes run in batches of ``batch_size`` environments that advance in lockstep (one KV-cached forward pass
    per token for the whole batch). Environment ``i`` of batch ``b`` is reset with seed ``seed + b * batch_size
    + i``; the sampler is seeded with ``seed``, so the same arguments give the same episodes.
    """
    if episodes < 1 or batch_size < 1:
        raise ValueError(f"episodes and batch_size must be positive, got {episodes} and {batch_size}.")
    envs = [gym.make(env_id, **(env_kwargs or {})) for _ in range(min(batch_size, episodes))]
    model = load_causal_lm(policy)
    sampler = LMSampler(model, envs[0].action_space.n, temperature=temperature, top_p=top_p, seed=seed)
    records: list[Episode] = []
    start = time.perf_counter()
    with tqdm(total=episodes, desc=env_id, unit="ep", disable=not progress) as bar:
        for first in range(0, episodes, len(envs)):
            active = envs[: min(len(envs), episodes - first)]
            observations = [env.reset(seed=seed + first + i)[0] for i, env in enumerate(active)]
            actions = sampler.start(
                np.stack([obs["input_ids"] for obs in observations]),
                np.stack([obs["attention_mask"] for obs in observations]),
            )
            running = [True] * len(active)
            while True:
                for i, env in enumerate(active):
                    if not running[i]:
                        continue
                    _, reward, terminated, truncated, info = env.step(actions[i])
                    if terminated or truncated:
                        running[i] = False
                        records.append(
                            Episode(env_id, info["prompt"], info["completion"], float(reward), info["num_new_tokens"])
                        )
                        bar.update()
                if not any(running):
                    break
                actions = sampler.next(actions)
    for env in envs:
        env.close()
    return records, time.perf_counter() - start


def summarize(records: list[Episode]) -> dict[str, float]:
    """Mean and standard deviation of the reward, and the mean completion length."""
    rewards = np.array([record.reward for record in records])
    return {
        "episodes": len(records),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "new_tokens_mean": float(np.mean([record.num_new_tokens for record in records])),
    }


def to_json(records: list[Episode]) -> list[dict[str, Any]]:
    """Episodes as plain dicts."""
    return [asdict(record) for record in records]
