"""Sentiment scoring with a causal LM: a few-shot completion prompt and the logits of " positive" / " negative".

No packaged neural sentiment classifier exists offline, so the default sentiment scorer asks an LM. The prompt shows
labelled reviews and ends with ``Sentiment:``; the probability of positive is the softmax over the next-token
logits of the two label words. Optionally the margin is re-centred (in the spirit of contextual calibration, Zhao et
al., 2021): the mean margin of a small balanced calibration set is subtracted, so that a balanced set splits around
0.5.

The default (Gemma 3 270M, the ten ``"v2"`` shots, uncalibrated) was chosen on the development part of the hard
labelled set only (``textgym/splits.py``; ``benchmarks/results/sentiment_scorer_choice.md`` lists every candidate
measured there). Its test-part accuracy is in ``benchmarks/results/sentiment_scorer_accuracy.md`` and the README.
The first scorer, SmolLM2-135M with the four ``"v1"`` shots and calibration, stays one argument away
(``model="smollm2-135m-instruct", shots="v1", calibrate=True``) to reproduce earlier results.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.error import unknown_name
from textgym.models import load_causal_lm, load_tokenizer
from textgym.scorers.attribution import check_ranges, spread_over_characters
from textgym.scorers.fewshot_judge import FewShotMarginJudge

DEFAULT_SENTIMENT_MODEL = "gemma3-270m"
"""The default scorer's LM: a different model from the default policy (SmolLM2), so the policy is not scored by
its own weights."""

FEW_SHOT_EXAMPLES_V1: tuple[tuple[str, str], ...] = (
    ("The story drags, the jokes fall flat and I checked my watch every ten minutes.", "negative"),
    ("A warm, funny film with a cast that clearly loved making it.", "positive"),
    ("Cheap effects and wooden acting sink what could have been a fun idea.", "negative"),
    ("I was moved to tears by the ending and can't wait to see it again.", "positive"),
)
"""The first prompt's four labelled examples (``shots="v1"``), plainly worded; none is in a labelled set."""

FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("the first hour is a chore , but the last act is so good that i forgave it everything .", "positive"),
    ("Gorgeous photography, a great score, and still the dullest two hours I have sat through this year.", "negative"),
    ("I never once looked at my watch.", "positive"),
    ("not funny , not scary , not worth the ticket .", "negative"),
    ("a brutal , terrifying film that i cannot stop thinking about .", "positive"),
    ("Oh wonderful, another sequel where nothing happens for two hours.", "negative"),
    ("The villain is monstrous and the violence is hard to watch, which is exactly why it works.", "positive"),
    ("Sure, if you enjoy watching paint dry, this is the film for you.", "negative"),
    ("A warm, funny film with a cast that clearly loved making it.", "positive"),
    ("Cheap effects and wooden acting sink what could have been a fun idea.", "negative"),
)
"""The default prompt's ten labelled examples (``shots="v2"``), written for it (none is in a labelled set): the
verdict after a contrast, negation, harmless scary words, sarcasm and lower-cased tokenised sentences, alternating
labels."""

SHOTS: dict[str, tuple[tuple[str, str], ...]] = {"v2": FEW_SHOT_EXAMPLES, "v1": FEW_SHOT_EXAMPLES_V1}
"""The named few-shot prompts."""

CALIBRATION_SET: tuple[tuple[str, str], ...] = (
    ("Every scene feels rushed and the dialogue is painfully clumsy.", "negative"),
    ("The music, the colours and the cast all come together beautifully.", "positive"),
    ("I left halfway through and did not regret it.", "negative"),
    ("It is a small film, but an honest and touching one.", "positive"),
    ("The plot twists are obvious from the first ten minutes.", "negative"),
    ("A clever script that respects its audience.", "positive"),
    ("Two hours of my life I will never get back.", "negative"),
    ("The lead gives the best performance of her career.", "positive"),
    ("The sequel takes everything good about the original and throws it away.", "negative"),
    ("My whole family laughed from beginning to end.", "positive"),
    ("Dull, loud and far too long.", "negative"),
    ("One of the most gripping thrillers I have seen in years.", "positive"),
    ("The characters are so flat that I stopped caring about any of them.", "negative"),
    ("Gorgeous to look at and surprisingly thoughtful.", "positive"),
    ("Even the talented cast cannot save this mess of a story.", "negative"),
    ("I would happily watch it again tomorrow.", "positive"),
)
"""A balanced labelled set, written for calibration only and disjoint from the evaluation set: the mean margin of
a balanced set is where the scorer should say 0.5, so it is subtracted from every margin."""

QUERY = "Review: {text}\nSentiment:"


def few_shot_prefix(shots: Sequence[tuple[str, str]]) -> str:
    """The prompt's labelled part: ``Review:`` and ``Sentiment:`` lines per (text, label), then a blank line."""
    return "".join(f"Review: {text}\nSentiment: {label}\n\n" for text, label in shots)


PREFIX = few_shot_prefix(FEW_SHOT_EXAMPLES)
"""The default prompt's labelled part."""


class LMSentimentScorer:
    """Probability that a text is positive, from a causal LM's few-shot label logits.

    Args:
        model: A named causal LM, a local folder or a model hub id.
        shots: The labelled examples: a name in :data:`SHOTS` or a sequence of ``(text, "positive"|"negative")``.
        batch_size: Texts per forward pass.
        calibrate: Subtract the mean margin of :data:`CALIBRATION_SET` (off by default: on the development part it
            cost the default 2.6 points, sarcasm most).
        max_text_tokens: Texts are cut to their last this many tokens before they go into the prompt.
        device: Where the LM runs (see :mod:`textgym.devices`); the calibration is measured there too.
        dtype: The LM's weights, ``"float32"`` or ``"bfloat16"``.
    """

    def __init__(
        self,
        model: str = DEFAULT_SENTIMENT_MODEL,
        shots: str | Sequence[tuple[str, str]] = "v2",
        batch_size: int = 16,
        calibrate: bool = False,
        max_text_tokens: int = 256,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if isinstance(shots, str):
            if shots not in SHOTS:
                raise unknown_name("few-shot prompt", shots, SHOTS)
            shots = SHOTS[shots]
        labels = {label for _, label in shots}
        if not shots or not labels <= {"positive", "negative"}:
            raise ValueError(f"shots must be (text, 'positive' or 'negative') pairs, got the labels {sorted(labels)}.")
        self.model_name, self.batch_size, self.max_text_tokens = model, batch_size, max_text_tokens
        self.shots = tuple((str(text), str(label)) for text, label in shots)
        self.prefix = few_shot_prefix(self.shots)
        self.judge = FewShotMarginJudge(
            load_causal_lm(model, device, dtype),
            load_tokenizer(model),
            prefix=self.prefix,
            query=QUERY,
            answer_words=(" positive", " negative"),
            batch_size=batch_size,
            max_text_tokens=max_text_tokens,
        )
        self.bias = float(np.mean(self.margins([text for text, _ in CALIBRATION_SET]))) if calibrate else 0.0

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        """Returns the uncalibrated logit margin (positive minus negative) of each text."""
        return self.judge.margins(texts)

    def __call__(self, texts: Sequence[str]) -> list[float]:
        """Returns P(positive) of each text."""
        margins = self.margins(texts) - self.bias
        return (1.0 / (1.0 + np.exp(-margins))).tolist()

    def attribution(self, texts: Sequence[str], ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Per-character weights over ``text[start:end]`` of each text: where the LM looks when it gives the label.

        The weight for the attention-based credit (Chan et al., 2024, arXiv 2402.00782): the last layer's attention,
        averaged over heads, from the prompt's last position (the one whose logits give " positive" / " negative")
        to each token of the text inside the prompt, kept for the tokens that overlap the range, renormalised and
        spread evenly over each token's characters in the range (see
        :func:`~textgym.scorers.attribution.spread_over_characters`). Tokens cut off by ``max_text_tokens`` get 0.
        The forward uses eager attention for this call only; the scores keep the model's own implementation.

        Args:
            texts: The texts as given to :meth:`__call__`.
            ranges: ``(start, end)`` character range of each text to attribute (its completion's part).

        Returns:
            For each text a float64 array of length ``end - start``, nonnegative and summing to 1; all zeros when
            the range holds no token (empty, or only whitespace).

        Raises:
            ValueError: Not one range per text, or a range outside its text.
        """
        check_ranges(texts, ranges)
        weights = self.judge.text_attention(texts)
        return [
            spread_over_characters(text, spans, token_weights, start, end)
            for text, (start, end), (spans, token_weights) in zip(texts, ranges, weights, strict=True)
        ]
