"""benchmarks/scorer_accuracy.py: the prompt candidates are a choice, so they may read the dev part only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import scorer_accuracy  # noqa: E402  (benchmarks/ is not a package)

from textgym.scorers.sentiment_lm import FEW_SHOT_EXAMPLES  # noqa: E402


@pytest.mark.parametrize("split", [["test"], ["dev", "test"], ["all"]])
def test_the_prompt_candidates_refuse_any_part_but_dev(split):
    args = scorer_accuracy.parse_args(["--candidates", "prompts", "--split", *split])
    with pytest.raises(SystemExit, match="dev only"):
        scorer_accuracy.prompt_ensembles(args, [])


def test_the_prompts_are_the_default_shots_in_other_orders_and_the_v1_shots():
    prompts = list(scorer_accuracy.PROMPTS.values())
    assert prompts[0] == FEW_SHOT_EXAMPLES
    for shots in prompts[1:4]:
        assert sorted(shots) == sorted(FEW_SHOT_EXAMPLES) and shots != FEW_SHOT_EXAMPLES
    assert scorer_accuracy.shuffled(1) == scorer_accuracy.shuffled(1) != scorer_accuracy.shuffled(2)
