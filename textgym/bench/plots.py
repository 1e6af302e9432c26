"""The benchmark's PNG plots: learning curves with seed bands, and sample efficiency.

- ``plots/curves-FAMILY-AGENT-itN.png``: one per comparison (env family, agent, budget), the variants side by side
  in one colour each, against training episodes (left) and training seconds (right). The line with markers is the
  evaluation reward, the thin line the train-batch reward; each is the mean over seeds with a ± std band, the seeds
  interpolated on a common grid (the points any seed has, within the range every seed covers).
- ``plots/sample_efficiency.png``: episodes each variant needs to reach the target reward (mean ± std over the
  seeds that reach it); hatched bars at the budget are variants that never reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def seed_band(series: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[np.ndarray, ...] | None:
    """Mean and std across seeds of ``(x, y)`` curves, interpolated on a common grid.

    The grid is every x any curve has within ``[max of the curves' first x, min of their last x]``, so no curve is
    extrapolated. Returns ``(grid, mean, std)``, or None when the curves share no range.
    """
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in series if len(x)]
    if not curves:
        return None
    low, high = max(x.min() for x, _ in curves), min(x.max() for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= low) & (grid <= high)]
    if grid.size == 0:
        return None
    values = np.stack([np.interp(grid, *_increasing(x, y)) for x, y in curves])
    return grid, values.mean(0), values.std(0)


def _increasing(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted by x, keeping the last y of repeated x (np.interp needs increasing x)."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    last = np.append(x[1:] != x[:-1], True)
    finite = np.isfinite(y)
    return x[last & finite], y[last & finite]


def plot_learning_curves(runs: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Writes one learning-curve PNG per comparison into ``folder``; returns their paths."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    colors = {variant: f"C{i}" for i, variant in enumerate(variant_order({run["variant"] for run in runs}))}
    comparisons: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for run in runs:
        key = (run["family"], run["agent"], run["iterations"])
        comparisons.setdefault(key, {}).setdefault(run["variant"], []).append(run)
    paths = []
    for (family, agent, iterations), variants in sorted(comparisons.items()):
        figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for variant in variant_order(variants):
            members, color = variants[variant], colors[variant]
            for axis, x_name in zip(axes, ("episodes", "seconds"), strict=True):
                for kind, style in (("train", {"lw": 1, "alpha": 0.5}), ("eval", {"lw": 2, "marker": "o", "ms": 3})):
                    band = seed_band(
                        [
                            ([row[x_name] for row in rows], [row["reward"] for row in rows])
                            for rows in ([r for r in run["curve"] if r["kind"] == kind] for run in members)
                        ]
                    )
                    if band is None:
                        continue
                    grid, mean, std = band
                    label = f"{variant} ({kind}, {len(members)} seeds)" if axis is axes[0] else None
                    axis.plot(grid, mean, color=color, label=label, **style)
                    axis.fill_between(grid, mean - std, mean + std, color=color, alpha=0.15 if kind == "eval" else 0.08)
        axes[0].set_xlabel("training episodes")
        axes[1].set_xlabel("training seconds")
        axes[0].set_ylabel("mean extrinsic reward")
        for axis in axes:
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        figure.suptitle(f"{family}, {agent}, {iterations} iterations: mean ± std over seeds")
        figure.tight_layout()
        path = folder / f"curves-{family}-{agent}-it{iterations}.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    return paths


def plot_sample_efficiency(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Writes the episodes-to-target bar chart from :func:`textgym.bench.summary.summarize`'s rows (None: no target)."""
    rows = [row for row in rows if row["target"] is not None]
    if not rows:
        return None
    plt = _pyplot()
    comparisons = sorted({(r["family"], r["agent"], r["iterations"]) for r in rows})
    variants = variant_order({r["variant"] for r in rows})
    width = 0.8 / len(variants)
    figure, axis = plt.subplots(figsize=(max(6, 1.8 * len(comparisons) * len(variants) ** 0.5), 4))
    by_key = {(r["family"], r["agent"], r["iterations"], r["variant"]): r for r in rows}
    for index, variant in enumerate(variants):
        for position, comparison in enumerate(comparisons):
            row = by_key.get((*comparison, variant))
            if row is None:
                continue
            x = position + (index - (len(variants) - 1) / 2) * width
            label = variant
            if row["reached"]:
                axis.bar(x, row["episodes_to_target_mean"], width, yerr=row["episodes_to_target_std"], capsize=3,
                         color=f"C{index}", label=label)  # fmt: skip
                text = f"{row['reached']}/{row['seeds']}"
                axis.annotate(text, (x, row["episodes_to_target_mean"]), ha="center", va="bottom", fontsize=7)
            else:
                axis.bar(x, row["episodes"], width, color="none", edgecolor=f"C{index}", hatch="//", label=label)
                axis.annotate(f">{row['episodes']}", (x, row["episodes"]), ha="center", va="bottom", fontsize=7)
    axis.set_xticks(range(len(comparisons)), [f"{f}\n{a}, {n} it" for f, a, n in comparisons], fontsize=8)
    axis.set_ylabel("training episodes to reach the target")
    axis.set_title("Sample efficiency (target: the sparse variant's final reward unless given)", fontsize=9)
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axis.legend(unique.values(), unique.keys(), fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def variant_order(variants) -> list[str]:
    """The variants in plotting order: ``sparse`` (the baseline) first, then by name; each keeps its colour."""
    return sorted(variants, key=lambda name: (name != "sparse", name))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
