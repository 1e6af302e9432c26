"""A causal LM as a judge: a few-shot completion prompt, and the logit margin between two answer words.

The few-shot prefix is run once and its key/value cache reused for every batch, so a judgement costs only the
tokens of the text being judged. Used by the sentiment scorer and by the segment-level LM critics.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np


class FewShotMarginJudge:
    r"""Margin ``logit(yes_word) - logit(no_word)`` after a few-shot prefix and a query.

    Args:
        model: A causal LM, used read-only.
        tokenizer: Its tokenizer.
        prefix: The few-shot examples (and any instruction), run once.
        query: The query template, with ``{text}`` and optionally ``{context}``; it ends where the answer word
            would follow (e.g. ``"Review: {text}\nSentiment:"``).
        answer_words: The two answer words, each with its leading space (e.g. ``(" positive", " negative")``);
            only their first tokens are compared.
        batch_size: Queries per forward pass.
        max_text_tokens: A text is cut to its last this many tokens.
    """

    def __init__(
        self,
        model,
        tokenizer,
        prefix: str,
        query: str,
        answer_words: tuple[str, str],
        batch_size: int = 16,
        max_text_tokens: int = 256,
    ) -> None:
        import torch

        if batch_size < 1 or max_text_tokens < 1:
            raise ValueError(f"batch_size and max_text_tokens must be positive, got {batch_size}, {max_text_tokens}.")
        if "{text}" not in query:
            raise ValueError("The query template needs a {text} field.")
        self.model, self.tokenizer = model, tokenizer
        self.query, self.batch_size, self.max_text_tokens = query, batch_size, max_text_tokens
        self.answer_ids = [tokenizer(word, add_special_tokens=False).input_ids[0] for word in answer_words]
        if self.answer_ids[0] == self.answer_ids[1]:
            raise ValueError(f"The answer words {answer_words} start with the same token.")
        self.prefix_ids = tokenizer(prefix, return_tensors="pt").input_ids
        with torch.inference_mode():
            self.prefix_cache = model(input_ids=self.prefix_ids, use_cache=True).cache

    def query_ids(self, text: str, context: str = "") -> list[int]:
        """Token ids of one query: the part before ``{text}``, the text (cut to its last tokens), the rest."""
        before, after = self.query.split("{text}", 1)
        before = before.format(context=context)
        ids = self.tokenizer(before + " ".join(text.split()), add_special_tokens=False).input_ids
        head = self.tokenizer(before.rstrip(), add_special_tokens=False).input_ids
        if len(ids) - len(head) > self.max_text_tokens:
            ids = head + ids[-self.max_text_tokens :]
        return ids + self.tokenizer(after.format(context=context), add_special_tokens=False).input_ids

    def margins(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """Returns the margin of each text (with its context, where the query has one)."""
        import torch

        contexts = contexts if contexts is not None else [""] * len(texts)
        out = np.empty(len(texts), dtype=np.float64)
        prefix_len = self.prefix_ids.shape[1]
        for start in range(0, len(texts), self.batch_size):
            chunk = range(start, min(start + self.batch_size, len(texts)))
            queries = [self.query_ids(texts[i], contexts[i]) for i in chunk]
            width = max(len(query) for query in queries)
            ids = torch.full((len(queries), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(queries), width), dtype=torch.long)
            for row, query in enumerate(queries):  # left-padded: every row's query ends the batch
                ids[row, width - len(query) :] = torch.tensor(query)
                mask[row, width - len(query) :] = 1
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(queries))
            full_mask = torch.cat([torch.ones((len(queries), prefix_len), dtype=torch.long), mask], dim=1)
            positions = prefix_len + (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids, attention_mask=full_mask, position_ids=positions, cache=cache, logits_to_keep=1
                ).logits[:, -1]
            pair = logits[:, self.answer_ids].double()
            out[start : start + len(queries)] = (pair[:, 0] - pair[:, 1]).numpy()
        return out
