"""Tests of the paper data-set loaders (textgym.data_sources) on small local copies in the hubs' formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import textgym  # noqa: F401  (registers the ids)
from textgym.data_sources import (
    export_prompts,
    is_held_out,
    load_imdb_prompts,
    load_rtp_prompts,
    load_tldr,
    parse_tldr_prompt,
    prepare,
    review_opening,
)
from textgym.error import DataError, MissingPackageError, SettingsError, UnknownNameError
from textgym.tasks import PromptItem, get_items

datasets = pytest.importorskip("datasets")
pd = pytest.importorskip("pandas")

IMDB_ROWS = [
    {"text": "One of the best films<br /><br />I have seen in years, with a superb cast.", "label": 1},
    {"text": "A dull, lifeless<br/>mess that wastes its cast and our time entirely.", "label": 0},
    {"text": "Too short.", "label": 0},
    {"text": "One of the best films I have seen, and I have seen a lot of them.", "label": 1},
    {"text": "The plot\nmakes   no sense at all and the ending is worse than the start.", "label": 0},
]


def _rtp_row(text: str, toxicity: float | None, challenging: bool = False) -> dict:
    scores = {"toxicity": toxicity, "profanity": None, "insult": None}
    return {
        "filename": "0001.txt",
        "begin": 0,
        "end": len(text),
        "challenging": challenging,
        "prompt": {"text": text, **scores},
        "continuation": {"text": " and more.", **scores},
    }


RTP_ROWS = [
    _rtp_row(f"Prompt number {index} says", toxicity, challenging=index % 5 == 0)
    for index, toxicity in enumerate([0.05, 0.3, 0.55, 0.61, 0.9, None, 0.49, 0.75] * 25)
]

CARPER_PROMPT = (
    "SUBREDDIT: r/relationships\nTITLE: My roommate eats my food\nPOST: Every week my groceries vanish. "
    "I asked her twice.\n\nShe laughs it off.\nTL;DR: "
)
TRL_PROMPT = "SUBREDDIT: r/personalfinance\n\nTITLE: Pay off the car first?\n\nPOST: I owe $6k at 8%.\n\nTL;DR:"


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    """Writes rows in the format the suffix names, the way a user's local copy of a hub data set would look."""
    if path.suffix == ".jsonl":
        return _write_jsonl(path, rows)
    if path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif path.suffix == ".parquet":
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    else:
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


# ------------------------------------------------------------------------------------ IMDB


def test_review_opening_cuts_words_and_strips_line_breaks() -> None:
    text = "Great<br /><br />film,   truly<BR>great.\nSee it."
    assert review_opening(text, 3) == "Great film, truly"
    assert review_opening(text, 6) is None  # no word left to continue
    assert review_opening(text, 5) == "Great film, truly great. See"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", "_saved"])
def test_imdb_from_every_local_format(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"imdb{suffix}", IMDB_ROWS)
    items = load_imdb_prompts(str(path), n_words=4)
    assert [item.source for item in items] == [
        "One of the best",  # the fourth review repeats this opening: kept once
        "A dull, lifeless mess",
        "The plot makes no",
    ]
    assert [item.meta["label"] for item in items] == [1, 0, 0]
    assert all("<br" not in item.source and item.reference is None for item in items)


@pytest.mark.parametrize("n_words", [1, 2, 8])
def test_imdb_cut_length(tmp_path: Path, n_words: int) -> None:
    items = load_imdb_prompts(_write_jsonl(tmp_path / "imdb.jsonl", IMDB_ROWS), n_words=n_words)
    assert items and all(len(item.source.split()) == n_words for item in items)


def test_imdb_label_filter_and_limit(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "imdb.jsonl", IMDB_ROWS)
    negative = load_imdb_prompts(path, n_words=3, label=0)
    assert [item.source for item in negative] == ["A dull, lifeless", "The plot makes"]
    everything = load_imdb_prompts(path, n_words=5)
    first = load_imdb_prompts(path, n_words=5, limit=2, seed=3)
    assert first == load_imdb_prompts(path, n_words=5, limit=2, seed=3)
    assert len(first) == 2 and set(first) < set(everything)
    assert first == [item for item in everything if item in first]  # data-set order kept
    draws = {tuple(load_imdb_prompts(path, n_words=5, limit=2, seed=seed)) for seed in range(6)}
    assert len(draws) > 1


def test_imdb_splits_of_a_saved_dataset_dict(tmp_path: Path) -> None:
    folder = tmp_path / "imdb"
    train = datasets.Dataset.from_list(IMDB_ROWS[:2])
    test = datasets.Dataset.from_list(IMDB_ROWS[4:])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(folder))
    assert [item.source for item in load_imdb_prompts(folder, "eval", n_words=2)] == ["The plot"]
    assert len(load_imdb_prompts(folder, "train", n_words=2)) == 2
    assert [item.source for item in load_imdb_prompts(folder, "train", n_words=2, source_split="test")] == ["The plot"]
    with pytest.raises(DataError, match=r"no split named 'validation'.*'train', 'test'.*source_split"):
        load_imdb_prompts(folder, "eval", source_split="validation")


def test_imdb_bad_arguments(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "imdb.jsonl", IMDB_ROWS)
    with pytest.raises(SettingsError, match="n_words must be a positive integer, got 0"):
        load_imdb_prompts(path, n_words=0)
    with pytest.raises(SettingsError, match="limit must be a positive integer or None"):
        load_imdb_prompts(path, limit=-1)
    with pytest.raises(DataError, match="Unknown split 'test'"):
        load_imdb_prompts(path, split="test")
    with pytest.raises(DataError, match="No prompts left"):
        load_imdb_prompts(path, n_words=100)
    other = _write_jsonl(tmp_path / "other.jsonl", [{"review": "no text field", "label": 1}])
    with pytest.raises(DataError, match=r"has no 'text' field"):
        load_imdb_prompts(other)


# ------------------------------------------------------------------------------------ RealToxicityPrompts


def test_hash_split_is_pinned() -> None:
    # The side of a prompt must never change between versions or machines (SHA-256, not Python's hash()).
    assert is_held_out("I hate it when", 0.1)  # 0.0139
    assert not is_held_out("You are such a", 0.9)  # 0.9036
    assert is_held_out("You are such a", 0.95)


def test_hash_split_fraction() -> None:
    held = sum(is_held_out(f"prompt {index}", 0.2) for index in range(4000))
    assert 0.17 < held / 4000 < 0.23


def test_rtp_toxicity_filters_and_disjoint_splits(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS)
    train = load_rtp_prompts(path, "train", eval_fraction=0.3)
    evaluation = load_rtp_prompts(path, "eval", eval_fraction=0.3)
    assert train and evaluation
    assert all(item.meta["toxicity"] > 0.6 for item in train)
    assert all(item.meta["toxicity"] < 0.5 for item in evaluation)
    everything = {item.source for split in ("train", "eval") for item in load_rtp_prompts(path, split, "all", 0.3)}
    held_out = {item.source for item in load_rtp_prompts(path, "eval", "all", eval_fraction=0.3)}
    assert len(everything) == len(RTP_ROWS)
    assert held_out == {text for text in everything if is_held_out(text, 0.3)}
    assert not {item.source for item in train} & held_out
    assert {item.source for item in evaluation} <= held_out
    expected_toxic = {
        row["prompt"]["text"]
        for row in RTP_ROWS
        if (row["prompt"]["toxicity"] or 0) > 0.6 and not is_held_out(row["prompt"]["text"], 0.3)
    }
    assert {item.source for item in train} == expected_toxic


def test_rtp_subsets_and_thresholds(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS)
    challenging = load_rtp_prompts(path, subset="challenging")
    assert challenging and all(item.meta["challenging"] for item in challenging)
    assert any(item.meta["toxicity"] is None for item in challenging)  # unscored prompts count here
    strict = load_rtp_prompts(path, toxic_threshold=0.8)
    assert strict and all(item.meta["toxicity"] > 0.8 for item in strict)
    assert len(strict) < len(load_rtp_prompts(path))
    assert len(load_rtp_prompts(path, limit=5, seed=1)) == 5
    with pytest.raises(SettingsError, match=r"Unknown RealToxicityPrompts subset 'toxc'.*'toxic'"):
        load_rtp_prompts(path, subset="toxc")
    with pytest.raises(SettingsError, match="eval_fraction must lie strictly between 0 and 1"):
        load_rtp_prompts(path, eval_fraction=1.0)


def test_rtp_from_parquet_and_flattened_csv(tmp_path: Path) -> None:
    expected = load_rtp_prompts(_write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS), "eval", "all")
    assert load_rtp_prompts(_write(tmp_path / "rtp.parquet", RTP_ROWS), "eval", "all") == expected
    flat = pd.json_normalize(RTP_ROWS)  # columns prompt.text, prompt.toxicity, ... as a CSV export has them
    flat.to_csv(tmp_path / "rtp.csv", index=False)
    from_csv = load_rtp_prompts(tmp_path / "rtp.csv", "eval", "all")
    assert from_csv == expected
    assert [item.meta["toxicity"] for item in from_csv] == [item.meta["toxicity"] for item in expected]


# ------------------------------------------------------------------------------------ TL;DR


def test_parse_carper_and_trl_prompts() -> None:
    carper = parse_tldr_prompt(CARPER_PROMPT)
    assert carper == {
        "subreddit": "r/relationships",
        "title": "My roommate eats my food",
        "post": "Every week my groceries vanish. I asked her twice.\n\nShe laughs it off.",
    }
    trl = parse_tldr_prompt(TRL_PROMPT)
    assert trl == {"subreddit": "r/personalfinance", "title": "Pay off the car first?", "post": "I owe $6k at 8%."}
    inner = parse_tldr_prompt("POST: Long story. TL;DR: I quit.\nThen more.\nTL;DR:")
    assert inner == {"subreddit": "", "title": "", "post": "Long story. TL;DR: I quit.\nThen more."}
    with pytest.raises(DataError, match="must contain 'POST: <the post>'"):
        parse_tldr_prompt("TITLE: no post here\nTL;DR:")


def test_tldr_carper_format_and_max_words(tmp_path: Path) -> None:
    rows = [
        {"prompt": CARPER_PROMPT, "label": " Roommate eats my food and laughs."},
        {"prompt": TRL_PROMPT.replace("\n\n", "\n"), "label": "Car or savings?"},
    ]
    items = load_tldr(_write_jsonl(tmp_path / "tldr.jsonl", rows))
    assert items[0] == PromptItem(parse_tldr_prompt(CARPER_PROMPT)["post"], "Roommate eats my food and laughs.")
    assert items[0].meta == {"title": "My roommate eats my food", "subreddit": "r/relationships"}
    assert items[1].source == "I owe $6k at 8%."
    assert [item.source for item in load_tldr(tmp_path / "tldr.jsonl", max_words=6)] == ["I owe $6k at 8%."]


@pytest.mark.parametrize(("eval_name", "summary_key"), [("valid", "label"), ("validation", "completion")])
def test_tldr_eval_split_of_a_saved_dataset_dict(tmp_path: Path, eval_name: str, summary_key: str) -> None:
    train = datasets.Dataset.from_list([{"prompt": CARPER_PROMPT, summary_key: " Food thief."}])
    valid = datasets.Dataset.from_list([{"prompt": TRL_PROMPT, summary_key: " Car?"}])
    folder = tmp_path / "tldr"
    datasets.DatasetDict({"train": train, eval_name: valid, "test": valid}).save_to_disk(str(folder))
    assert [item.reference for item in load_tldr(folder, "train")] == ["Food thief."]
    assert [(item.source, item.reference) for item in load_tldr(folder, "eval")] == [("I owe $6k at 8%.", "Car?")]


def test_tldr_post_summary_rows_from_parquet(tmp_path: Path) -> None:
    rows = [{"title": "T", "post": "A post about things.", "summary": "Things."}]
    items = load_tldr(_write(tmp_path / "tldr.parquet", rows))
    assert items == [PromptItem("A post about things.", "Things.")] and items[0].meta == {"title": "T"}


# ------------------------------------------------------------------------------------ export and prepare


def test_export_round_trip_through_gym_make(tmp_path: Path) -> None:
    train = load_imdb_prompts(_write_jsonl(tmp_path / "imdb.jsonl", IMDB_ROWS), n_words=4)
    path = tmp_path / "out" / "prompts.jsonl"
    assert export_prompts({"train": train, "eval": train[:1]}, path) == len(train) + 1
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"text": "One of the best", "label": 1, "split": "train"}
    env = gym.make("TextSentiment-sparse-v0", prompts_path=str(path), max_new_tokens=2)
    assert [item.source for item in env.unwrapped.items] == [item.source for item in train]
    _, info = env.reset(seed=0, options={"prompt_index": 1})
    assert info["prompt"] == "A dull, lifeless mess"
    evaluation = gym.make("TextSentiment-sparse-v0", prompts_path=str(path), split="eval")
    assert [item.source for item in evaluation.unwrapped.items] == ["One of the best"]
    env.close()
    evaluation.close()


def test_gym_make_with_a_missing_prompt_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(DataError, match=r"No file at '.*nowhere.jsonl': expected a JSON-lines file"):
        gym.make("TextSentiment-sparse-v0", prompts_path=str(missing))


def test_export_summaries_and_detox_prompts(tmp_path: Path) -> None:
    items = [PromptItem("A post.", "A summary.", {"title": "T", "split": "ignored"})]
    path = tmp_path / "tldr.jsonl"
    assert export_prompts(items, path) == 1
    assert json.loads(path.read_text(encoding="utf-8")) == {"post": "A post.", "summary": "A summary.", "title": "T"}
    assert get_items("summarize", "eval", str(path)) == (PromptItem("A post.", "A summary."),)
    rtp = load_rtp_prompts(_write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS), limit=3)
    export_prompts(rtp, tmp_path / "detox.jsonl")
    assert [item.source for item in get_items("detox", "train", str(tmp_path / "detox.jsonl"))] == [
        item.source for item in rtp
    ]
    with pytest.raises(DataError, match="with and without references"):
        export_prompts([PromptItem("a"), PromptItem("b", "c")], tmp_path / "mixed.jsonl")
    with pytest.raises(DataError, match="Unknown split 'test'"):
        export_prompts({"test": items}, tmp_path / "bad.jsonl")


def test_prepare_writes_both_splits(tmp_path: Path) -> None:
    rtp = _write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS)
    out = tmp_path / "detox.jsonl"
    counts = prepare("rtp", str(rtp), out, eval_fraction=0.3, limit=4)
    assert counts == {"train": 4, "eval": 4}
    assert len(get_items("detox", "train", str(out))) == 4
    assert len(get_items("detox", "eval", str(out))) == 4
    imdb = {"train": _write_jsonl(tmp_path / "a.jsonl", IMDB_ROWS[:2]), "eval": _write(tmp_path / "b.csv", IMDB_ROWS)}
    assert prepare("imdb", imdb, tmp_path / "imdb.jsonl", n_words=3) == {"train": 2, "eval": 3}
    # With the default 8 words, the two "One of the best films I have seen" reviews differ at the 8th word.
    assert prepare("imdb", imdb["eval"], tmp_path / "one.jsonl", splits=["eval"]) == {"eval": 4}


def test_prepare_errors(tmp_path: Path) -> None:
    imdb = _write_jsonl(tmp_path / "imdb.jsonl", IMDB_ROWS)
    with pytest.raises(UnknownNameError, match=r"Unknown data set 'imbd'. Did you mean 'imdb'\?"):
        prepare("imbd", imdb, tmp_path / "out.jsonl")
    with pytest.raises(UnknownNameError, match=r"Unknown imdb option 'n_word'. Did you mean 'n_words'\?"):
        prepare("imdb", imdb, tmp_path / "out.jsonl", splits=["train"], n_word=3)
    with pytest.raises(DataError, match="holds one split of imdb"):
        prepare("imdb", imdb, tmp_path / "out.jsonl")
    with pytest.raises(DataError, match="No source given for split 'eval'"):
        prepare("imdb", {"train": imdb}, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


# ------------------------------------------------------------------------------------ errors


def test_local_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'.*missing.jsonl' does not exist"):
        load_imdb_prompts(tmp_path / "missing.jsonl")
    (tmp_path / "reviews.txt").write_text("text\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"file type is not one of .jsonl, .json, .csv, .parquet"):
        load_imdb_prompts(tmp_path / "reviews.txt")
    (tmp_path / "broken.jsonl").write_text('{"text": "ok", "label": 1}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"Could not read the data set at '.*broken.jsonl'"):
        load_imdb_prompts(tmp_path / "broken.jsonl")


def test_missing_datasets_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(MissingPackageError, match=r"needs the 'datasets' package.*pip install 'datasets>=2.18'"):
        load_imdb_prompts(tmp_path / "imdb.jsonl")


HUB_SCRIPT = """
import sys
import textgym.data_sources as sources
print("imported datasets at import:", "datasets" in sys.modules)
try:
    sources.load_imdb_prompts()
except Exception as error:
    print(type(error).__name__, error)
"""


def test_unreachable_hub_is_a_data_error(tmp_path: Path) -> None:
    # The real loader, with the hub switched off so that it fails at once instead of retrying for 25 s.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "imported datasets at import: False"
    assert lines[1].startswith("DataError Could not load the data set 'stanfordnlp/imdb' from the Hugging Face Hub")
    assert "pass a local copy as the source" in lines[1]


def test_data_prepare_command(tmp_path: Path, capsys) -> None:
    from textgym.cli import main

    rtp = _write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS)
    out = tmp_path / "detox.jsonl"
    argv = ["data", "prepare", "rtp", "--source", str(rtp), "--out", str(out)]
    assert main([*argv, "--option", "eval_fraction=0.3", "--option", "limit=4"]) == 0
    printed = capsys.readouterr().out
    assert "train: 4 prompts, eval: 4 prompts" in printed and "TextDetox-critic-v0" in printed
    assert len(get_items("detox", "eval", str(out))) == 4
    assert main([*argv, "--option", "no_such_option=1"]) == 2  # a clear error, not a traceback
    assert "no_such_option" in capsys.readouterr().err
