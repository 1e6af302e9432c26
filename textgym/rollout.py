"""Roll a causal-LM policy out on an environment id and collect one record per episode."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from textgym.agents.lm_rollout import collect
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm


@dataclass
class Episode:
    """One finished episode; ``reward`` is its return (the sum of its step rewards)."""

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

    Episodes run in batches of up to ``batch_size`` rows of the id's vector env, in lockstep with one KV cache
    (:func:`textgym.agents.lm_rollout.collect`). Episode ``k`` is reset with seed ``seed + k`` and sampling draws
    from one generator seeded with ``seed``, so the same arguments give the same episodes. ``temperature=0`` is
    greedy decoding.
    """
    if episodes < 1 or batch_size < 1:
        raise ValueError(f"episodes and batch_size must be positive, got {episodes} and {batch_size}.")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"Need temperature >= 0 and 0 < top_p <= 1, got {temperature} and {top_p}.")
    model = load_causal_lm(policy)
    generator = torch.Generator().manual_seed(seed)
    envs: dict[int, Any] = {}  # one vector env per batch size used (the last batch may be smaller)
    records: list[Episode] = []
    start = time.perf_counter()
    with tqdm(total=episodes, desc=env_id, unit="ep", disable=not progress) as bar:
        for first in range(0, episodes, batch_size):
            rows = min(batch_size, episodes - first)
            if rows not in envs:
                envs[rows] = gym.make_vec(
                    env_id, num_envs=rows, vectorization_mode="vector_entry_point", autoreset_mode="disabled",
                    **(env_kwargs or {}),
                )  # fmt: skip
            batch = collect(
                envs[rows], model, generator, [seed + first + i for i in range(rows)], temperature, top_p=top_p
            )
            returns, lengths = batch.rewards.sum(1).tolist(), batch.valid.sum(1).tolist()
            for i in range(rows):
                records.append(Episode(env_id, batch.prompts[i], batch.completions[i], returns[i], int(lengths[i])))
            bar.update(rows)
    for vector_env in envs.values():
        vector_env.close()
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
