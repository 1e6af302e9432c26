"""The summary reward: ROUGE against the reference, similarity to the post, and a length term.

``score = (w_rouge * ROUGE + w_similarity * similarity + w_length * length) / (w_rouge + w_similarity + w_length)``,
a weighted mean of three terms, each in [0, 1]:

- ROUGE: the mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures (stemmed) of the summary against the reference.
- similarity: cosine similarity of the MiniLM embeddings of summary and post, clipped at 0.
- length: 1 when the summary has ``min_words`` to ``max_words`` words, falling linearly to 0 at no words and at
  twice ``max_words``.

Default weights 0.5 / 0.3 / 0.2. Where an item has no reference (a user's own prompt), the ROUGE term is left out
of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.error import MissingPackageError
from textgym.models import load_sentence_model
from textgym.scorers.attribution import check_ranges, spread_over_characters


class SummaryQualityScorer:
    """Scores summaries of posts; see the module docstring for the formula.

    Args:
        w_rouge: Weight of the ROUGE term.
        w_similarity: Weight of the summary-post similarity term.
        w_length: Weight of the length term.
        min_words: Shortest summary with full length credit.
        max_words: Longest summary with full length credit.
        embedding_model: Sentence-embedding model for the similarity term.
        device: Where the embedding model runs (see :mod:`textgym.devices`).
        dtype: Its weights, ``"float32"`` or ``"bfloat16"``.
    """

    def __init__(
        self,
        w_rouge: float = 0.5,
        w_similarity: float = 0.3,
        w_length: float = 0.2,
        min_words: int = 8,
        max_words: int = 30,
        embedding_model: str = "minilm-l6-v2",
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        try:
            from rouge_score import rouge_scorer
        except ImportError as error:
            raise MissingPackageError(
                "The summary reward needs rouge-score. Install it with: pip install 'textgym[summarize]'"
            ) from error
        if min(w_rouge, w_similarity, w_length) < 0 or w_rouge + w_similarity + w_length <= 0:
            raise ValueError("Summary reward weights must be non-negative with a positive sum.")
        if not 0 < min_words <= max_words:
            raise ValueError(f"Need 0 < min_words <= max_words, got {min_words} and {max_words}.")
        self.weights = np.array([w_rouge, w_similarity, w_length], dtype=np.float64)
        self.min_words, self.max_words = min_words, max_words
        self.rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        self.embedder = load_sentence_model(embedding_model, device, dtype)

    def rouge_term(self, summary: str, reference: str) -> float:
        """Mean ROUGE-1/2/L F-measure of a summary against its reference."""
        scores = self.rouge.score(reference, summary)
        return float(np.mean([score.fmeasure for score in scores.values()]))

    def length_term(self, summary: str) -> float:
        """1 inside [min_words, max_words], linear down to 0 at 0 words and at 2 * max_words."""
        words = len(summary.split())
        if words < self.min_words:
            return words / self.min_words
        if words <= self.max_words:
            return 1.0
        return max(0.0, 1.0 - (words - self.max_words) / self.max_words)

    def similarity_terms(self, summaries: Sequence[str], posts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each summary to its post, clipped at 0."""
        embeddings = self.embedder.encode(list(summaries) + list(posts), normalize_embeddings=True)
        summary_vectors, post_vectors = embeddings[: len(summaries)], embeddings[len(summaries) :]
        return np.clip((summary_vectors * post_vectors).sum(-1), 0.0, 1.0).astype(np.float64)

    def terms(self, summaries: Sequence[str], posts: Sequence[str], references: Sequence[str | None]) -> np.ndarray:
        """Returns the (N, 3) matrix of ROUGE, similarity and length terms; ROUGE is NaN where there is no reference."""
        pairs = zip(summaries, references, strict=True)
        rouge = [np.nan if ref is None else self.rouge_term(summary, ref) for summary, ref in pairs]
        length = [self.length_term(s) for s in summaries]
        return np.stack([np.array(rouge), self.similarity_terms(summaries, posts), np.array(length)], axis=1)

    def __call__(self, summaries: Sequence[str], posts: Sequence[str], references: Sequence[str | None]) -> list[float]:
        """Returns the weighted score of each summary."""
        if not summaries:
            return []
        terms = self.terms(summaries, posts, references)
        weights = np.where(np.isnan(terms), 0.0, self.weights)
        if (weights.sum(1) == 0).any():
            raise ValueError("A summary without a reference has no term to score with weights only on ROUGE.")
        return ((np.nan_to_num(terms) * weights).sum(1) / weights.sum(1)).tolist()

    def attribution(self, summaries: Sequence[str], ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Per-character weights over ``summary[start:end]`` of each summary: where the embedding model looks.

        The weight for the attention-based credit (Chan et al., 2024, arXiv 2402.00782), from the one neural part of
        the score, the similarity term: the embedding model's last-layer attention, averaged over heads, to each of
        the summary's tokens that overlap the range; renormalised over those and spread evenly over each token's
        characters in the range (see :func:`~textgym.scorers.attribution.spread_over_characters`). The query side
        follows the model's pooling: MiniLM (the default) mean-pools every token's output, [CLS] and [SEP]
        included, so each position's attention row counts equally and the weight is the mean row over the real
        positions; a model that pools [CLS] uses its row. Summaries are tokenized and truncated as ``encode`` does
        (``max_seq_length``). The forward runs batched and padded, with eager attention for this call only.

        Args:
            summaries: The summaries as given to :meth:`__call__`.
            ranges: ``(start, end)`` character range of each summary to attribute (its completion's part).

        Returns:
            For each summary a float64 array of length ``end - start``, nonnegative and summing to 1; all zeros
            when the range holds no token (empty, or only whitespace).

        Raises:
            ValueError: Not one range per summary, or a range outside its summary.
        """
        import torch

        from textgym.scorers.attribution import eager_attention, head_mean_of_last_layer

        check_ranges(summaries, ranges)
        if not summaries:
            return []
        transformer = self.embedder[0].auto_model
        cls_pooled = any(getattr(module, "pooling_mode", None) == "cls" for module in self.embedder)
        batch = self.embedder.tokenizer(
            list(summaries),
            padding=True,
            truncation=True,
            max_length=self.embedder.max_seq_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        spans = batch.pop("offset_mapping").tolist()
        mask = batch["attention_mask"].to(torch.float64)
        with torch.inference_mode(), eager_attention(transformer):
            attentions = transformer(**batch.to(transformer.device), output_attentions=True).attentions
        attention = head_mean_of_last_layer(attentions).cpu()  # (batch, queries, keys)
        if cls_pooled:
            rows = attention[:, 0]
        else:  # the mean of the real positions' rows, as mean pooling averages their outputs
            rows = (attention * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        rows = (rows * mask).numpy()
        return [
            spread_over_characters(summary, row_spans, row, start, end)
            for summary, (start, end), row_spans, row in zip(summaries, ranges, spans, rows, strict=True)
        ]
