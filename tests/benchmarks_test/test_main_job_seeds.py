"""benchmarks/main_job_seeds.py --from-grid: the grid's runs count as the main job's only with its exact settings."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import main_job_seeds  # noqa: E402  (benchmarks/ is not a package)

STORED = BENCHMARKS / "results" / "rewards_runs"
RUN = "TextSentiment-v0.critic.lmppo.it32.seed0"


@pytest.fixture
def stored(tmp_path) -> Path:
    for file in ("config.json", "summary.json"):
        (tmp_path / RUN).mkdir(exist_ok=True)
        shutil.copy(STORED / RUN / file, tmp_path / RUN / file)
    return tmp_path


def test_a_grid_run_with_the_main_jobs_settings_is_summarised(stored):
    summaries = main_job_seeds.grid_runs(stored, [0, 1])  # seed 1 is not there: skipped
    assert [(s["env_id"], s["seed"], s["run"]) for s in summaries] == [("TextSentiment-critic-v0", 0, RUN)]
    assert summaries[0]["episodes"] == 256


def test_a_grid_run_with_other_settings_is_refused(stored):
    config = json.loads((stored / RUN / "config.json").read_text())
    (stored / RUN / "config.json").write_text(json.dumps({**config, "learning_rate": 1e-4}))
    with pytest.raises(SystemExit, match="differs in: learning_rate"):
        main_job_seeds.grid_runs(stored, [0])


def test_no_matching_run_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="No LM-PPO sentiment"):
        main_job_seeds.grid_runs(tmp_path, [0])


def test_a_rounding_only_setting_counts_only_where_the_stored_run_has_it(stored):
    config = json.loads((stored / RUN / "config.json").read_text())
    assert "transposed_decode" not in config  # stored before it existed: accepted by the first test
    (stored / RUN / "config.json").write_text(json.dumps({**config, "transposed_decode": False}))
    with pytest.raises(SystemExit, match="differs in: transposed_decode"):
        main_job_seeds.grid_runs(stored, [0])
