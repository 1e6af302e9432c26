"""Any transformers sequence-classification model as a scorer: the probability of one of its labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.error import ModelLoadError, unknown_name
from textgym.scorers.attribution import check_ranges, spread_over_characters


class ClassifierScorer:
    """Probability of one label of a transformers sequence classifier.

    Single-label models (``problem_type`` not multi-label) are read with a softmax, multi-label ones with a sigmoid
    per label, as the model was trained. An empty text, which has no tokens with many tokenizers, is read as a lone
    EOS token.

    Args:
        model: A model hub id or local folder of a sequence-classification model.
        label: The label whose probability is the score, as named in the model's ``id2label`` (case-insensitive).
        batch_size: Texts per forward pass.
        max_length: Texts are truncated to this many tokens.
        device: Where the model runs (see :mod:`textgym.devices`).
        dtype: Its weights, ``"float32"`` or ``"bfloat16"``.

    Raises:
        ModelLoadError: The model cannot be loaded.
        UnknownNameError: ``label`` is not one of the model's labels.
        SettingsError: A device that this machine does not have.
    """

    def __init__(
        self,
        model: str,
        label: str,
        batch_size: int = 32,
        max_length: int = 512,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from textgym.devices import resolve_device, resolve_dtype

        target, weights = resolve_device(device), resolve_dtype(dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSequenceClassification.from_pretrained(model, dtype=weights).to(target).eval()
        except Exception as error:
            raise ModelLoadError(
                f"Could not load the classifier {model!r}: {type(error).__name__}: {error}. Pass a local folder or "
                "a model hub id of a sequence-classification model (the hub needs network access)."
            ) from error
        labels = {name.lower(): index for index, name in self.model.config.id2label.items()}
        if label.lower() not in labels:
            raise unknown_name("label", label, self.model.config.id2label.values(), hint=f"(model {model!r})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.label_index = labels[label.lower()]
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self.batch_size = batch_size
        self.max_length = max_length
        if self.tokenizer.pad_token_id is None:  # Batching needs one; set it on our own copy's config only.
            self.tokenizer = AutoTokenizer.from_pretrained(model, pad_token=self.tokenizer.eos_token)
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def __call__(self, texts: Sequence[str]) -> list[float]:
        """Returns the chosen label's probability for each text."""
        import torch

        out = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            encoded = self.tokenizer(chunk, truncation=True, max_length=self.max_length).input_ids
            # A text with no tokens (an empty completion) is read as a lone EOS token, so it gets a real score.
            encoded = [ids or [self.tokenizer.eos_token_id or self.tokenizer.pad_token_id] for ids in encoded]
            batch = self.tokenizer.pad({"input_ids": encoded}, return_tensors="pt").to(self.model.device)
            with torch.inference_mode():
                logits = self.model(**batch).logits.double()
            probs = logits.sigmoid() if self.multi_label else logits.softmax(-1)
            out[start : start + len(chunk)] = probs[:, self.label_index].cpu().numpy()
        return out.tolist()

    def attribution(self, texts: Sequence[str], ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Per-character weights over ``text[start:end]`` of each text: where the pooled position looks.

        The weight for the attention-based credit (Chan et al., 2024, arXiv 2402.00782): the last layer's attention,
        averaged over heads, from the position the classification head reads, to each of the text's tokens that
        overlap the range; renormalised over those and spread evenly over each token's characters in the range (see
        :func:`~textgym.scorers.attribution.spread_over_characters`). The pooled position is the one transformers
        pools: the last non-pad token for models with causal attention (Llama, GPT-2 and the other decoder
        classifiers), the first token ([CLS]) for the others (BERT-like encoders). Texts are tokenized, truncated
        and padded as in :meth:`__call__`; special tokens have no characters and get no weight. The forward uses
        eager attention for this call only.

        Args:
            texts: The texts as given to :meth:`__call__`.
            ranges: ``(start, end)`` character range of each text to attribute (its completion's part).

        Returns:
            For each text a float64 array of length ``end - start``, nonnegative and summing to 1; all zeros when
            the range holds no token (empty, only whitespace, or cut off by ``max_length``).

        Raises:
            ValueError: Not one range per text, or a range outside its text.
        """
        import torch

        from textgym.scorers.attribution import eager_attention, head_mean_of_last_layer

        check_ranges(texts, ranges)
        causal = any(getattr(module, "is_causal", False) for module in self.model.modules())
        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            encoded = self.tokenizer(chunk, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
            rows = [ids or [self.tokenizer.eos_token_id or self.tokenizer.pad_token_id] for ids in encoded.input_ids]
            spans = [offsets or [(0, 0)] for offsets in encoded.offset_mapping]
            batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(self.model.device)
            with torch.inference_mode(), eager_attention(self.model):
                attentions = self.model(**batch, output_attentions=True).attentions
            attention = head_mean_of_last_layer(attentions)  # (batch, queries, keys)
            ids = batch["input_ids"]
            if causal:  # transformers' rule for decoder classifiers: the rightmost token that is not padding
                indices = torch.arange(ids.shape[1], device=ids.device)
                pooled = (indices * (ids != self.model.config.pad_token_id)).argmax(-1)
            else:
                pooled = torch.zeros(len(rows), dtype=torch.long, device=ids.device)
            pooled_rows = attention[torch.arange(len(rows), device=ids.device), pooled].cpu().numpy()
            mask = batch["attention_mask"].cpu().numpy()
            for row, text in enumerate(chunk):
                columns = np.flatnonzero(mask[row])  # the row's tokens, wherever the padding side puts them
                first, last = ranges[start + row]
                out.append(spread_over_characters(text, spans[row], pooled_rows[row, columns], first, last))
        return out
