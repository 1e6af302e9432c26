"""Accuracy of the default sentiment scorer on the project's labelled sentences, calibrated and not."""

from __future__ import annotations

import time

import numpy as np
from report import write

from textgym.scorers.sentiment_lm import LMSentimentScorer
from textgym.tasks.base import embedded_data, read_jsonl


def main() -> None:
    rows_in = read_jsonl(embedded_data("sentiment_labelled.jsonl"))
    texts = [row["text"] for row in rows_in]
    labels = np.array([row["label"] == "positive" for row in rows_in])
    rows = []
    for calibrate in (True, False):
        scorer = LMSentimentScorer(calibrate=calibrate)
        start = time.perf_counter()
        probabilities = np.array(scorer(texts))
        seconds = time.perf_counter() - start
        predicted = probabilities > 0.5
        rows.append(
            {
                "scorer": f"lm-fewshot ({'calibrated' if calibrate else 'uncalibrated'})",
                "sentences": len(texts),
                "accuracy": float((predicted == labels).mean()),
                "accuracy on positive": float(predicted[labels].mean()),
                "accuracy on negative": float((~predicted[~labels]).mean()),
                "bias subtracted": scorer.bias,
                "texts/s": len(texts) / seconds,
            }
        )
    write(
        "sentiment_scorer_accuracy",
        rows,
        notes="Labelled set: textgym/data/sentiment_labelled.jsonl (120 positive, 120 negative, written for this "
        "measurement only). Prediction: P(positive) > 0.5.",
    )


if __name__ == "__main__":
    main()
