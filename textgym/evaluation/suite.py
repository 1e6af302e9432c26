"""``textgym eval``: sample K completions for each eval prompt of a task and report the field's metrics.

The policy is a model (named, folder or hub id) or a training run folder (its checkpoint: textgym's own agents'
``checkpoint.pt`` or an SB3 ``checkpoint.zip``). Every prompt gets ``samples`` completions, sampled on fixed seeds,
so two policies are compared on the same prompts and the same sampling noise. The metrics are those of
:mod:`textgym.evaluation.metrics`: the task's reward; sentiment % positive; detox expected maximum toxicity and
toxicity probability; summaries ROUGE (each task declares its own: ``Task.metrics``); fluency (perplexity under a
separate LM) and distinct-1/2/3 for all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from textgym.agents.lm_eval import make_eval_envs
from textgym.agents.lm_rollout import collect
from textgym.envs.registration import task_of
from textgym.evaluation import metrics
from textgym.models import load_causal_lm, load_tokenizer
from textgym.tasks import get_task

EVAL_SEED = 2_000_000
DEFAULT_FLUENCY_MODEL = "gemma3-270m"
"""The larger offline model judges fluency, so the policy (SmolLM2 by default) is not its own judge."""


def load_policy(policy: str) -> tuple[torch.nn.Module, str]:
    """The causal LM of a model name / folder / hub id or of a training run folder, and its base model name."""
    from textgym.training import RunFolder, agent_spec

    run = RunFolder(policy)
    if run.config.exists() and run.has_checkpoint():
        config = run.read_config()
        spec = agent_spec(config["agent"])
        checkpoint = RunFolder(policy, spec.loop).checkpoint
        if spec.loop == "lm":
            from textgym.agents.lm_policy import build_policy

            net, _ = build_policy(config["model"], config.get("freeze_layers"))
            state = torch.load(checkpoint, weights_only=False)
            net.load_state_dict(state["policy"], strict=False)
        else:
            net = spec.agent_class().load(checkpoint, device="cpu").policy.net
        return net.lm.eval(), config["model"]
    return load_causal_lm(policy), policy


def evaluate_policy(
    env_id: str,
    policy: str = "smollm2-135m-instruct",
    samples: int = 4,
    prompts: int | None = None,
    batch_size: int = 16,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    fluency_model: str | None = DEFAULT_FLUENCY_MODEL,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluates a policy on the eval prompts of ``env_id``'s task; returns the metrics and a few samples.

    Args:
        env_id: A textgym id (its task's sparse env on the eval split is used; critics play no part).
        policy: A model name, folder or hub id, or a training run folder.
        samples: Completions per prompt (K).
        prompts: How many eval prompts (all when None).
        batch_size: Episodes sampled together (rounded down to a multiple of ``samples``).
        temperature: Sampling temperature.
        top_k: Top-k sampling (0: off).
        top_p: Nucleus sampling (1: off).
        fluency_model: The LM whose perplexity measures fluency (None: skip).
        env_kwargs: More env arguments (``max_new_tokens``, ``prompts_path``, ...).
    """
    lm, model_name = load_policy(policy)
    task = task_of(env_id)
    rows = max(samples, batch_size // samples * samples)
    envs = make_eval_envs(env_id, model_name, rows, env_kwargs, kept=None)
    items = envs.unwrapped.envs[0].items
    count = len(items) if prompts is None else min(prompts, len(items))
    order = [index for index in range(count) for _ in range(samples)]
    generator = torch.Generator().manual_seed(EVAL_SEED)
    texts: list[str] = []
    scores: list[float] = []
    sources: list[str] = []
    for first in range(0, len(order), rows):
        chunk = order[first : first + rows]
        padded = chunk + [chunk[-1]] * (rows - len(chunk))
        seeds = [EVAL_SEED + first + i for i in range(rows)]
        batch = collect(
            envs, lm, generator, seeds, temperature, top_k, top_p, options={"prompt_index": padded}
        )  # fmt: skip
        texts += batch.completions[: len(chunk)]
        scores += batch.extrinsic[: len(chunk)].tolist()
        sources += batch.prompts[: len(chunk)]
    envs.close()
    grid = np.array(scores).reshape(count, samples)
    groups = [texts[i * samples : (i + 1) * samples] for i in range(count)]
    result: dict[str, Any] = {
        "env_id": env_id,
        "policy": policy,
        "prompts": count,
        "samples_per_prompt": samples,
        "reward_mean": float(grid.mean()),
        "reward_std": float(grid.std()),
        **{f"distinct_{n}": metrics.mean_distinct_n(groups, n) for n in (1, 2, 3)},
    }
    declared = get_task(task)
    if declared.metrics is not None:
        result.update(declared.metrics(grid, texts, [items[i] for i in order]))
    if fluency_model:
        result["fluency_model"] = fluency_model
        result["perplexity"] = metrics.perplexity(
            load_causal_lm(fluency_model), load_tokenizer(fluency_model), sources, texts
        )  # fmt: skip
    result["episodes"] = [
        {"prompt_index": i, "prompt": p, "completion": c, "reward": r}
        for i, p, c, r in zip(order, sources, texts, scores, strict=True)
    ]
    return result
