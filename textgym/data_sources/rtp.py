"""RealToxicityPrompts: toxic prompts for training, non-toxic ones held out by hash for evaluation."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textgym.data_sources.common import RTP_ID, RTP_SUBSETS, check_positive, check_split, finish, load_rows
from textgym.error import DataError, SettingsError
from textgym.tasks.base import PromptItem

# -- RealToxicityPrompts ------------------------------------------------------------------------------------------


def is_held_out(text: str, eval_fraction: float) -> bool:
    """Whether a prompt belongs to the eval side of the deterministic split.

    The first 8 bytes of the SHA-256 of the UTF-8 text, read as a big-endian integer and divided by 2**64, give a
    number in [0, 1); the prompt is held out when it is below ``eval_fraction``.
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def rtp_prompt(row: Mapping[str, Any], source: str | Path = "the data set") -> tuple[str, float | None]:
    """The prompt text and its toxicity from a RealToxicityPrompts row.

    The ``prompt`` field is a dict (``{"text", "toxicity", ...}``) on the hub and in JSON files; a CSV holds it as
    a JSON string or as flattened ``prompt.text`` / ``prompt.toxicity`` columns. A missing toxicity is ``None``.
    """
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.lstrip().startswith("{"):
        prompt = json.loads(prompt)
    if not isinstance(prompt, Mapping):
        prompt = {"text": row.get("prompt.text"), "toxicity": row.get("prompt.toxicity")}
    text = prompt.get("text")
    if not isinstance(text, str):
        raise DataError(f"A row of {str(source)!r} has no prompt text (a 'prompt' dict with 'text'): {dict(row)}.")
    toxicity = prompt.get("toxicity")
    if toxicity is None or (isinstance(toxicity, float) and math.isnan(toxicity)):
        return text.strip(), None
    return text.strip(), float(toxicity)


def _in_subset(
    subset: str, toxicity: float | None, challenging: bool, toxic_threshold: float, nontoxic_threshold: float
) -> bool:
    if subset == "all":
        return True
    if subset == "challenging":
        return challenging
    if toxicity is None:
        return False
    return toxicity > toxic_threshold if subset == "toxic" else toxicity < nontoxic_threshold


def load_rtp_prompts(
    source: str | Path = RTP_ID,
    split: str = "train",
    subset: str | None = None,
    toxic_threshold: float = 0.6,
    nontoxic_threshold: float = 0.5,
    eval_fraction: float = 0.1,
    limit: int | None = None,
    seed: int = 0,
) -> list[PromptItem]:
    """Prompts from RealToxicityPrompts for the detox task.

    The defaults follow the detoxification literature: train on prompts that invite toxic continuations, and
    evaluate on non-toxic prompts (toxicity < 0.5, as in DExperts' and Quark's evaluation sets).

    Args:
        source: A hub id or local copy with the fields ``prompt`` (``{"text", "toxicity", ...}``) and
            ``challenging``.
        split: ``"train"`` or ``"eval"``: the two sides of the hash split (:func:`is_held_out`).
        subset: ``"toxic"`` (prompt toxicity > ``toxic_threshold``), ``"challenging"`` (the data set's
            challenging flag), ``"nontoxic"`` (toxicity < ``nontoxic_threshold``) or ``"all"``. Default:
            ``"toxic"`` for train, ``"nontoxic"`` for eval. Prompts without a toxicity score are only in
            ``"challenging"`` and ``"all"``.
        toxic_threshold: Bound of the ``"toxic"`` subset.
        nontoxic_threshold: Bound of the ``"nontoxic"`` subset.
        eval_fraction: Share of prompts held out for ``"eval"`` by the hash split.
        limit: Keep at most this many prompts, drawn at random with ``seed`` (in data-set order).
        seed: Seed of the draw when ``limit`` is set.

    Returns:
        Items with ``source`` the prompt text and ``meta`` its ``toxicity`` and ``challenging`` flag.

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        DataError: The source cannot be read, lacks a field, or leaves no prompts.
        SettingsError: An unknown subset, a fraction outside (0, 1) or a bad ``limit``.
    """
    check_split(split)
    check_positive("limit", limit)
    subset = subset or ("toxic" if split == "train" else "nontoxic")
    if subset not in RTP_SUBSETS:
        raise SettingsError(f"Unknown RealToxicityPrompts subset {subset!r}; use one of {RTP_SUBSETS}.")
    if not 0 < eval_fraction < 1:
        raise SettingsError(f"eval_fraction must lie strictly between 0 and 1, got {eval_fraction!r}.")
    items = []
    for row in load_rows(source, ["train"]):
        text, toxicity = rtp_prompt(row, source)
        challenging = bool(row.get("challenging", False))
        if not text or is_held_out(text, eval_fraction) != (split == "eval"):
            continue
        if _in_subset(subset, toxicity, challenging, toxic_threshold, nontoxic_threshold):
            items.append(PromptItem(text, meta={"toxicity": toxicity, "challenging": challenging}))
    return finish(items, limit, seed, source)
