"""Why the offline critics stay weak: the clause ceiling and how well each offline model tells bad clauses apart.

For each task's gold spans (dev part by default, where choices are made):

- **clause ceiling**: word-level P/R/F1 of an oracle critic that flags exactly the clauses
  (:func:`textgym.critics.segmentation.clauses`) holding a gold span, untrimmed, with the span's label. No critic
  that flags whole clauses can beat it; only trimming a clause to its phrase can.
- **clause AUC** (detox and summaries): how well a model's per-clause signal ranks the clauses holding a gold span
  of the label above the others: the toxicity BiLSTM on the clause alone and by occlusion, and the few-shot LM
  judges (SmolLM2-135M, Gemma 3 270M) with the packaged templates; for summaries the 'supported' question of
  ``summarize_judge_with_support.json`` against clauses labelled incorrect, and two signals without an LM judge: the
  MiniLM embedding's distance to the post (1 - the clause's best cosine similarity to one of the post's sentences)
  and the share of the clause's content words that the post never uses. 0.5 is chance. Detox AUCs are also given
  on the clauses of the ``hard-v2`` rows alone, with the BiLSTM's toxicity of each whole completion (toxic rows
  against clean rows, per source).
- **v1 oracle**: word-level P/R/F1 of a critic that returns the gold spans of every ``v1`` row and nothing on the
  ``hard-v2`` rows (implicit insults, threats, sarcasm, ...): the best a critic blind to the hard kinds can reach.

Usage: ``python benchmarks/critic_ceiling.py [--split dev]``
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import torch
from report import write
from sklearn.metrics import roc_auc_score

from textgym.critics.attribution import AttributionCritic
from textgym.critics.base import Span
from textgym.critics.evaluation import labelled_words, load_gold, word_prf
from textgym.critics.prompts import template_path
from textgym.critics.registry import build_critic
from textgym.critics.segmentation import clauses
from textgym.models import load_sentence_model
from textgym.scorers.toxicity_bilstm import ToxicityScorer
from textgym.splits import PARTS

LMS = ("smollm2-135m-instruct", "gemma3-270m")
FUNCTION_WORDS = frozenset(
    "a an and are as at be but did do for he her him his i in is it me my no not of on or our she so that the their "
    "them they this to was we were with you your".split()
)
"""Words left out of the content-word share: a summary may use them whatever the post says."""


def clause_labels(gold, units) -> list[str | None]:
    """The label of the gold spans each clause overlaps (the commonest one), else None."""
    out = []
    for row, start, end in units:
        labels = [span.label for span in gold[row].spans if span.start < end and span.end > start]
        out.append(max(set(labels), key=labels.count) if labels else None)
    return out


def lm_margins(task: str, model: str, gold, units, question: int = 0, template: str | None = None) -> np.ndarray:
    """A few-shot judge's calibrated margin for each clause, with its text's prompt (or post) as context."""
    kwargs = {"model": model, "trim": False, **({"template_path": template} if template else {})}
    critic = build_critic(task, "lm-judge", **kwargs)
    fields = [{"extrinsic": "unknown"}] * len(gold)
    return critic._effects(question, units, [g.prompt for g in gold], [g.completion for g in gold], fields)


def _stem(word: str) -> str:
    """A crude stem: lower-cased, without a final ``'s`` and, past four letters, a final ``s`` ("sisters'" stays)."""
    word = word.lower().removesuffix("'s")
    return word[:-1] if len(word) > 4 and word.endswith("s") else word


def support_distances(gold, units) -> dict[str, np.ndarray]:
    """Two unsupported-ness signals of each summary clause against its post, higher = less supported."""
    embedder = load_sentence_model("minilm-l6-v2", "cpu", "float32")
    distance, novelty = [], []
    for row, start, end in units:
        post, clause = gold[row].prompt, gold[row].completion[start:end]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", post) if s.strip()]
        vectors = embedder.encode([clause, *sentences], normalize_embeddings=True)
        distance.append(1.0 - float((vectors[1:] @ vectors[0]).max()))
        post_words = {_stem(w) for w in re.findall(r"[\w']+", post)}
        content = [_stem(w) for w in re.findall(r"[\w']+", clause) if w.lower() not in FUNCTION_WORDS]
        novelty.append(sum(w not in post_words for w in content) / max(1, len(content)))
    return {
        "MiniLM distance to the post's nearest sentence": np.array(distance),
        "share of content words the post never uses": np.array(novelty),
    }


def text_toxicity_aucs(base: dict, gold) -> list[dict]:
    """AUC of the BiLSTM's toxicity of each whole completion, rows with toxic gold spans against clean rows."""
    scores = np.array(ToxicityScorer()([g.completion for g in gold]))
    toxic = np.array([any(span.label == "toxic" for span in g.spans) for g in gold])
    out = []
    for source in ("v1", "hard-v2"):
        keep = np.array([g.source == source for g in gold])
        if len(set(toxic[keep])) < 2:
            continue
        out.append(
            {
                **base,
                "measure": f"text AUC: BiLSTM toxicity of the whole completion, {source} rows "
                f"({int(toxic[keep].sum())} toxic, {int((~toxic[keep]).sum())} clean; toxic rows above 0.5: "
                f"{int((scores[keep & toxic] > 0.5).sum())})",
                "value": f"{roc_auc_score(toxic[keep], scores[keep]):.3f}",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=PARTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in ("sentiment", "detox", "summarize"):
        gold = load_gold(task, split=args.split)
        units = [(row, start, end) for row, g in enumerate(gold) for start, end in clauses(g.completion)]
        labels = clause_labels(gold, units)
        oracle = [[] for _ in gold]
        for (row, start, end), label in zip(units, labels, strict=True):
            if label:
                oracle[row].append(Span(start, end, label, 1.0))
        precision, recall, f1 = word_prf(gold, [tuple(spans) for spans in oracle])
        base = {"task": task, "split": args.split, "texts": len(gold), "clauses": len(units)}
        rows.append(
            {**base, "measure": "clause ceiling (P / R / F1)", "value": f"{precision:.3f} / {recall:.3f} / {f1:.3f}"}
        )
        blind = [g.spans if g.source == "v1" else () for g in gold]
        precision, recall, f1 = word_prf(gold, blind)
        words = [len(labelled_words(g.completion, g.spans)) for g in gold]
        hard = [g.source == "hard-v2" for g in gold]
        rows.append(
            {
                **base,
                "measure": f"v1 oracle, blind on hard-v2 (P / R / F1; hard-v2 rows: {sum(hard)}, "
                f"{sum(n for n, h in zip(words, hard, strict=True) if h)} of {sum(words)} gold words)",
                "value": f"{precision:.3f} / {recall:.3f} / {f1:.3f}",
            }
        )
        signals: dict[str, np.ndarray] = {}
        if task == "detox":
            target = np.array([label == "toxic" for label in labels])
            prompts, completions = [g.prompt for g in gold], [g.completion for g in gold]
            methods = {
                "segment": "BiLSTM toxicity of the clause alone",
                "occlusion": "BiLSTM occlusion (toxicity drop)",
            }
            for method, name in methods.items():
                # the critic's own effects (the detox score is 1 - toxicity: minus the effect ranks toxic clauses up)
                effects = AttributionCritic(task, method=method)._effects(units, prompts, completions, {})
                signals[name] = -np.array(effects)
            for model in LMS:
                signals[f"{model} judge ('Toxic: yes')"] = lm_margins(task, model, gold, units)
            rows += text_toxicity_aucs(base, gold)
        elif task == "summarize":
            target = np.array([label == "incorrect" for label in labels])
            with_support = str(template_path(task, "summarize_judge_with_support.json"))
            for model in LMS:
                signals[f"{model} judge ('Supported by the post: no')"] = lm_margins(
                    task, model, gold, units, 0, with_support
                )
            signals.update(support_distances(gold, units))
        subsets = {"": np.ones(len(units), dtype=bool)}
        if task == "detox":
            subsets["hard-v2 clauses, "] = np.array([gold[row].source == "hard-v2" for row, _, _ in units])
        for name, signal in signals.items():
            for subset, keep in subsets.items():
                rows.append(
                    {
                        **base,
                        "measure": f"clause AUC: {name} ({subset}positives: {int(target[keep].sum())})",
                        "value": f"{roc_auc_score(target[keep], signal[keep]):.3f}",
                    }
                )
    write(
        f"critic_ceiling{'' if args.split == 'dev' else '_' + args.split}",
        rows,
        notes="The clause ceiling: an oracle that flags exactly the clauses holding a gold span, untrimmed, with "
        "its label (word-level micro P/R/F1 as in critic_quality.md). Clause AUC: how well a signal ranks the "
        "clauses holding a gold span of the label (toxic; incorrect) above the other clauses; 0.5 is chance. The LM "
        "judges use the packaged templates (detox_judge.json; summarize_judge_with_support.json's 'supported' "
        "question) with each model, margins calibrated as the critic does. The two summary signals without a judge: "
        "1 - the clause's best cosine similarity (MiniLM-L6 embeddings) to one of the post's sentences, and the share "
        "of its content words (not in a short list of function words; crude stems) absent from the post. Detox clause "
        "AUCs also on the hard-v2 rows' clauses alone; text AUC: the BiLSTM's toxicity of each whole completion, rows "
        "holding toxic gold spans against clean rows, per source. v1 oracle: the gold spans on every v1 row and "
        "nothing on the hard-v2 rows, the best that a critic blind to the hard kinds (implicit insults, threats, "
        "sarcasm, ...) can reach.",
    )


if __name__ == "__main__":
    main()
