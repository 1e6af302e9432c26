"""textgym's LM agents against TRL's ``GRPOTrainer``, on the same model, prompts, reward and sampling budget.

What users would pick instead of textgym is TRL, whose RL trainers are GRPO and RLOO (PPO left TRL in 1.x). This
runs TRL's GRPO and textgym's agents side by side, one fresh process each, one after the other on the same
machine, and reports the throughput (completions sampled per second of training) and the reward each reached per
completion sampled.

The same on every side:

- the policy: SmolLM2-135M-Instruct in fp32 (textgym's cached copy; TRL gets a deep copy of the loaded model and
  textgym's tokenizer), with the same layers frozen (embeddings + lowest 60 % of the layers by default, textgym's
  default; ``--freeze-layers 0`` trains everything on both sides);
- the prompts: the sentiment task's train split, formatted with the task's template as the env does (no chat
  template, no special tokens added; every prompt is shorter than the env's prompt budget, so nothing is cut);
- the reward: textgym's sentiment scorer (``get_scorer("sentiment")``) on the opening + completion, wrapped as a
  TRL reward function;
- sampling: temperature 1, no top-k / top-p, ``--max-new-tokens`` new tokens at most, ending at ``<|im_end|>``;
- the budget: ``--batch`` completions per step (TRL: ``--batch / --group`` prompts x ``num_generations=--group``;
  textgym: ``num_envs=--batch``; RLOO: ``samples_per_prompt=--group``) and ``--completions`` in total;
- Adam at ``--learning-rate``, constant, no warm-up, no weight decay, gradients clipped at 1; a KL penalty of
  ``--kl-coef`` to the frozen initial model (TRL's ``beta``: a k3 estimate in the loss; textgym's ``kl_coef``: per
  token in the reward), so both keep a reference model;
- evaluation: textgym's evaluator (:func:`textgym.agents.lm_eval.evaluate_lm`) on the same eval prompts, seeds and
  sampling noise, before and after training (so every variant's "before" is the same number).

What differs is the algorithm, each with its own defaults: GRPO (group-normalised advantages, one gradient step
per batch, DAPO loss), LM-PPO (value head, GAE, 2 epochs x 2 minibatches per batch), RLOO (leave-one-out baseline,
one step per batch); and the sampling loop (TRL calls ``model.generate``; textgym steps the Gymnasium vector env
token by token). Training time is the sum of the training steps (sampling, reward, update), without evaluation,
checkpoints or model loading.

Smoke run: ``python benchmarks/trl_comparison.py --completions 16 --eval-episodes 4 --max-new-tokens 8``.
Published: ``python benchmarks/trl_comparison.py --completions 160 --seeds 0 1 2 --resume``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

TRL_INSTALL = "pip install 'textgym[trl]'  (or: pip install 'trl>=1.0')"
TASK = "sentiment"

VARIANTS: dict[str, dict[str, Any]] = {
    "trl-grpo": {},
    "grpo-sparse": {"agent": "grpo", "env_id": "TextSentiment-sparse-v0"},
    "lmppo-sparse": {"agent": "lmppo", "env_id": "TextSentiment-sparse-v0"},
    "lmppo-critic": {"agent": "lmppo", "env_id": "TextSentiment-critic-v0", "env_kwargs": {"mode": "episode"}},
    "rloo-sparse": {"agent": "rloo", "env_id": "TextSentiment-sparse-v0"},
    "sb3-ppo-sparse": {"agent": "sb3-ppo", "env_id": "TextSentiment-sparse-v0"},
}
"""The variants: TRL's GRPO, and textgym agents on an env id (trained through :func:`textgym.training.train`)."""


@dataclass(frozen=True)
class Settings:
    """What every variant shares."""

    completions: int
    batch: int
    group: int
    max_new_tokens: int
    eval_episodes: int
    learning_rate: float
    kl_coef: float
    freeze_layers: int | None
    seed: int
    threads: int
    model: str

    @property
    def steps(self) -> int:
        """Training steps (textgym iterations, TRL optimizer steps): one batch of completions each."""
        return self.completions // self.batch


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; raises ``SystemExit`` with the reason on inconsistent budgets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=480, help="completions sampled in training, per variant")
    parser.add_argument("--batch", type=int, default=8, help="completions per training step")
    parser.add_argument("--group", type=int, default=4, help="completions per prompt (GRPO, RLOO)")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--eval-episodes", type=int, default=64, help="eval completions before and after (0: none)")
    parser.add_argument(
        "--learning-rate", type=float, default=3e-5, help="every side's Adam step size (textgym's default)"
    )
    parser.add_argument("--kl-coef", type=float, default=0.05, help="textgym kl_coef and TRL beta")
    parser.add_argument(
        "--freeze-layers", type=int, default=None, help="frozen lowest layers (default: textgym's 60 %%; 0: none)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run of every variant per seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each variant's process")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--name", default="trl_comparison", help="results file name under benchmarks/results/")
    parser.add_argument("--resume", action="store_true", help="keep the finished runs of an interrupted comparison")
    parser.add_argument(
        "--merge", nargs="*", default=[], metavar="NAME", help="also take the finished runs of these --name stores"
    )
    parser.add_argument("--table-only", action="store_true", help="write the table of the finished runs, run nothing")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in args.variants if name not in VARIANTS]
    problems = []
    if unknown or not args.variants:
        problems.append(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.group < 2 or args.batch % args.group:
        problems.append(f"--group must be at least 2 and divide --batch, got {args.group} and {args.batch}")
    if args.completions < args.batch or args.completions % args.batch:
        problems.append(f"--completions must be a positive multiple of --batch ({args.batch}), got {args.completions}")
    if args.max_new_tokens < 1 or args.eval_episodes < 0 or args.threads < 1:
        problems.append("--max-new-tokens and --threads must be at least 1, --eval-episodes at least 0")
    if problems:
        parser.error("; ".join(problems))
    return args


def settings_of(args: argparse.Namespace) -> Settings:
    """The shared settings of a parsed command line."""
    return Settings(
        completions=args.completions,
        batch=args.batch,
        group=args.group,
        max_new_tokens=args.max_new_tokens,
        eval_episodes=args.eval_episodes,
        learning_rate=args.learning_rate,
        kl_coef=args.kl_coef,
        freeze_layers=args.freeze_layers,
        seed=args.seeds[0],
        threads=args.threads,
        model=args.model,
    )


def trl_reward(items: Sequence[Any], scorer: Callable[[Sequence[Any], Sequence[str]], list[float]]):
    """textgym's task scorer as a TRL reward function.

    TRL calls it with the batch's ``prompts`` and ``completions`` (strings for a plain-text data set) and every other
    data-set column as a keyword list; the data set's ``item_index`` column names each row's prompt item, so the
    scorer sees exactly the items the env would give it.
    """

    def sentiment_reward(prompts: list[str], completions: list[str], item_index: list[int], **_: Any) -> list[float]:
        return [float(score) for score in scorer([items[i] for i in item_index], list(completions))]

    return sentiment_reward


# -- the child processes --------------------------------------------------------------------------------------------


def frozen_ids(model, freeze_layers: int | None) -> set[int]:
    """The parameters textgym's policy freezes: the embeddings (tied: the output head too) and the lowest layers."""
    from textgym.agents.lm_policy import DEFAULT_FROZEN_SHARE, decoder_layers

    layers = decoder_layers(model)
    count = int(DEFAULT_FROZEN_SHARE * len(layers)) if freeze_layers is None else freeze_layers
    count = len(layers) if count == -1 else count
    if not count:
        return set()
    modules = [model.get_input_embeddings(), *layers[:count]]
    return {id(p) for module in modules for p in module.parameters()}


def trainable_count(model, freeze_layers: int | None) -> int:
    """Parameters of ``model`` that train under ``freeze_layers`` (the value head of LM-PPO not counted)."""
    frozen = frozen_ids(model, freeze_layers)
    return sum(p.numel() for p in model.parameters() if id(p) not in frozen)


def _evaluate(lm, reference, s: Settings) -> float | None:
    """textgym's evaluation of a causal LM, exactly as its agents evaluate themselves."""
    if not s.eval_episodes:
        return None
    from textgym.agents.lm_eval import evaluate_lm, make_eval_envs

    envs = make_eval_envs(
        "TextSentiment-sparse-v0", s.model, min(s.batch, s.eval_episodes), {"max_new_tokens": s.max_new_tokens}
    )
    try:
        return evaluate_lm(envs, lm, reference, s.eval_episodes, temperature=1.0)["extrinsic_mean"]
    finally:
        envs.close()


def run_trl(s: Settings) -> dict[str, Any]:
    """TRL's GRPOTrainer on the shared settings (in the child process)."""
    if importlib.util.find_spec("trl") is None:
        raise SystemExit(f"The TRL variant needs TRL, which is not installed. Install it with: {TRL_INSTALL}")
    import copy
    import tempfile

    import torch
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback

    from textgym.models import load_causal_lm, load_tokenizer
    from textgym.tasks import get_items, get_scorer, get_task

    task, items = get_task(TASK), get_items(TASK, "train")
    reference = load_causal_lm(s.model)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    policy = copy.deepcopy(reference)
    frozen = frozen_ids(policy, s.freeze_layers)
    for parameter in policy.parameters():
        parameter.requires_grad_(id(parameter) not in frozen)
    scorer = get_scorer(TASK)
    before = _evaluate(policy, reference, s)
    scorer(items[:1], ["."])  # builds the scorer's caches, as the evaluation does on the textgym side
    sampled: list[int] = []
    reward = trl_reward(items, scorer)

    tokenizer = load_tokenizer(s.model)
    tokens: list[int] = []

    split = {"sampling": 0.0, "reward": 0.0}  # process CPU seconds in TRL's generate and in the reward function

    def counted(prompts, completions, **kwargs):
        sampled.append(len(completions))
        ids = kwargs.get("completion_ids")
        if ids is None:
            ids = [tokenizer(text, add_special_tokens=False).input_ids for text in completions]
        tokens.append(sum(min(len(row), s.max_new_tokens) for row in ids))
        start = time.process_time()
        try:
            return reward(prompts, completions, **kwargs)
        finally:
            split["reward"] += time.process_time() - start

    generate = policy.generate

    def timed_generate(*args, **kwargs):
        start = time.process_time()
        try:
            return generate(*args, **kwargs)
        finally:
            split["sampling"] += time.process_time() - start

    policy.generate = timed_generate  # TRL samples with the model's generate (no vLLM here)

    counted.__name__ = reward.__name__
    dataset = Dataset.from_dict(
        {"prompt": [task.format_prompt(item) for item in items], "item_index": list(range(len(items)))}
    )

    class StepClock(TrainerCallback):
        seconds = cpu_seconds = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.start, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            StepClock.seconds += time.perf_counter() - self.start
            StepClock.cpu_seconds += time.process_time() - self.cpu

    with tempfile.TemporaryDirectory() as out:
        config = trl.GRPOConfig(
            output_dir=out,
            max_steps=s.steps,
            per_device_train_batch_size=s.batch,  # completions per step
            gradient_accumulation_steps=1,
            num_generations=s.group,
            max_completion_length=s.max_new_tokens,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            learning_rate=s.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=1.0,
            beta=s.kl_coef,
            seed=s.seed,
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,
            disable_dropout=True,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = trl.GRPOTrainer(
            model=policy,
            reward_funcs=counted,
            args=config,
            train_dataset=dataset,
            processing_class=copy.deepcopy(load_tokenizer(s.model)),  # TRL may set things on it; ours is shared
            callbacks=[StepClock()],
        )
        start = time.perf_counter()
        trainer.train()
        call_seconds = time.perf_counter() - start
    lm = trainer.model.eval()
    with torch.no_grad():
        after = _evaluate(lm, reference, s)
    return {
        "completions": sum(sampled),
        "tokens": sum(tokens),
        "train_s": StepClock.seconds,
        "train_cpu_s": StepClock.cpu_seconds,
        "sampling_cpu_s": split["sampling"],
        "reward_cpu_s": split["reward"],
        "train_call_s": call_seconds,
        "eval_before": before,
        "eval_after": after,
        "trainable_M": trainable_count(policy, s.freeze_layers) / 1e6,
        "library": f"trl {trl.__version__}",
    }


def run_textgym(name: str, s: Settings) -> dict[str, Any]:
    """A textgym agent through :func:`textgym.training.train` on the shared settings (in the child process)."""
    import tempfile
    from importlib.metadata import version

    from textgym.models import load_causal_lm
    from textgym.training import RunFolder, train

    variant = VARIANTS[name]
    agent = variant["agent"]
    config = {
        "env_id": variant["env_id"],
        "env_kwargs": {"max_new_tokens": s.max_new_tokens, **variant.get("env_kwargs", {})},
        "model": s.model,
        "seed": s.seed,
        "num_envs": s.batch,
        "iterations": s.steps,
        "learning_rate": s.learning_rate,
        "freeze_layers": s.freeze_layers,
        "eval_episodes": s.eval_episodes,
        "device": "cpu",
    }
    if agent.startswith("sb3-"):
        # The shape of LM-PPO's batches: `batch` envs stepped together, a rollout of max_new_tokens steps (about
        # one episode each), minibatches of half the rollout, 2 epochs; the same number of rollouts as LM-PPO.
        config.update(
            {
                "train_envs": s.batch,
                "n_steps": s.max_new_tokens,
                "batch_size": s.max_new_tokens * s.batch // 2,
                "n_epochs": 2,
                "iterations": s.steps,
            }
        )
    else:
        config.update(
            {
                "kl_coef": s.kl_coef,
                "temperature": 1.0,
                "top_k": 0,
                "top_p": 1.0,
                "warmup_iterations": 0,  # TRL's schedule here: constant
                "eval_every": s.steps,  # before the first iteration and after the last only
            }
        )
    if agent in ("rloo", "grpo"):
        config["samples_per_prompt"] = s.group
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        summary = train(agent, config, run, checkpoint_every=s.steps, progress=False)
        call_seconds = time.perf_counter() - start
        records = RunFolder(run).records("train")
    if agent.startswith("sb3-"):
        tokens = records[-1]["iteration"] if records else 0  # SB3's timesteps: one token each
    else:
        tokens = round(sum(r["episode/length"] * s.batch for r in records))
    return {
        "completions": summary["episodes"],
        "tokens": tokens,
        "train_s": summary["seconds"],
        "train_cpu_s": summary.get("cpu_seconds", float("nan")),
        "train_call_s": call_seconds,
        "eval_before": summary["eval_before"],
        "eval_after": summary["eval_after"],
        "trainable_M": trainable_count(load_causal_lm(s.model), s.freeze_layers) / 1e6,
        "library": f"textgym {version('textgym')}",
    }


def child(name: str, s: Settings) -> dict[str, Any]:
    """Runs one variant in this (fresh) process and adds its peak memory."""
    import resource

    import torch

    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    result = run_trl(s) if name == "trl-grpo" else run_textgym(name, s)
    return {**result, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


# -- the parent -----------------------------------------------------------------------------------------------------


def run_variant(name: str, s: Settings) -> dict[str, Any]:
    """Runs ``name`` in a fresh process; a crash comes back as ``{"error": ...}``, not as an exception."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(s.threads),
        "MKL_NUM_THREADS": str(s.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [sys.executable, __file__, "--child", name, "--settings", json.dumps(asdict(s))]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"[:300], "process_s": time.perf_counter() - start}
    return {**json.loads(lines[-1][len("RESULT ") :]), "process_s": time.perf_counter() - start}


def _mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3g}"
    std = (sum((value - mean) ** 2 for value in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3g} ± {std:.2g}"


def table(results: dict[str, dict[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per variant over its seeds (mean ± std): throughput, its ratio to TRL's, the reward gained."""

    def ok(name: str) -> list[dict[str, Any]]:
        return [r for r in results.get(name, {}).values() if "error" not in r]

    def rate(r: dict[str, Any], key: str = "completions") -> float:
        return r[key] / r["train_s"]

    trl = ok("trl-grpo")
    trl_rate = sum(rate(r) for r in trl) / len(trl) if trl else None
    trl_cpu = sum(r["completions"] / r.get("train_cpu_s", float("nan")) for r in trl) / len(trl) if trl else None
    lmppo = ok("lmppo-sparse")
    lmppo_tokens = sum(rate(r, "tokens") for r in lmppo) / len(lmppo) if lmppo else None
    rows = []
    for name, by_seed in results.items():
        runs = ok(name)
        errors = [f"seed {seed}: {r['error']}" for seed, r in by_seed.items() if "error" in r]
        if not runs:
            rows.append({"variant": name, "status": "; ".join(errors)})
            continue
        rates = [rate(r) for r in runs]
        cpu_rates = [r["completions"] / r.get("train_cpu_s", float("nan")) for r in runs]
        token_rates = [rate(r, "tokens") for r in runs]
        gains = [
            100 * (r["eval_after"] - r["eval_before"]) / r["completions"] for r in runs if r["eval_before"] is not None
        ]
        shares = _fixed_shares(runs)
        mean_rate, mean_tokens = sum(rates) / len(rates), sum(token_rates) / len(token_rates)
        rows.append(
            {
                "variant": name,
                "seeds": len(runs),
                "completions": _mean_std([r["completions"] for r in runs]),
                "train s": _mean_std([r["train_s"] for r in runs]),
                "completions/s": _mean_std(rates),
                "vs TRL GRPO": None if trl_rate is None else mean_rate / trl_rate,
                "completions/CPU-s": _mean_std(cpu_rates),
                "CPU vs TRL GRPO": None if trl_cpu is None else sum(cpu_rates) / len(cpu_rates) / trl_cpu,
                "tokens/s": _mean_std(token_rates),
                "tokens/s vs LM-PPO sparse": None if lmppo_tokens is None else mean_tokens / lmppo_tokens,
                "eval before": _mean_std([r["eval_before"] for r in runs]) if gains else "",
                "eval after": _mean_std([r["eval_after"] for r in runs]) if gains else "",
                "gain per 100 completions": _mean_std(gains) if gains else "",
                "sampling + reward share of CPU-s": _mean_std(shares) if shares else "",
                "peak RSS GiB": max(r["peak_rss_gib"] for r in runs),
                "status": "ok" if not errors else "; ".join(errors),
            }
        )
    columns = list(next((row for row in rows if "seeds" in row), rows[0]))
    return [{column: row.get(column, "") for column in columns} for row in rows]


def _fixed_shares(runs: Iterable[dict[str, Any]]) -> list[float]:
    """Per run that measured it, the share of its training CPU time spent generating and scoring (TRL runs)."""
    return [(r["sampling_cpu_s"] + r["reward_cpu_s"]) / r["train_cpu_s"] for r in runs if "sampling_cpu_s" in r]


def notes(s: Settings, seeds: list[int], results: dict[str, dict[int, dict[str, Any]]]) -> str:
    """The exact settings, what is equal and what differs, for the report."""
    runs = [r for by_seed in results.values() for r in by_seed.values()]
    versions = sorted({r["library"] for r in runs if "library" in r})
    shares = _fixed_shares(results.get("trl-grpo", {}).values())
    ceiling = f" ({len(shares) / sum(shares):.2f} here)" if shares else ""
    frozen = "textgym's default (embeddings + lowest 60 % of layers)" if s.freeze_layers is None else s.freeze_layers
    return (
        f"Same on every side: {s.model} fp32 policy on the CPU; sentiment train prompts (task template, no chat "
        f"template); reward = textgym's sentiment scorer (P(positive) of opening + completion); temperature 1, no "
        f"top-k/top-p, max {s.max_new_tokens} new tokens; {s.batch} completions per step ({s.batch // s.group} "
        f"prompts x {s.group} for the GRPOs and RLOO; {s.batch} prompts for LM-PPO), {s.steps} steps = "
        f"{s.completions} completions; Adam lr {s.learning_rate:g} constant (no warm-up), grad clip 1; KL "
        f"coefficient {s.kl_coef:g} to the initial model (the GRPOs: beta, k3 in the loss; LM-PPO and RLOO: "
        f"kl_coef, per token in the reward); frozen layers: {frozen}; seeds {seeds}; {s.threads} torch thread(s) "
        f"per run, each run in its own process, one after the other, all in one process tree. Eval: textgym's "
        f"evaluate_lm, {s.eval_episodes} completions of the sentiment eval prompts (each prompt once, then again) "
        f"on fixed seeds and sampling noise, before and after training. Differs: the algorithm with its own "
        f"defaults (TRL GRPO: DAPO loss, 1 step per batch; textgym GRPO: returns-to-go credit (= sequence under "
        f"this sparse reward), token-mean loss, 1 step per batch, trust region max_update_kl 0.03; LM-PPO: value "
        f"head, GAE, 2 epochs x 2 minibatches, trust region; RLOO: leave-one-out baseline, 1 step; SB3 PPO: "
        f"{s.batch} envs stepped together, rollouts of {s.max_new_tokens} steps, minibatches of half a rollout, 2 "
        f"epochs, KV cache and one forward per episode in the update, same lr, no KL penalty, {s.steps} rollouts) "
        f"and the sampler (TRL model.generate; textgym the vector env "
        f"token by token; SB3 one env step per token). train s = sum of the training steps (sampling + reward + "
        f"update), no evaluation, checkpoints or model loading; CPU-s the same steps' process CPU time (one thread: "
        f"less sensitive than wall time to other load on the machine). tokens/s counts generated tokens. gain per 100 "
        f"completions = 100 x (eval after - eval before) / completions. sampling + reward share (TRL GRPO only): "
        f"the part of its CPU-s spent in model.generate and in the reward function, work every side does with the "
        f"same model and scorer; its inverse{ceiling} is the most any side could gain on TRL GRPO's completions per "
        f"CPU-s with a free update and sampling and scoring as fast as TRL's. Versions: {', '.join(versions)}."
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        settings = Settings(**json.loads(args.settings))
        print("RESULT " + json.dumps(child(args.child, settings)), flush=True)
        return
    if "trl-grpo" in args.variants and importlib.util.find_spec("trl") is None:
        raise SystemExit(
            f"TRL is not installed, and the variant trl-grpo needs it. Install it with: {TRL_INSTALL}; "
            "or leave it out with --variants."
        )
    import dataclasses
    from pathlib import Path

    import torch
    from report import RESULTS, write

    base = settings_of(args)
    torch.set_num_threads(base.threads)  # the report's machine line names the runs' thread count
    # Finished runs are kept in a file next to the results, so an interrupted comparison resumes where it was.
    store = Path(RESULTS) / f"{args.name}_runs.json"
    done = json.loads(store.read_text()) if store.exists() and args.resume else {}
    key = json.dumps({k: v for k, v in asdict(base).items() if k != "seed"}, sort_keys=True)
    if done.get("settings") != key:
        done = {"settings": key, "runs": {}}
    for other in args.merge:  # runs made in parallel under other names, with the same settings
        extra = json.loads((Path(RESULTS) / f"{other}_runs.json").read_text())
        if extra.get("settings") == key:
            done["runs"].update({tag: run for tag, run in extra["runs"].items() if "error" not in run})
    if args.merge:
        store.write_text(json.dumps(done, indent=1))
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for seed in args.seeds:
        settings = dataclasses.replace(base, seed=seed)
        for name in args.variants:
            tag = f"{name}/{seed}"
            if tag not in done["runs"] and args.table_only:
                continue
            if tag not in done["runs"]:
                print(f"{name} seed {seed}: {settings.completions} completions ...", flush=True)
                done["runs"][tag] = run_variant(name, settings)
                store.write_text(json.dumps(done, indent=1))
            results.setdefault(name, {})[seed] = done["runs"][tag]
            print(f"{name} seed {seed}: {done['runs'][tag]}", flush=True)
    write(args.name, table(results), notes=notes(base, list(args.seeds), results))


if __name__ == "__main__":
    main()
