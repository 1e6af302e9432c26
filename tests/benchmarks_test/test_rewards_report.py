"""benchmarks/rewards_report.py: the trust-region columns, read from a stored run of the rewards grid."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

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
    assert rewards_report.versus_sparse(critic, sparse, "critic", 0.25) == f"+0.064 (p {p:.2f}, Holm 0.25)"
    assert rewards_report.versus_sparse(sparse, sparse, "sparse") == "-"
    assert rewards_report.versus_sparse([0.5], sparse, "critic") == "+0.061 (1 seed)"


def test_a_counter_that_restarts_with_a_resumed_run_still_counts_per_episode():
    # 8 episodes an iteration, 2 requests an episode; the run resumed after episode 16 (the counter restarts at 0)
    train = [{"episodes": e, "dense/requests": v} for e, v in ((8, 16), (16, 32), (24, 16), (32, 32))]
    assert rewards_report._per_episode(train, "dense/requests") == 2.0
    assert rewards_report._per_episode(train[:2], "dense/requests") == 2.0
    assert rewards_report._per_episode(train[:1], "dense/requests") is None


def test_holm_multiplies_the_ith_smallest_p_by_the_hypotheses_left_and_keeps_the_order():
    adjusted = rewards_report.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.2})
    # sorted 0.01, 0.03, 0.04, 0.2: times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 (raised to 0.09: monotone), 0.2
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.2})
    assert rewards_report.holm({"a": 0.5, "b": 0.6}) == {"a": 1.0, "b": 1.0}  # capped at 1
    assert rewards_report.holm({}) == {}


def fake_run(task, reward, final, seed, agent="lmppo"):
    return {
        "name": f"{task}.{reward}.{agent}.{seed}", "task": task, "agent": agent, "reward": reward, "episodes": 256,
        "evals": [(0, 0.3), (256, final)], "scorer_per_episode": 0.0, "critic_per_episode": 0.0,
        "seconds": 1.0, "cpu_seconds": 1.0, "steps_kept": 4, "steps_undone": 0, "max_post_update_kl": 0.01,
        "completions": [],
    }  # fmt: skip


def test_the_table_adjusts_each_task_and_agents_family_on_its_own():
    finals = {"sparse": [0.40, 0.42, 0.41], "critic": [0.50, 0.52, 0.49], "uniform": [0.41, 0.39, 0.43]}
    runs = [fake_run(task, reward, value, seed) for task in ("detox", "sentiment") for reward, values in finals.items()
            for seed, value in enumerate(values)]  # fmt: skip
    runs.append(fake_run("detox", "potential", 0.45, 0))  # one seed: no p, not in the family
    rows = {(row["task"], row["reward"]): row["vs sparse"] for row in rewards_report.table(runs, {})}
    p_critic = rewards_report.welch_p(finals["critic"], finals["sparse"])
    p_uniform = rewards_report.welch_p(finals["uniform"], finals["sparse"])
    family = rewards_report.holm({"critic": p_critic, "uniform": p_uniform})  # two hypotheses per task, not four
    for task in ("detox", "sentiment"):
        assert rows[(task, "critic")] == f"+0.093 (p {p_critic:.2f}, Holm {family['critic']:.2f})"
        assert rows[(task, "uniform")] == f"+0.000 (p {p_uniform:.2f}, Holm {family['uniform']:.2f})"
    assert rows[("detox", "potential")] == "+0.040 (1 seed)"


def test_the_by_task_table_has_a_row_per_task_and_agent_and_bolds_only_what_passes_holm():
    finals = {"sparse": [0.40, 0.42, 0.41], "critic": [0.50, 0.52, 0.49], "uniform": [0.41, 0.39, 0.43]}
    runs = [
        fake_run("detox", reward, value, seed) for reward, values in finals.items() for seed, value in enumerate(values)
    ]
    runs += [fake_run("detox", "sparse", 0.45, 0, "grpo"), fake_run("detox", "critic", 0.47, 0, "grpo")]
    lines = rewards_report.by_task(runs).splitlines()
    assert lines[0] == "| task | agent | untrained | sparse | uniform | potential | attention | occlusion | critic |"
    lmppo, grpo = lines[2].split(" | "), lines[3].split(" | ")
    assert lmppo[:3] == ["| detox", "LM-PPO", "0.300"] and grpo[:2] == ["| detox", "GRPO"]
    holm = rewards_report.holm({
        "critic": rewards_report.welch_p(finals["critic"], finals["sparse"]),
        "uniform": rewards_report.welch_p(finals["uniform"], finals["sparse"]),
    })  # fmt: skip
    assert holm["critic"] < 0.05 <= holm["uniform"]  # the fixture has one lead that passes, one that does not
    assert lmppo[8].rstrip(" |") == "**0.503 ± 0.012**" and lmppo[4] == "0.410 ± 0.016" and lmppo[5] == "-"
    assert grpo[3] == "0.450 ± 0.000 (1 seed)" and grpo[8].rstrip(" |") == "0.470 ± 0.000 (1 seed)"  # no p: not bold


def test_runs_that_start_from_another_untrained_eval_are_named():
    runs = [fake_run("detox", "sparse", 0.5, seed) for seed in range(3)] + [fake_run("sentiment", "sparse", 0.4, 0)]
    runs[2]["evals"] = [(0, 0.3 + 1e-7), (256, 0.5)]  # scorer rounding, not another sampled token
    assert rewards_report.untrained_outliers(runs).startswith("Every run of a task starts from the same")
    runs[1]["evals"] = [(0, 0.31), (256, 0.5)]
    note = rewards_report.untrained_outliers(runs)
    assert note.startswith("1 runs start from another") and "detox.sparse.lmppo.1 (0.3100 against 0.3000)" in note
