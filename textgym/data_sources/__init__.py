"""Loaders for the paper's data sets: IMDB reviews, RealToxicityPrompts and Reddit TL;DR.

Each loader reads a data set through the ``datasets`` library (``pip install 'textgym[data]'``), either from the
Hugging Face Hub by its id or from a local copy in the same format as the hub's, and returns textgym
:class:`~textgym.tasks.PromptItem` objects. :func:`export_prompts` writes them in the JSON-lines format that
``gym.make(..., prompts_path=...)`` reads, and :func:`prepare` does both in one call (what
``textgym data prepare`` runs).

A ``source`` is one of:

- a hub id (``"stanfordnlp/imdb"``, ``"allenai/real-toxicity-prompts"``, ``"CarperAI/openai_summarize_tldr"``,
  ``"trl-lib/tldr"``, or any data set with the same fields);
- a local ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file, read whole as one split of the data set;
- a local folder written by ``Dataset.save_to_disk`` (one split) or ``DatasetDict.save_to_disk`` (the split is
  picked by name as on the hub).

An existing local path always wins over a hub id of the same name.

Splits: textgym's ``train`` and ``eval`` map to the data set's ``train`` and ``test`` (IMDB) or ``valid`` /
``validation`` (TL;DR). RealToxicityPrompts has a single split, so its prompts are divided by a hash of their text
(:func:`is_held_out`): the same prompt always falls on the same side, on every machine and in every version.

Modules: ``common`` (reading a source, shared checks), ``imdb``, ``rtp``, ``tldr``, ``prepare`` (export, prepare).
"""

from textgym.data_sources.common import import_datasets, is_local, load_rows
from textgym.data_sources.imdb import clean_review, load_imdb_prompts, review_opening
from textgym.data_sources.prepare import DATASET_TASKS, LOADERS, export_prompts, loader_options, prepare, prompt_row
from textgym.data_sources.rtp import is_held_out, load_rtp_prompts, rtp_prompt
from textgym.data_sources.tldr import load_tldr, parse_tldr_prompt, tldr_pair

__all__ = [
    "DATASET_TASKS",
    "LOADERS",
    "clean_review",
    "export_prompts",
    "import_datasets",
    "is_held_out",
    "is_local",
    "load_imdb_prompts",
    "load_rows",
    "load_rtp_prompts",
    "load_tldr",
    "loader_options",
    "parse_tldr_prompt",
    "prepare",
    "prompt_row",
    "review_opening",
    "rtp_prompt",
    "tldr_pair",
]
