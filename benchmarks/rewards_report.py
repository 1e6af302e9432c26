"""The reward-wrapper comparison: a rewards grid's runs as one table, learning curves, and a reward-hacking check.

Reads the run folders of ``benchmarks/grids/rewards.yaml`` (``benchmarks/run_rewards_grid.sh OUT``) and writes
``benchmarks/results/rewards.{md,json}`` and ``benchmarks/results/rewards_curves.png``. Per (task, reward, agent),
over the seeds that finished:

- **final reward**: the last evaluation's mean task score (32 episodes of the eval prompts, the task's own scorer:
  no dense reward plays a part in evaluation), mean +- std over seeds; and the gain over the untrained policy.
- **vs sparse**: the final reward's difference from the sparse run's (same task and agent), Welch's t-test p over
  the seeds, and that p adjusted by Holm's step-down method for the comparisons its task and agent make (up to
  five: every dense reward against sparse; a reward with one seed on either side has no p and is not counted).
  With 3 seeds a lead needs to be several times the seed-to-seed spread to pass 0.05.
- **episodes to the sparse final**: the first evaluation (in training episodes, on the seed-mean curve) at which
  the reward's curve reaches the sparse run's mean final reward for the same task and agent ("-" if it never does).
- **cost**: the dense reward's scorer evaluations and the critic's texts per training episode (beyond the env's
  one score per episode), and training seconds (process CPU seconds too: one thread, shared machine).
- **copying** (summaries): the share of the final completions' word bigrams that occur in their post, a reward
  that pays for words of the post shows it here.
- **trust region**: the share of optimizer steps that the per-update bound undid (``max_update_kl``: a reward
  whose updates are often undone trains on fewer steps) and the largest post-update KL per token of any update.
- **reward-hacking check**: every completion of each run's last evaluation, judged by a model that no reward used
  (``benchmarks/rewards_judges.py``), beside the fluency of the same texts.

Judgements are cached (``rewards_judges.judged``), so re-running after more runs finish judges only those. The
runs are read from ``OUT/runs/`` (a grid's results folder) or from a folder of run folders, by default the finished
runs kept in the repository (``benchmarks/results/rewards_runs/``, written by ``benchmarks/store_rewards_runs.sh
OUT``).

Usage: ``python benchmarks/rewards_report.py [OUT]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from rewards_judges import eval_posts, judged, sentiment_accuracy  # noqa: E402  (benchmarks/ is not a package)


def load_runs(out: Path) -> list[dict[str, Any]]:
    """Every finished run of the grid: its cell, evaluations, costs and final completions."""
    from textgym.envs.registration import task_of

    runs = []
    for folder in sorted((out / "runs" if (out / "runs").is_dir() else out).iterdir()):
        if not (folder / "summary.json").exists() or not (folder / "cell.json").exists():
            continue
        cell = json.loads((folder / "cell.json").read_text())
        metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        train = [m for m in metrics if m["kind"] == "train"]
        evals = [(m["episodes"], m["eval/extrinsic"]) for m in metrics if m["kind"] == "eval"]
        completions_file = folder / "final_completions.jsonl"
        completions = (
            [json.loads(line) for line in completions_file.read_text().splitlines()]
            if completions_file.exists()
            else []
        )
        runs.append(
            {
                "name": folder.name,
                "task": task_of(cell["env_id"]),
                "reward": cell["variant"],
                "agent": cell["agent"],
                "seed": cell["seed"],
                "evals": evals,
                "episodes": train[-1]["episodes"] if train else 0,
                "seconds": sum(m["time/iteration_s"] for m in train),
                "cpu_seconds": sum(m.get("time/iteration_cpu_s", 0.0) for m in train),
                "scorer_per_episode": _first_known(
                    _per_episode(train, k) for k in ("dense/evaluated", "reward/evaluated")
                ),
                "critic_per_episode": _per_episode(train, "critic/texts_sent"),
                "steps_kept": sum(m.get("ppo/steps", 0) for m in train),
                "steps_undone": sum(m.get("ppo/undone_steps", 0) for m in train),
                "max_post_update_kl": max(
                    (m["ppo/post_update_kl"] for m in train if "ppo/post_update_kl" in m), default=None
                ),
                "completions": completions,
            }
        )
    return runs


def _per_episode(train: list[dict], key: str) -> float | None:
    """The increase of a cumulative counter per training episode, from its first to its last record.

    The counters restart at 0 when a run resumes from its checkpoint; :func:`textgym.bench.summary.cumulative`
    sums across the restarts. None when the run did not log it (runs of a worker process that started before the
    counters were logged).
    """
    from textgym.bench.summary import cumulative

    points = [(m["episodes"], m[key]) for m in train if key in m]
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    totals = cumulative(value for _, value in points)
    return (totals[-1] - totals[0]) / (points[-1][0] - points[0][0])


def _mean_known(values: list[float | None], zero: bool) -> str:
    """The mean of the logged values; 0 for a reward that makes no such calls; "n/a" when no run logged them."""
    known = [value for value in values if value is not None]
    if known:
        return f"{np.mean(known):.2f}"
    return "0" if zero else "n/a"


def _first_known(values) -> float | None:
    return next((value for value in values if value is not None), None)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation; NaNs for no values."""
    return (float(np.mean(values)), float(np.std(values))) if values else (float("nan"), float("nan"))


def mean_curve(members: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed-mean eval curve at the evaluation points all members share: episodes, mean, std."""
    shared = sorted(set.intersection(*(set(e for e, _ in run["evals"]) for run in members)))
    values = np.array([[dict(run["evals"])[e] for e in shared] for run in members])
    return np.array(shared), values.mean(0), values.std(0)


def grouped(runs: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """The runs by (task, agent, reward)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["task"], run["agent"], run["reward"])].append(run)
    return groups


def finals_and_holm(groups: dict[tuple, list[dict]]) -> tuple[dict[tuple, list[float]], dict[tuple, float]]:
    """Each group's final rewards, and the Holm-adjusted p of each dense reward against sparse within its task and
    agent (the rewards with 2+ seeds on both sides)."""
    finals = {key: [run["evals"][-1][1] for run in members] for key, members in groups.items()}
    families: dict[tuple, dict[tuple, float]] = defaultdict(dict)  # (task, agent) -> the dense rewards' p
    for (task, agent, reward), final in finals.items():
        p = welch_p(final, finals.get((task, agent, "sparse"), [])) if reward != "sparse" else None
        if p is not None:
            families[(task, agent)][(task, agent, reward)] = p
    return finals, {key: value for family in families.values() for key, value in holm(family).items()}


def untrained_outliers(runs: list[dict], tolerance: float = 1e-4) -> str:
    """The runs whose untrained evaluation differs by more than ``tolerance`` from the rest of their task's, as a
    sentence. It is the same model, prompts and sampling seeds in every run, so such a difference means another
    environment (see :func:`textgym.training.run_folder.environment`): another token sampled somewhere (scorer
    rounding alone moves the mean by ~1e-7)."""
    from collections import Counter

    odd = []
    for task in sorted({run["task"] for run in runs}):
        members = [run for run in runs if run["task"] == task]
        usual = Counter(round(run["evals"][0][1], 4) for run in members).most_common(1)[0][0]
        odd += [
            f"{run['name']} ({run['evals'][0][1]:.4f} against {usual:.4f})"
            for run in members
            if abs(run["evals"][0][1] - usual) > tolerance
        ]
    if not odd:
        return "Every run of a task starts from the same untrained evaluation (one environment)."
    return (
        f"{len(odd)} runs start from another untrained evaluation than the rest of their task's, so they ran in "
        "another environment (the CPU's instruction set, package versions or threads; run folders record them in "
        "environment.jsonl since it exists): a rerun on the same kind of machine repeats such a run, on another "
        "it gives other numbers: " + "; ".join(odd) + "."
    )


def by_task(runs: list[dict]) -> str:
    """The final rewards as one Markdown table, a row per task and agent and a column per reward (the README's):
    mean ± std over seeds, the seed count where it is under 3, bold where the difference from sparse (either sign)
    passes Holm's 0.05."""
    from textgym.rewards import REWARD_KINDS

    groups = grouped(runs)
    finals, adjusted = finals_and_holm(groups)
    names = {"lmppo": "LM-PPO", "grpo": "GRPO"}
    lines = ["| task | agent | untrained | " + " | ".join(REWARD_KINDS) + " |", "|---" * (3 + len(REWARD_KINDS)) + "|"]
    for task, agent in sorted({(task, agent) for task, agent, _ in groups}, key=lambda k: (k[0], k[1] != "lmppo")):
        first = [run["evals"][0][1] for run in runs if (run["task"], run["agent"]) == (task, agent)]
        cells = []
        for reward in REWARD_KINDS:
            final = finals.get((task, agent, reward))
            text = "{:.3f} ± {:.3f}".format(*mean_std(final)) if final else "-"
            if final and len(final) < 3:
                text += f" ({len(final)} seed{'s' if len(final) > 1 else ''})"
            cells.append(f"**{text}**" if adjusted.get((task, agent, reward), 1.0) < 0.05 else text)
        lines.append(f"| {task} | {names.get(agent, agent)} | {np.mean(first):.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table(runs: list[dict], judgements: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per (task, reward, agent), rewards in the grid's order."""
    from textgym.rewards import REWARD_KINDS

    groups = grouped(runs)
    order = {reward: i for i, reward in enumerate(REWARD_KINDS)}
    finals, adjusted = finals_and_holm(groups)
    rows = []
    for (task, agent, reward), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))
    ):
        final = finals[(task, agent, reward)]
        before = [run["evals"][0][1] for run in members]
        sparse = finals.get((task, agent, "sparse"), [])  # the sparse runs' finals
        reach = "-"
        if sparse and reward != "sparse":
            target = float(np.mean(sparse))
            episodes, curve, _ = mean_curve(members)
            hits = [int(e) for e, v in zip(episodes, curve, strict=True) if e > 0 and v >= target]
            reach = str(hits[0]) if hits else f"never (final {curve[-1]:.3f} < {target:.3f})"
        judged_members = [judgements[run["name"]] for run in members if run["name"] in judgements]
        row = {
            "task": task,
            "reward": reward,
            "agent": agent,
            "seeds": len(members),
            "episodes": int(np.mean([run["episodes"] for run in members])),
            "final reward": "{:.3f} ± {:.3f}".format(*mean_std(final)),
            "gain": f"{np.mean(final) - np.mean(before):+.3f}",
            "vs sparse": versus_sparse(final, sparse, reward, adjusted.get((task, agent, reward))),
            "episodes to sparse final": reach,
            "scorer calls / ep": _mean_known(  # a critic's queries are critiques (the next column), not scores
                [None if reward == "critic" else run["scorer_per_episode"] for run in members],
                zero=reward in ("sparse", "uniform", "critic"),
            ),
            "critic texts / ep": _mean_known([run["critic_per_episode"] for run in members], zero=reward != "critic"),
            "train s": "{:.0f} ± {:.0f}".format(*mean_std([run["seconds"] for run in members])),
            "train CPU-s": "{:.0f}".format(np.mean([run["cpu_seconds"] for run in members])),
            **trust_region(members),
        }
        if task == "summarize":
            row["post bigrams"] = "{:.1%}".format(np.mean([post_bigram_share(run["completions"]) for run in members]))
        if judged_members:
            row["judge"] = judged_members[0]["judge"]
            row["judge mean"] = "{:.3f} ± {:.3f}".format(*mean_std([j["judge_mean"] for j in judged_members]))
            row["perplexity"] = "{:.1f}".format(np.mean([j["perplexity"] for j in judged_members]))
            row["distinct-2"] = "{:.3f}".format(np.mean([j["distinct_2"] for j in judged_members]))
        rows.append(row)
    return rows


def plot(runs: list[dict], path: Path) -> None:
    """Learning curves: a row per agent (LM-PPO first), a column per task (one y scale down a column), a line per
    reward in the same colour everywhere (sparse dashed black: the baseline), a +- std band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from textgym.rewards import REWARD_KINDS

    tasks = sorted({run["task"] for run in runs})
    agents = sorted({run["agent"] for run in runs}, key=lambda agent: (agent != "lmppo", agent))
    colours = {reward: f"C{i}" for i, reward in enumerate(r for r in REWARD_KINDS if r != "sparse")} | {"sparse": "k"}
    groups = grouped(runs)
    figure, axes = plt.subplots(
        len(agents), len(tasks), figsize=(4.6 * len(tasks), 3.4 * len(agents)), squeeze=False, sharey="col"
    )
    for row, agent in enumerate(agents):
        for column, task in enumerate(tasks):
            axis = axes[row][column]
            for reward in REWARD_KINDS:
                members = groups.get((task, agent, reward))
                if not members:
                    continue
                episodes, mean, std = mean_curve(members)
                style = {"color": colours.get(reward), "linestyle": "--" if reward == "sparse" else "-"}
                axis.plot(episodes, mean, label=f"{reward} ({len(members)})", **style)
                axis.fill_between(episodes, mean - std, mean + std, alpha=0.12, color=style["color"])
            axis.set_title(f"{task}, {agent}")
            axis.set_xlabel("training episodes")
            axis.set_ylabel("eval task score (seeds)")
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def welch_p(final: list[float], sparse: list[float]) -> float | None:
    """Welch's t-test p of two sets of final rewards, or None where either has a single seed."""
    if len(final) < 2 or len(sparse) < 2:
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(final, sparse, equal_var=False).pvalue)


def holm(pvalues: dict[Any, float]) -> dict[Any, float]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979): the i-th smallest of m becomes the largest
    of ``(m - j + 1) * p_(j)`` over j <= i, capped at 1; it controls the family-wise error rate."""
    adjusted, running = {}, 0.0
    ranked = sorted(pvalues.items(), key=lambda kv: kv[1])
    for rank, (key, p) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        adjusted[key] = running
    return adjusted


def versus_sparse(final: list[float], sparse: list[float], reward: str, adjusted: float | None = None) -> str:
    """``+0.029 (p 0.06, Holm 0.24)``: the mean final reward's lead over the sparse runs', Welch's t-test p over
    seeds, and the Holm-adjusted p of its task and agent's family (where given)."""
    if reward == "sparse" or not sparse:
        return "-"
    lead = f"{np.mean(final) - np.mean(sparse):+.3f}"
    p = welch_p(final, sparse)
    if p is None:
        return f"{lead} (1 seed)"
    return f"{lead} (p {p:.2f}" + (f", Holm {adjusted:.2f})" if adjusted is not None else ")")


def post_bigram_share(completions: list[dict]) -> float:
    """The share of the completions' lower-cased word bigrams that occur in their own post (summaries)."""
    import re

    posts = eval_posts()
    found = total = 0
    for row in completions:
        post = re.findall(r"\w+", posts.get(row["prompt"], row["prompt"]).lower())
        words = re.findall(r"\w+", row["completion"].lower())
        in_post = set(zip(post, post[1:], strict=False))
        pairs = list(zip(words, words[1:], strict=False))
        found += sum(pair in in_post for pair in pairs)
        total += len(pairs)
    return found / total if total else float("nan")


def trust_region(members: list[dict]) -> dict[str, str]:
    """The share of the members' optimizer steps that the update bound undid, and their largest post-update KL."""
    kept, undone = sum(run["steps_kept"] for run in members), sum(run["steps_undone"] for run in members)
    kls = [run["max_post_update_kl"] for run in members if run["max_post_update_kl"] is not None]
    return {
        "steps undone": f"{undone / (kept + undone):.0%}" if kept + undone else "n/a",
        "max update KL": f"{max(kls):.3f}" if kls else "n/a",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "out", nargs="?", default=str(Path(__file__).parent / "results" / "rewards_runs"),
        help="a grid's results folder (benchmarks/run_rewards_grid.sh OUT) or a folder of run folders",
    )  # fmt: skip
    parser.add_argument("--no-judge", action="store_true", help="skip the reward-hacking judges")
    parser.add_argument("--name", default="rewards", help="results name under benchmarks/results/")
    args = parser.parse_args()
    out = Path(args.out)
    runs = load_runs(out)
    if not runs:
        print(f"No finished runs under {out}.")
        return 1
    judgements = {} if args.no_judge else judged(out, runs)
    from report import RESULTS, write

    rows = table(runs, judgements)
    notes = (
        f"{len(runs)} finished runs of benchmarks/grids/rewards.yaml (run by benchmarks/run_rewards_grid.sh). "
        "final reward: last eval's mean task score (32 eval episodes), mean ± std over seeds; gain: over the "
        "untrained policy's eval; vs sparse: the lead over the sparse runs' final reward (same task and agent) and "
        "Welch's t-test p over seeds, and Holm's adjustment of it for the task and agent's comparisons with sparse "
        "(the dense rewards with 2 seeds or more on both sides); episodes to sparse "
        "final: first eval point of the seed-mean curve at or above the sparse run's mean final reward (same task "
        "and agent); scorer calls / ep: the dense reward's scorer "
        "evaluations per training episode beyond the env's own score (cache misses; n/a: the runs predate the "
        "counter); critic texts / ep: texts sent to the critic; steps undone: the share of optimizer steps the "
        "update bound (max_update_kl) undid; max update KL: the largest post-update approximate KL per token from "
        "the rollout policy of any update, in nats; post bigrams (summaries): the share of the final completions' "
        "word bigrams that occur in their post, mean over seeds; judge: a model no reward used, on every final-eval "
        "completion "
        f"(for sentiment P(positive) from a logistic regression on MiniLM embeddings fitted on the labelled sets' "
        f"dev parts{sentiment_accuracy(judgements)}; for detox alt-profanity-check's P(profane); for summaries "
        "Gemma 3 270M's log-likelihood gain of the summary from the post), with the perplexity of the same "
        "completions under Gemma 3 270M and distinct-2 over each prompt's completions. " + untrained_outliers(runs)
    )
    write(args.name, rows, notes)
    summary = by_task(runs)
    (RESULTS / f"{args.name}_by_task.md").write_text(
        f"Final eval reward by task, agent and reward ({len(runs)} runs; `python benchmarks/rewards_report.py`, "
        "from rewards.md): mean ± std over seeds (3 unless marked), bold where the difference from sparse (either "
        "sign) passes Holm's 0.05 within its task and agent.\n\n" + summary
    )
    print(summary)
    plot(runs, RESULTS / f"{args.name}_curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
