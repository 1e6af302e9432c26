"""Atomic writes: a failed write leaves the previous file or folder whole and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from textgym.files import atomic_write, atomic_write_folder


def test_a_file_appears_whole_and_a_failed_write_keeps_the_old_one(tmp_path):
    path = tmp_path / "sub" / "checkpoint.zip"
    seen: list[Path] = []

    def write(temporary: Path) -> None:
        seen.append(temporary)
        assert not temporary.exists() and temporary.parent == path.parent and temporary.suffix == ".zip"
        temporary.write_text("one")

    assert atomic_write(path, write) == path and path.read_text() == "one"

    def crash(temporary: Path) -> None:
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, crash)
    assert path.read_text() == "one"
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.zip"]  # no temporary left


def test_a_folder_appears_whole_and_an_existing_one_wins_the_race(tmp_path):
    path = tmp_path / "models" / "tiny"
    atomic_write_folder(path, lambda folder: (folder / "config.json").write_text("{}"))
    assert [p.name for p in path.iterdir()] == ["config.json"]

    def crash(folder: Path) -> None:
        (folder / "weights").write_text("half")
        raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        atomic_write_folder(tmp_path / "models" / "other", crash)
    atomic_write_folder(path, lambda folder: (folder / "late.json").write_text("{}"))  # another process was first
    assert [p.name for p in path.iterdir()] == ["config.json"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny"]
