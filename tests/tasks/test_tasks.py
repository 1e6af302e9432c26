"""Tests of the tasks (textgym.tasks): look-up, prompt items, embedded data and the default scorers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from textgym.error import DataError, UnknownNameError
from textgym.tasks import PromptItem, Task, get_items, get_scorer, get_task, task_names
from textgym.tasks.base import embedded_data, load_items, read_jsonl

DATA_FILES = {
    "sentiment": "sentiment_prompts.jsonl",
    "detox": "detox_prompts.jsonl",
    "summarize": "summarize_posts.jsonl",
}
SOURCE_KEY = {"sentiment": "text", "detox": "text", "summarize": "post"}


def _rows(name: str) -> list[dict]:
    with open(embedded_data(name), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ look-up


@pytest.mark.parametrize("name", ["sentiment", "detox", "summarize"])
def test_get_task(name: str) -> None:
    task = get_task(name)
    assert isinstance(task, Task)
    assert task.name == name
    assert task.default_max_new_tokens > 0
    assert task.default_prompt_budget > 0
    assert "{source}" in task.prompt_template
    assert get_task(name) is task


def test_task_names() -> None:
    assert {"sentiment", "detox", "summarize"} <= set(task_names())


def test_format_prompt() -> None:
    item = PromptItem("A post.", "A summary.")
    assert get_task("summarize").format_prompt(item) == "A post.\nTL;DR:"
    assert get_task("sentiment").format_prompt(PromptItem("The film was")) == "The film was"
    assert get_task("detox").format_prompt(PromptItem("You are a")) == "You are a"


@pytest.mark.parametrize("lookup", [get_task, get_items, get_scorer])
def test_unknown_task_suggests_name(lookup) -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown task 'sentimnt'\. Did you mean 'sentiment'\?") as info:
        lookup("sentimnt")
    assert "Valid tasks: detox, sentiment, summarize." in str(info.value)


def test_unknown_summarize_scorer_suggests_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'rouge-minilm'"):
        get_scorer("summarize", "rouge-minlm")


# ------------------------------------------------------------------------------------ embedded items


@pytest.mark.parametrize("name", ["sentiment", "detox", "summarize"])
def test_split_counts_match_files(name: str) -> None:
    rows = _rows(DATA_FILES[name])
    train, evaluation = get_items(name, "train"), get_items(name, "eval")
    assert len(train) == sum(row["split"] == "train" for row in rows)
    assert len(evaluation) == sum(row["split"] == "eval" for row in rows)
    assert len(train) + len(evaluation) == len(rows)
    assert train and evaluation
    assert not {item.source for item in train} & {item.source for item in evaluation}
    assert len(evaluation) < len(train)
    assert get_items(name) == train
    assert [item.source for item in train] == [row[SOURCE_KEY[name]] for row in rows if row["split"] == "train"]
    assert all(isinstance(item.source, str) and item.source.strip() for item in train + evaluation)


@pytest.mark.parametrize("name", ["sentiment", "detox"])
def test_openings_have_no_reference(name: str) -> None:
    assert all(item.reference is None for item in get_items(name, "eval"))


def test_summarize_items_have_references_and_meta() -> None:
    for split in ("train", "eval"):
        for item in get_items("summarize", split):
            assert isinstance(item.reference, str) and item.reference.strip()
            assert item.reference != item.source
            assert set(item.meta) == {"title", "topic"}
            assert len(item.reference.split()) < len(item.source.split())


def test_unknown_split_raises() -> None:
    with pytest.raises(DataError, match=r"Unknown split 'test'; use one of \('train', 'eval'\)"):
        get_items("sentiment", "test")


# ------------------------------------------------------------------------------------ user files


def test_user_file_without_split_belongs_to_every_split(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", ['{"text": "First opening"}', "", '{"text": "Second", "mood": "calm"}'])
    for split in ("train", "eval"):
        items = get_items("detox", split, str(path))
        assert [item.source for item in items] == ["First opening", "Second"]
        assert items[1].meta == {"mood": "calm"}
        assert items[0].reference is None


def test_user_file_with_split_field(tmp_path: Path) -> None:
    lines = ['{"text": "a", "split": "train"}', '{"text": "b", "split": "eval"}', '{"text": "c"}']
    path = _write(tmp_path / "mixed.jsonl", lines)
    assert [item.source for item in load_items(path, "train", "text")] == ["a", "c"]
    assert [item.source for item in load_items(path, "eval", "text")] == ["b", "c"]


def test_user_summarize_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "posts.jsonl", ['{"post": "A long post.", "summary": "Short.", "title": "T"}'])
    (item,) = get_items("summarize", "eval", str(path))
    assert item == PromptItem("A long post.", "Short.")
    assert item.meta == {"title": "T"}


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", ['{"text": "fine"}', "", '{"text": "broken"', '{"text": "fine"}'])
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:3 is not valid JSON .*each line must be one object"):
        read_jsonl(path)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:3 is not valid JSON"):
        get_items("sentiment", "train", str(path))


@pytest.mark.parametrize("line", ["[1, 2]", '"just a string"', "3"])
def test_json_line_that_is_not_an_object_raises(tmp_path: Path, line: str) -> None:
    path = _write(tmp_path / "notobject.jsonl", ['{"text": "fine"}', line])
    with pytest.raises(DataError, match=r"notobject\.jsonl:2 is a JSON"):
        load_items(path, "train", "text")


def test_missing_field_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "nofield.jsonl", ['{"text": "ok"}', '{"prompt": "wrong key"}'])
    with pytest.raises(DataError, match=":2 has no 'text' field"):
        get_items("sentiment", "train", str(path))
    posts = _write(tmp_path / "nosummary.jsonl", ['{"post": "A post without a summary."}'])
    with pytest.raises(DataError, match=":1 has no 'summary' field"):
        get_items("summarize", "train", str(posts))


def test_file_without_rows_for_split_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "trainonly.jsonl", ['{"text": "a", "split": "train"}'])
    with pytest.raises(DataError, match="has no rows for split 'eval'"):
        load_items(path, "eval", "text")
    empty = _write(tmp_path / "empty.jsonl", [""])
    with pytest.raises(DataError, match="has no rows for split 'train'"):
        load_items(empty, "train", "text")


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No file at .*nowhere.jsonl"):  # a textgym error: the CLI prints it
        get_items("detox", "train", str(tmp_path / "nowhere.jsonl"))
    with pytest.raises(DataError, match="No file at"):
        get_items("detox", "train", str(tmp_path))  # a folder is no file either


# ------------------------------------------------------------------------------------ data sanity


@pytest.mark.parametrize(
    ("name", "key", "minimum"),
    [
        ("sentiment_prompts.jsonl", "text", 500),
        ("detox_prompts.jsonl", "text", 500),
        ("summarize_posts.jsonl", "post", 150),
        ("sentiment_labelled.jsonl", "text", 200),
    ],
)
def test_data_sizes_and_no_duplicates(name: str, key: str, minimum: int) -> None:
    rows = _rows(name)
    assert len(rows) >= minimum
    texts = [" ".join(row[key].lower().split()) for row in rows]
    assert len(set(texts)) == len(texts)
    assert all(text for text in texts)


def test_summarize_data_fields() -> None:
    rows = _rows("summarize_posts.jsonl")
    assert all(set(row) == {"title", "post", "summary", "topic", "split"} for row in rows)
    summaries = [row["summary"] for row in rows]
    assert len(set(summaries)) == len(summaries)


def test_labelled_sentences_are_balanced() -> None:
    labels = [row["label"] for row in _rows("sentiment_labelled.jsonl")]
    assert set(labels) == {"positive", "negative"}
    assert abs(labels.count("positive") - labels.count("negative")) <= len(labels) // 10


def test_prompt_sets_are_disjoint_from_labelled_set() -> None:
    labelled = {row["text"] for row in _rows("sentiment_labelled.jsonl")}
    assert not labelled & {row["text"] for row in _rows("sentiment_prompts.jsonl")}


# ------------------------------------------------------------------------------------ default scorers


def test_detox_default_scorer_prefers_friendly_completion() -> None:
    score = get_scorer("detox")
    assert get_scorer("detox") is score
    items = [PromptItem("Stop posting, you"), PromptItem("Stop posting, you")]
    toxic, friendly = score(items, [" stupid worthless idiot, I hate you.", " kind soul, thanks for sharing."])
    assert 0.0 <= toxic <= 1.0 and 0.0 <= friendly <= 1.0
    assert friendly - toxic > 0.5


def test_summarize_task_scorer_matches_quality_scorer() -> None:
    from textgym.scorers.summary_quality import SummaryQualityScorer

    items = list(get_items("summarize", "eval")[:2])
    completions = [" " + items[0].reference, " I like trains."]
    kwargs = {"w_rouge": 0.6, "w_similarity": 0.2, "w_length": 0.2}
    score = get_scorer("summarize", scorer_kwargs=kwargs)
    expected = SummaryQualityScorer(**kwargs)(completions, [i.source for i in items], [i.reference for i in items])
    values = score(items, completions)
    assert values == pytest.approx(expected, abs=1e-9)
    assert values[0] - values[1] > 0.3
    assert np.isfinite(values).all()
