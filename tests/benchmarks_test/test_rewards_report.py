"""benchmarks/rewards_report.py: the trust-region columns, read from a stored run of the rewards grid."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import rewards_report  # noqa: E402  (benchmarks/ is not a package)

RUN = BENCHMARKS / "results" / "rewards_runs" / "TextDetox-v0.critic.lmppo.it32.seed0"


def test_the_trust_region_columns_count_the_runs_undone_steps_and_largest_kl(tmp_path):
    for name in ("cell.json", "summary.json", "metrics.jsonl"):
        (tmp_path / RUN.name).mkdir(exist_ok=True)
        shutil.copy(RUN / name, tmp_path / RUN.name / name)
    (run,) = rewards_report.load_runs(tmp_path)
    train = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
    train = [row for row in train if row["kind"] == "train"]
    kept, undone = sum(r["ppo/steps"] for r in train), sum(r["ppo/undone_steps"] for r in train)
    assert undone > 0  # this run's bound did undo steps
    columns = rewards_report.trust_region([run, run])  # the same run twice: shares and maxima unchanged
    assert columns["steps undone"] == f"{undone / (kept + undone):.0%}"
    assert columns["max update KL"] == f"{max(r['ppo/post_update_kl'] for r in train):.3f}"


def test_runs_without_the_counters_say_so():
    run = {"steps_kept": 0, "steps_undone": 0, "max_post_update_kl": None}
    assert rewards_report.trust_region([run]) == {"steps undone": "n/a", "max update KL": "n/a"}


def test_post_bigrams_count_the_completions_word_pairs_found_in_their_post():
    from textgym.tasks import get_items, get_task

    item = get_items("summarize", "eval")[0]
    prompt = get_task("summarize").format_prompt(item)
    words = item.source.split()[:6]
    copied = {"prompt": prompt, "completion": " " + " ".join(words)}  # 5 pairs, all in the post
    unrelated = {"prompt": prompt, "completion": " zebra quantum marmalade"}  # 2 pairs, none in the post
    assert rewards_report.post_bigram_share([copied]) == 1.0
    assert rewards_report.post_bigram_share([unrelated]) == 0.0
    assert rewards_report.post_bigram_share([copied, unrelated]) == 5 / 7


def test_the_lead_over_sparse_comes_with_welchs_p():
    from scipy.stats import ttest_ind

    critic, sparse = [0.493, 0.494, 0.520], [0.453, 0.440, 0.423]
    p = ttest_ind(critic, sparse, equal_var=False).pvalue
    assert rewards_report.versus_sparse(critic, sparse, "critic") == f"+0.064 (p {p:.2f})"
    assert rewards_report.versus_sparse(sparse, sparse, "sparse") == "-"
    assert rewards_report.versus_sparse([0.5], sparse, "critic") == "+0.061 (1 seed)"


def test_a_counter_that_restarts_with_a_resumed_run_still_counts_per_episode():
    # 8 episodes an iteration, 2 requests an episode; the run resumed after episode 16 (the counter restarts at 0)
    train = [{"episodes": e, "dense/requests": v} for e, v in ((8, 16), (16, 32), (24, 16), (32, 32))]
    assert rewards_report._per_episode(train, "dense/requests") == 2.0
    assert rewards_report._per_episode(train[:2], "dense/requests") == 2.0
    assert rewards_report._per_episode(train[:1], "dense/requests") is None
