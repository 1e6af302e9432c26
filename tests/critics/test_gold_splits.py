"""The dev/test parts of the measurement sets (textgym.splits), the hard-v2 rows, and `critic-eval --split`."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from textgym.cli import main as cli
from textgym.critics.attribution import AttributionCritic
from textgym.critics.evaluation import evaluate, load_gold
from textgym.error import DataError
from textgym.scorers.sentiment_lm import CALIBRATION_SET, FEW_SHOT_EXAMPLES
from textgym.splits import DEV_SHARE, PARTS, select, split_key, split_of
from textgym.tasks.base import embedded_data, read_jsonl

GOLD = [f"critic_gold_{task}.jsonl" for task in ("detox", "sentiment", "summarize")]
LABELLED = ["sentiment_labelled.jsonl", "sentiment_labelled_hard.jsonl"]
BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def rows_of(name: str) -> list[dict]:
    return read_jsonl(embedded_data(name))


def normal(text: str) -> str:
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- the rule and the stored splits


@pytest.mark.parametrize("name", GOLD + LABELLED)
def test_every_row_has_a_valid_split_that_the_rule_reproduces(name):
    rows = rows_of(name)
    assert all(row["split"] in PARTS and row["source"] in DEV_SHARE for row in rows)
    assert [split_of(row) for row in rows] == [row["split"] for row in rows]
    assert {row["split"] for row in rows} == set(PARTS)


@pytest.mark.parametrize("name", GOLD + LABELLED)
def test_each_source_gets_about_its_dev_share(name):
    for source, share in DEV_SHARE.items():
        splits = [row["split"] for row in rows_of(name) if row["source"] == source]
        if splits:
            assert abs(splits.count("dev") / len(splits) - share) < 0.15, (source, Counter(splits))


def test_the_split_depends_on_the_key_and_source_only():
    row = {"text": "the leads are great , but the pacing kills it .", "label": "negative"}
    assert split_of(row) == split_of({**row, "label": "positive", "split": "whatever"})
    assert split_key({"post": "P", "completion": " a"}) == split_key({"post": "P", "completion": " b"}) == "P"
    assert split_key({"prompt": "P", "completion": " a"}) == "P a"
    assert split_key({"group": "g-1", "text": "t"}) == "g-1"
    texts = [f"sentence number {i}" for i in range(400)]
    shares = {s: [split_of({"text": t, "source": s}) for t in texts].count("dev") / 400 for s in DEV_SHARE}
    assert shares["v1"] == pytest.approx(0.5, abs=0.08) and shares["hard-v2"] == pytest.approx(1 / 3, abs=0.08)
    with pytest.raises(DataError, match="Unknown source 'mine'.*add it to DEV_SHARE"):
        split_of({"text": "t", "source": "mine"})


def test_select_reads_one_part_or_all_and_rows_without_a_split_belong_to_every_part():
    rows = [{"text": "a", "split": "dev"}, {"text": "b", "split": "test"}, {"text": "c"}]
    assert [r["text"] for r in select(rows, "dev")] == ["a", "c"]
    assert [r["text"] for r in select(rows, "test")] == ["b", "c"]
    assert select(rows, "all") == rows
    with pytest.raises(DataError, match="Unknown split 'train'"):
        select(rows, "train")
    with pytest.raises(DataError, match="split 'eval'"):
        select([{"text": "a", "split": "eval"}], "test")


@pytest.mark.parametrize("task", ["detox", "sentiment", "summarize"])
def test_load_gold_reads_only_the_rows_of_its_split(task):
    rows = rows_of(f"critic_gold_{task}.jsonl")
    for split in PARTS:
        completions = [row["completion"] for row in rows if row["split"] == split]
        assert [g.completion for g in load_gold(task, split=split)] == completions
    assert len(load_gold(task)) == len(load_gold(task, split="all")) == len(rows)


# ---------------------------------------------------------------- the hard-v2 rows


@pytest.mark.parametrize(("task", "minimum"), [("detox", 40), ("sentiment", 40), ("summarize", 20)])
def test_hard_rows_are_mostly_test_and_their_gold_spans_are_in_their_texts(task, minimum):
    hard = [row for row in rows_of(f"critic_gold_{task}.jsonl") if row["source"] == "hard-v2"]
    assert len(hard) >= minimum
    splits = Counter(row["split"] for row in hard)
    assert splits["test"] > splits["dev"] > 0
    for row in hard:
        assert row["kind"] and row["completion"].startswith(" ")
        for span in row["spans"]:
            assert span["text"] in row["completion"], (span, row["completion"])
    gold = {g.completion: g for g in load_gold(task)}  # locates each span exactly, or raises
    for row in hard:
        found = [row["completion"][s.start : s.end] for s in gold[row["completion"]].spans]
        assert found == [span["text"] for span in row["spans"]]
    labels = Counter(span["label"] for row in hard for span in row["spans"])
    assert sum(not row["spans"] for row in hard) >= 5  # clean texts with scary words, neutral plot summaries, ...
    assert len(labels) == {"detox": 1, "sentiment": 2, "summarize": 3}[task]


def test_the_hard_labelled_set_is_large_balanced_and_new():
    rows = rows_of("sentiment_labelled_hard.jsonl")
    assert len(rows) >= 600 and all(row["source"] == "hard-v2" for row in rows)
    assert len({normal(row["text"]) for row in rows}) == len(rows)
    for split in PARTS:
        labels = Counter(row["label"] for row in rows if row["split"] == split)
        assert set(labels) == {"positive", "negative"}
        assert abs(labels["positive"] - labels["negative"]) <= sum(labels.values()) // 20
    seen = {normal(text) for text, _ in FEW_SHOT_EXAMPLES + CALIBRATION_SET}
    for name in ("sentiment_labelled.jsonl", "sentiment_prompts.jsonl"):
        seen |= {normal(row["text"]) for row in rows_of(name)}
    assert not {normal(row["text"]) for row in rows} & seen
    kinds = Counter(row["kind"] for row in rows)
    assert {"tokenised", "negation", "contrast", "sarcasm"} <= set(kinds)
    tokenised = [row for row in rows if row["text"] == row["text"].lower() and row["text"].endswith(" .")]
    assert len(tokenised) >= 250  # lower-cased, tokenised: "the film 's pacing is off , but ..."


def test_mirrored_sentences_share_a_group_and_so_a_split():
    groups: dict[str, list[dict]] = {}
    for row in rows_of("sentiment_labelled_hard.jsonl"):
        if "group" in row:
            groups.setdefault(row["group"], []).append(row)
    assert len(groups) >= 100
    for members in groups.values():
        assert sorted(row["label"] for row in members) == ["negative", "positive"]
        assert len({row["split"] for row in members}) == 1


# ---------------------------------------------------------------- critic-eval --split


def write_gold(path: Path) -> str:
    def row(completion: str, toxic: list[str], **split: str) -> dict:
        spans = [{"text": phrase, "label": "toxic"} for phrase in toxic]
        return {"prompt": "Hey", "completion": completion, "spans": spans} | split

    rows = [
        row(" you stupid idiot, go away", ["stupid idiot"]),  # no split field: in every part
        row(" thanks, see you at noon", [], split="test"),
        row(" shut up, loser", ["loser"], split="test"),
        row(" you are a moron", ["you"], split="dev"),
        row(" what a lovely day", ["lovely"], split="dev"),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def critic_eval(tmp_path, capsys, *flags: str) -> tuple[dict, str]:
    out = tmp_path / "result.json"
    code = cli(["critic-eval", "--task", "detox", "--critic", "attribution", "--json", str(out), *flags])
    assert code == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_critic_eval_measures_the_test_split_by_default_and_only_its_rows(tmp_path, capsys):
    gold = write_gold(tmp_path / "gold.jsonl")
    critic = AttributionCritic("detox")
    expected = {split: evaluate(critic, load_gold("detox", gold, split=split)) for split in ("dev", "test", "all")}
    assert expected["dev"].f1 != expected["test"].f1  # the parts differ, so a mix-up shows
    for flags, split, texts in [((), "test", 3), (("--split", "test"), "test", 3), (("--split", "dev"), "dev", 3),
                                (("--split", "all"), "all", 5)]:  # fmt: skip
        result, printed = critic_eval(tmp_path, capsys, "--gold", gold, *flags)
        assert result["split"] == split and result["examples"] == texts
        assert (result["precision"], result["recall"], result["f1"]) == pytest.approx(
            (expected[split].precision, expected[split].recall, expected[split].f1)
        )
        assert f"on the {split} split" in printed and f"({texts} texts)" in printed


def test_critic_eval_on_the_packaged_set_counts_the_test_rows(tmp_path, capsys):
    result, printed = critic_eval(tmp_path, capsys, "--split", "test")
    assert result["examples"] == sum(row["split"] == "test" for row in rows_of("critic_gold_detox.jsonl"))


def test_critic_eval_refuses_a_split_without_rows(tmp_path, capsys):
    path = tmp_path / "dev_only.jsonl"
    path.write_text(json.dumps({"prompt": "a", "completion": " b", "spans": [], "split": "dev"}) + "\n")
    assert cli(["critic-eval", "--task", "detox", "--critic", "attribution", "--gold", str(path)]) == 2
    assert "has no 'test' rows; choose another --split" in capsys.readouterr().err


# ---------------------------------------------------------------- the benchmarks' command lines


def load_benchmark(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # for their `from report import write`
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_benchmarks_measure_the_test_split_and_the_hard_set_by_default():
    scorer = load_benchmark("scorer_accuracy")
    assert (scorer.parse_args([]).set, scorer.parse_args([]).split) == ("hard", ["test"])
    assert scorer.SETS["hard"] == "sentiment_labelled_hard.jsonl"
    assert scorer.parse_args(["--set", "original", "--split", "dev", "test"]).split == ["dev", "test"]
    critics = load_benchmark("critic_quality")
    assert (critics.parse_args([]).split, critics.parse_args([]).critics) == (["test"], "grid")
    with pytest.raises(SystemExit):
        critics.parse_args(["--split", "train"])
