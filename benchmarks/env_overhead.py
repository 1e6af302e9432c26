"""Environment overhead: env steps per second alone, and as a share of one policy forward pass per token.

Also compares the batched vector form with SyncVectorEnv on whole episodes (scoring included).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch
from report import write

import textgym  # noqa: F401
from textgym.lm_compat import output_cache, with_cache
from textgym.models import load_causal_lm


def time_steps(env_id: str, steps: int = 3000) -> float:
    """Seconds per non-final env.step (no scoring): random non-EOS tokens, resetting one step before the limit."""
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.vocab_size, size=steps)
    actions[actions == env.eos_token_id] = 0
    env.reset(seed=0)
    elapsed, taken = 0.0, 0
    for action in actions:
        if len(env.generated_ids) == env.max_new_tokens - 1:  # the next step would end and score: reset instead
            env.reset()
        start = time.perf_counter()
        env.step(action)
        elapsed += time.perf_counter() - start
        taken += 1
    return elapsed / taken


def time_forward(env_id: str, batch: int, tokens: int = 24) -> float:
    """Seconds per generated token of one KV-cached policy forward pass per token, for a batch of rows."""
    env = gym.make(env_id).unwrapped
    model = load_causal_lm()
    obs, _ = env.reset(seed=0)
    ids = torch.as_tensor(np.stack([obs["input_ids"]] * batch))
    mask = torch.as_tensor(np.stack([obs["attention_mask"]] * batch))
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
        cache, token = output_cache(out), out.logits[:, -1].argmax(-1, keepdim=True)
        start = time.perf_counter()
        for _ in range(tokens):
            mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype)], dim=1)
            out = model(input_ids=token, attention_mask=mask, use_cache=True, **with_cache(model, cache))
            cache, token = output_cache(out), out.logits[:, -1].argmax(-1, keepdim=True)
    return (time.perf_counter() - start) / tokens


def time_vector(env_id: str, mode: str, num_envs: int = 8, steps: int = 120) -> float:
    """Seconds per vector step, scoring included, with random tokens and episodes of 8 tokens."""
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, max_new_tokens=8)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    envs.step(rng.integers(0, 1000, size=num_envs))  # builds the scorer outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(rng.integers(0, 1000, size=num_envs))
    return (time.perf_counter() - start) / steps


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    for env_id in [env_id for env_id in textgym.registered_ids() if env_id.endswith("-sparse-v0")]:
        step = time_steps(env_id)
        forward_1, forward_8 = time_forward(env_id, 1), time_forward(env_id, 8)
        sync, batched = time_vector(env_id, "sync"), time_vector(env_id, "vector_entry_point")
        rows.append(
            {
                "env": env_id,
                "env steps/s": 1 / step,
                "step us": step * 1e6,
                "forward ms/token (batch 1)": forward_1 * 1e3,
                "env share of step+forward (batch 1)": step / (step + forward_1),
                "env share (batch 8, 8 steps)": 8 * step / (8 * step + forward_8),
                "sync vec steps/s (8 envs)": 1 / sync,
                "batched vec steps/s (8 envs)": 1 / batched,
                "batched / sync": sync / batched,
            }
        )
    write(
        "env_overhead",
        rows,
        notes="Env step alone: non-final steps at the default max_new_tokens, so no scoring. The share compares "
        "one env step per row with one KV-cached SmolLM2-135M forward pass per token. Vector rows: random tokens, "
        "8-token episodes, so one episode in eight steps ends and is scored.",
    )


if __name__ == "__main__":
    main()
