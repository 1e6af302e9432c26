"""Evaluating a causal-LM policy on a task's eval prompts: mean extrinsic reward and KL to the reference.

Every evaluation uses the same reset seeds and the same sampling noise, so two evaluations differ only by the
policy. The env is the task's sparse id on the ``eval`` split (the critic plays no part in evaluation).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from textgym.agents.decode_weights import DecodeWeights
from textgym.agents.lm_policy import SharedTrunk, reference_logits, token_logprobs
from textgym.agents.lm_rollout import collect
from textgym.envs.registration import with_reward

EVAL_SEED = 1_000_000  # eval episodes use their own seeds, far from the training ones
ENV_KWARGS_KEPT = ("max_new_tokens", "prompt_budget", "prompts_path", "device", "dtype")


def make_eval_envs(
    env_id: str,
    model: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    kept: tuple[str, ...] | None = ENV_KWARGS_KEPT,
):
    """The sparse id of ``env_id``'s task on the eval split, with autoreset disabled.

    Only the ``kept`` keys of ``env_kwargs`` pass (a training env's critic settings mean nothing here); ``None``
    passes them all.
    """
    keep = {key: value for key, value in (env_kwargs or {}).items() if kept is None or key in kept}
    return gym.make_vec(
        with_reward(env_id, "sparse"), num_envs=num_envs, vectorization_mode="vector_entry_point",
        autoreset_mode="disabled", split="eval", model=model, **keep,
    )  # fmt: skip


@torch.no_grad()
def evaluate_lm(
    envs: Any,
    lm: torch.nn.Module,
    reference: torch.nn.Module,
    episodes: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    trunk: SharedTrunk | None = None,
    decode: DecodeWeights | None = None,
    share_prompts: bool = True,
) -> dict[str, Any]:
    """Samples ``episodes`` completions of the eval prompts; their mean extrinsic reward and KL to ``reference``.

    The prompts are enumerated without replacement: episode ``i`` takes eval prompt ``i mod n`` (every eval
    prompt once, then again), so a 32-episode evaluation of 30 prompts sees all 30.

    Args:
        envs: From :func:`make_eval_envs`.
        lm: The policy's causal LM.
        reference: The frozen reference model.
        episodes: How many episodes.
        temperature: Sampling temperature.
        top_k: Top-k sampling (0: off).
        top_p: Nucleus sampling (1: off).
        trunk: The layers ``lm`` shares with ``reference`` (their output is then computed once).
        decode: Weight copies for the sampler (see :func:`~textgym.agents.lm_rollout.collect`).
        share_prompts: Run the sampler's first pass once per distinct prompt (see ``collect``).
    """
    generator = torch.Generator().manual_seed(EVAL_SEED)
    vocab = envs.single_action_space.n
    prompts = len(envs.get_attr("items")[0])
    rewards, kls, samples, indices = [], [], [], []
    rows = envs.num_envs
    for first in range(0, episodes, rows):
        index = [(first + i) % prompts for i in range(rows)]
        batch = collect(
            envs, lm, generator, [EVAL_SEED + first + i for i in range(rows)], temperature, top_k, top_p,
            options={"prompt_index": index}, trunk=trunk, decode=decode, share_prompts=share_prompts,
        )  # fmt: skip
        ids, mask = batch.inputs
        policy = token_logprobs(
            reference_logits(lm, ids, mask, batch.length, batch.trunk, trunk), batch.tokens, batch.support,
            temperature, vocab,
        )  # fmt: skip
        ref = token_logprobs(
            reference_logits(reference, ids, mask, batch.length, batch.trunk, trunk), batch.tokens, None,
            temperature, vocab,
        )  # fmt: skip
        take = min(rows, episodes - first)
        rewards += batch.extrinsic[:take].tolist()
        kls += ((policy - ref) * batch.valid).sum(1)[:take].tolist()
        indices += index[:take]
        pairs = zip(batch.prompts[:take], batch.completions[:take], strict=True)
        samples += [{"prompt": prompt, "completion": text} for prompt, text in pairs]
    return {
        "extrinsic_mean": float(np.mean(rewards)),
        "extrinsic_std": float(np.std(rewards)),
        "kl_mean": float(np.mean(kls)),
        "episodes": len(rewards),
        "prompt_indices": indices,
        "samples": samples[:4],
        "completions": [{**sample, "reward": reward} for sample, reward in zip(samples, rewards, strict=True)],
    }
