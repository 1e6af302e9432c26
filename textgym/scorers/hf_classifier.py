"""Any transformers sequence-classification model as a scorer: the probability of one of its labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.error import ModelLoadError, unknown_name


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
