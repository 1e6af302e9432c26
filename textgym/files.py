"""Atomic writes: a file or folder appears whole at its path, or not at all (a crash or kill leaves the old one).

Everything textgym keeps on disk goes through here: training checkpoints (textgym's own and SB3's), prompt files
and the on-disk model cache. The content is written to a temporary in the same folder (so the final rename stays on
one filesystem), flushed to disk, then renamed onto the path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Runs ``write(temporary)`` to write a file, then moves it onto ``path`` in one step.

    The temporary sits in ``path``'s folder and keeps its suffix (SB3's ``model.save`` adds ``.zip`` to a path
    without one); it does not exist before ``write`` runs and is removed if ``write`` raises, leaving any previous
    file at ``path`` as it was. Missing parent folders are created.

    Args:
        path: Where the file goes.
        write: Writes the whole file at the path it is given, e.g. ``lambda tmp: torch.save(state, tmp)``.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def atomic_write_folder(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Runs ``write(folder)`` to fill a new, empty temporary folder, then renames it to ``path``.

    For outputs that are folders (``save_pretrained``). A folder cannot replace another one in one step, so when
    ``path`` already exists once ``write`` is done (another process finished first) that one is kept and this
    one is discarded.

    Args:
        path: Where the folder goes.
        write: Writes the folder's contents into the (existing, empty) folder it is given.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(temporary)
        for file in temporary.rglob("*"):
            if file.is_file():
                _fsync(file)
        try:
            os.rename(temporary, path)
        except OSError:
            if not path.exists():  # another process may have won the race; anything else is an error
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return path


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
