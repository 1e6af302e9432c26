"""Sentiment scoring with a causal LM: a few-shot completion prompt and the logits of " positive" / " negative".

No packaged neural sentiment classifier exists offline, so the default sentiment scorer asks the default LM. The
prompt shows a few labelled reviews and ends with ``Sentiment:``; the probability of positive is the softmax over
the next-token logits of the two label words. Small LMs favour one label whatever the input, so the margin is
re-centred (in the spirit of contextual calibration, Zhao et al., 2021): the mean margin of a small balanced
calibration set is subtracted, so that a balanced set splits around 0.5. Content-free inputs ("N/A") were tried as
the reference point first and made the accuracy worse (0.875 against 0.896 uncalibrated). Accuracy on the
project's labelled set is in the README and ``benchmarks/results/``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm, load_tokenizer
from textgym.scorers.attribution import check_ranges, spread_over_characters
from textgym.scorers.fewshot_judge import FewShotMarginJudge

FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("The story drags, the jokes fall flat and I checked my watch every ten minutes.", "negative"),
    ("A warm, funny film with a cast that clearly loved making it.", "positive"),
    ("Cheap effects and wooden acting sink what could have been a fun idea.", "negative"),
    ("I was moved to tears by the ending and can't wait to see it again.", "positive"),
)
"""Labelled examples written for this prompt; none is in the evaluation set."""

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

PREFIX = "".join(f"Review: {text}\nSentiment: {label}\n\n" for text, label in FEW_SHOT_EXAMPLES)
QUERY = "Review: {text}\nSentiment:"


class LMSentimentScorer:
    """Probability that a text is positive, from a causal LM's few-shot label logits.

    Args:
        model: A named causal LM, a local folder or a model hub id.
        batch_size: Texts per forward pass.
        calibrate: Subtract the mean margin of :data:`CALIBRATION_SET`.
        max_text_tokens: Texts are cut to their last this many tokens before they go into the prompt.
        device: Where the LM runs (see :mod:`textgym.devices`); the calibration is measured there too.
        dtype: The LM's weights, ``"float32"`` or ``"bfloat16"``.
    """

    def __init__(
        self,
        model: str = DEFAULT_POLICY_MODEL,
        batch_size: int = 16,
        calibrate: bool = True,
        max_text_tokens: int = 256,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        self.model_name, self.batch_size, self.max_text_tokens = model, batch_size, max_text_tokens
        self.judge = FewShotMarginJudge(
            load_causal_lm(model, device, dtype),
            load_tokenizer(model),
            prefix=PREFIX,
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
