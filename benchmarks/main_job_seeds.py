"""The main job over several seeds: LM-PPO on critic vs sparse sentiment rewards, before/after on the eval prompts.

Runs ``textgym compare --seeds ...`` (the README's main job with more seeds) into ``--out``, or only summarises an
existing ``--out`` folder with ``--summarise-only``, or (``--from-grid``) summarises the rewards grid's stored LM-PPO
sentiment sparse and critic runs, whose settings are the main job's (checked: a run whose config differs from what
``textgym compare`` would run is refused); writes ``results/main_job_seeds.{md,json}`` and the comparison plot
``results/main_job_seeds.png``.

    python benchmarks/main_job_seeds.py --from-grid benchmarks/results/rewards_runs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from report import RESULTS, write

from textgym.bench.grid import Grid
from textgym.cli import build_parser
from textgym.cli_train import COMPARE_IDS, MAIN_JOB, agent_config
from textgym.training import RunFolder, agent_spec, plot_curves

GRID = Path(__file__).parent / "grids" / "rewards.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/main_job_seeds")
    parser.add_argument("--summarise-only", action="store_true")
    parser.add_argument("--from-grid", default=None, help="stored rewards-grid runs to summarise instead (a folder)")
    args = parser.parse_args()
    out = Path(args.out)
    if args.from_grid:
        summaries, source = grid_runs(Path(args.from_grid), args.seeds), f"the rewards grid's runs in {args.from_grid}"
    else:
        if not args.summarise_only:
            command = [sys.executable, "-m", "textgym.cli", "compare", "--seeds", *map(str, args.seeds)]
            subprocess.run([*command, "--out", str(out)], check=True)
        summaries, source = json.loads((out / "summary.json").read_text()), f"`textgym compare` runs in {out}"
    rows = []
    for env_id in dict.fromkeys(s["env_id"] for s in summaries):
        runs = [s for s in summaries if s["env_id"] == env_id]
        before = np.array([s["eval_before"] for s in runs])
        after = np.array([s["eval_after"] for s in runs])
        kl = np.array([s["kl_after"] for s in runs])
        rows.append(
            {
                "environment": env_id,
                "seeds": len(runs),
                "episodes": runs[0]["episodes"],
                "eval before (untrained)": f"{before.mean():.3f}",
                "eval after, mean ± std": f"{after.mean():.3f} ± {after.std():.3f}",
                "after, per seed": " / ".join(f"{value:.3f}" for value in after),
                "seeds above untrained": f"{int((after > before).sum())}/{len(runs)}",
                "KL to ref after (nats/episode)": f"{kl.mean():.2f}",
                "train minutes per run": f"{np.mean([s['seconds'] for s in runs]) / 60:.1f}",
            }
        )
    write(
        "main_job_seeds",
        rows,
        notes=f"`textgym compare` defaults: LM-PPO on SmolLM2-135M-Instruct (60 % of layers frozen and shared with "
        "the reference, lr 3e-5 after a 2-iteration warm-up, every update within 0.03 nats/token of the rollout "
        f"policy, kl_coef 0.05), {MAIN_JOB['num_envs']} envs x {MAIN_JOB['iterations']} iterations = "
        f"{MAIN_JOB['num_envs'] * MAIN_JOB['iterations']} episodes of the task's length (at most 24 tokens); eval "
        f"every {MAIN_JOB['eval_every']} iterations = mean extrinsic reward (P(positive) by the default sentiment "
        f"scorer) of {MAIN_JOB['eval_episodes']} eval-split prompts (each once), sampled at T=1 on fixed seeds and "
        f"noise. From {source}. Run while other jobs shared the 2 cores, so minutes are upper bounds. Plot: "
        "main_job_seeds.png.",
    )
    if args.from_grid:
        plot_curves(
            {f"{s['env_id']} seed {s['seed']}": Path(args.from_grid) / s["run"] for s in summaries},
            RESULTS / "main_job_seeds.png",
        )
    else:
        shutil.copy(out / "comparison.png", RESULTS / "main_job_seeds.png")


ROUNDING_ONLY = ("transposed_decode", "share_prompts", "sampler_scores")
"""Settings that change float rounding only, not the method: a run stored before one existed still has the main
job's settings."""


def grid_runs(stored: Path, seeds: list[int]) -> list[dict]:
    """The summaries of the grid's LM-PPO sentiment critic and sparse runs of ``seeds`` that exist in ``stored``.

    Raises:
        SystemExit: A run's config is not the one ``textgym compare`` builds for its env id and seed.
    """
    args = build_parser().parse_args(["compare"])
    config_class = agent_spec(args.agent).config_class()
    cells = {(cell.env_id, cell.agent, cell.seed, cell.iterations): cell for cell in Grid.from_file(GRID).cells()}
    summaries = []
    for env_id in COMPARE_IDS:
        for seed in seeds:
            cell = cells.get((env_id, args.agent, seed, MAIN_JOB["iterations"]))
            run = RunFolder(stored / cell.name) if cell is not None else None
            if run is None or not run.summary.exists():
                continue
            expected = {"agent": args.agent, **config_class(**agent_config(args, env_id, seed, MAIN_JOB)).to_dict()}
            found = run.read_config()
            for key in ROUNDING_ONLY:
                if key not in found:  # stored before the setting existed
                    expected.pop(key, None)
            if found != expected:
                differ = sorted(key for key in expected.keys() | found.keys() if expected.get(key) != found.get(key))
                raise SystemExit(
                    f"{cell.name} was not run with the main job's settings (differs in: {', '.join(differ)})"
                )
            summaries.append({**json.loads(run.summary.read_text()), "run": cell.name})
    if not summaries:
        raise SystemExit(f"No LM-PPO sentiment sparse or critic runs of the main job's settings in {stored}.")
    return summaries


if __name__ == "__main__":
    main()
