"""A causal LM as a judge: a few-shot completion prompt, and the logit margin between two answer words.

The few-shot prefix is run once and its key/value cache reused for every batch, so a judgement costs only the
tokens of the text being judged. Used by the sentiment scorer and by the segment-level LM critics. The judges run
the model where it is (the device of its parameters, in its dtype: a live policy in bfloat16 on a GPU works as it
is) and return float64 numpy arrays on the CPU.

:class:`ContextGainJudge` asks the LM a question through its likelihood instead of an answer word: how much more
likely a context (a post) makes a text (a summary clause), the pointwise mutual information of the two. Small LMs
answer "is this supported by the post?" poorly in words but measurably in likelihood (``benchmarks/results/``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np

from textgym.lm_compat import output_cache, with_cache


def _words_with_starts(text: str) -> list[tuple[int, str]]:
    """The words of ``text.split()``, each with the index of its first character in ``text``."""
    words, first = [], None
    for index, character in enumerate(text):
        if character.isspace():
            if first is not None:
                words.append((first, text[first:index]))
            first = None
        elif first is None:
            first = index
    if first is not None:
        words.append((first, text[first:]))
    return words


class FewShotMarginJudge:
    r"""Margin ``logit(yes_word) - logit(no_word)`` after a few-shot prefix and a query.

    Args:
        model: A causal LM, used read-only.
        tokenizer: Its tokenizer.
        prefix: The few-shot examples (and any instruction), run once.
        query: The query template, with ``{text}`` and optionally ``{context}`` and other named fields (given to
            :meth:`margins` as ``fields``); it ends where the answer word would follow (e.g.
            ``"Review: {text}\nSentiment:"``).
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
        device = next(model.parameters()).device
        with torch.inference_mode():
            self.prefix_cache = output_cache(model(input_ids=self.prefix_ids.to(device), use_cache=True))

    def query_ids(self, text: str, context: str = "", fields: Mapping[str, str] | None = None) -> list[int]:
        """Token ids of one query: the part before ``{text}``, the text (cut to its last tokens), the rest.

        ``context`` and ``fields`` fill the query's other ``{name}`` fields; their values are inserted as they are.
        """
        return self._query(text, context, fields, offsets=False)[0]

    def query_spans(
        self, text: str, context: str = "", fields: Mapping[str, str] | None = None
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """:meth:`query_ids`, and the character span of ``text`` behind each id (``(0, 0)`` for the template's ids).

        The query holds the text with its whitespace runs collapsed to single spaces; the spans index into the text
        as given. Needs a fast tokenizer (offsets).
        """
        return self._query(text, context, fields, offsets=True)

    def _query(
        self, text: str, context: str, fields: Mapping[str, str] | None, offsets: bool
    ) -> tuple[list[int], list[tuple[int, int]]]:
        fields = {**(fields or {}), "context": context}
        before, after = self.query.split("{text}", 1)
        before = before.format(**fields)
        joined = " ".join(text.split())
        encoded = self.tokenizer(before + joined, add_special_tokens=False, return_offsets_mapping=offsets)
        ids = encoded.input_ids
        spans = [(0, 0)] * len(ids)
        if offsets:  # joined position -> text position; a joining space maps to the character after its word
            origin = [first + k for first, word in _words_with_starts(text) for k in range(len(word) + 1)]
            spans = []
            for first, last in encoded.offset_mapping:
                first, last = max(first - len(before), 0), max(last - len(before), 0)
                spans.append((origin[first], origin[last - 1] + 1) if first < last else (0, 0))
        head = self.tokenizer(before.rstrip(), add_special_tokens=False).input_ids
        if len(ids) - len(head) > self.max_text_tokens:
            ids = head + ids[-self.max_text_tokens :]
            spans = [(0, 0)] * len(head) + spans[-self.max_text_tokens :]
        tail = self.tokenizer(after.format(**fields), add_special_tokens=False).input_ids
        return ids + tail, spans + [(0, 0)] * len(tail)

    def text_attention(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        fields: Sequence[Mapping[str, str]] | None = None,
    ) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """Where the answer position looks: its last-layer attention, averaged over heads, to each text token.

        The query's last position is the one whose logits give the margin; its attention row over the prefix and
        the query is read at the columns of the text's tokens. The forward runs with eager attention (other
        implementations return no weights) and the KV cache of the prefix, batched and left-padded as in
        :meth:`margins`.

        Returns:
            For each text, the character spans of its tokens in the query (see :meth:`query_spans`) and their
            attention weights (float64, on the CPU; not renormalised).
        """
        import torch

        from textgym.left_padding import left_pad
        from textgym.left_padding import positions as left_positions
        from textgym.scorers.attribution import eager_attention, head_mean_of_last_layer

        contexts = contexts if contexts is not None else [""] * len(texts)
        fields = fields if fields is not None else [{}] * len(texts)
        out: list[tuple[list[tuple[int, int]], np.ndarray]] = []
        prefix_len = self.prefix_ids.shape[1]
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            chunk = range(start, min(start + self.batch_size, len(texts)))
            queries = [self.query_spans(texts[i], contexts[i], fields[i]) for i in chunk]
            ids, mask = left_pad([row_ids for row_ids, _ in queries], self.tokenizer.pad_token_id)
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(queries))
            full_mask = torch.cat([torch.ones((len(queries), prefix_len), dtype=torch.long), mask], dim=1)
            positions = prefix_len + left_positions(mask)
            with torch.inference_mode(), eager_attention(self.model):
                attentions = self.model(
                    input_ids=ids.to(device),
                    attention_mask=full_mask.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=1,
                    output_attentions=True,
                    **with_cache(self.model, cache),
                ).attentions
            rows = head_mean_of_last_layer(attentions)[:, -1].cpu().numpy()  # (batch, prefix + width)
            for row, (row_ids, spans) in enumerate(queries):
                first = rows.shape[1] - len(row_ids)  # left-padded: the query ends the row
                keep = [k for k, span in enumerate(spans) if span[0] < span[1]]
                out.append(([spans[k] for k in keep], rows[row, [first + k for k in keep]]))
        return out

    def margins(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        fields: Sequence[Mapping[str, str]] | None = None,
    ) -> np.ndarray:
        """Returns the margin of each text, with its context and other query fields where the query has them."""
        import torch

        from textgym.left_padding import left_pad
        from textgym.left_padding import positions as left_positions

        contexts = contexts if contexts is not None else [""] * len(texts)
        fields = fields if fields is not None else [{}] * len(texts)
        out = np.empty(len(texts), dtype=np.float64)
        prefix_len = self.prefix_ids.shape[1]
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            chunk = range(start, min(start + self.batch_size, len(texts)))
            queries = [self.query_ids(texts[i], contexts[i], fields[i]) for i in chunk]
            ids, mask = left_pad(queries, self.tokenizer.pad_token_id)  # every row's query ends the batch
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(queries))
            full_mask = torch.cat([torch.ones((len(queries), prefix_len), dtype=torch.long), mask], dim=1)
            positions = prefix_len + left_positions(mask)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids.to(device),
                    attention_mask=full_mask.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=1,
                    **with_cache(self.model, cache),
                ).logits[:, -1]
            pair = logits[:, self.answer_ids].double()
            out[start : start + len(queries)] = (pair[:, 0] - pair[:, 1]).cpu().numpy()
        return out


class ContextGainJudge:
    r"""Mean per-token log-likelihood gain of a text from a context.

    The gain is ``log P(text | query with the context) - log P(text | query with an empty context)``, averaged
    over the text's tokens. A text the context predicts (a summary clause that restates the post) scores high; one
    it does not (an invented detail, an unrelated remark, word salad) scores near or below zero.

    Args:
        model: A causal LM, used read-only.
        tokenizer: Its tokenizer.
        prefix: Text put before every query (may be empty).
        query: The query template; it must end with ``{text}`` and contain ``{context}``, and may hold other named
            fields (given to :meth:`margins` as ``fields``), e.g. ``"Post: {context}\nSummary: {text}"``.
        batch_size: Sequences per forward pass (each text takes two).
        max_text_tokens: A text is cut to its last this many tokens.
    """

    def __init__(
        self, model, tokenizer, prefix: str, query: str, batch_size: int = 16, max_text_tokens: int = 256
    ) -> None:
        if batch_size < 1 or max_text_tokens < 1:
            raise ValueError(f"batch_size and max_text_tokens must be positive, got {batch_size}, {max_text_tokens}.")
        if not query.endswith("{text}") or "{context}" not in query:
            raise ValueError("A context-gain query must contain {context} and end with {text}.")
        self.model, self.tokenizer = model, tokenizer
        self.prefix, self.query = prefix, query
        self.batch_size, self.max_text_tokens = batch_size, max_text_tokens

    def sequence(self, text: str, context: str, fields: Mapping[str, str] | None = None) -> tuple[list[int], int]:
        """Token ids of prefix + query + text, and how many of them (at the end) are the text's."""
        before = self.prefix + self.query[: -len("{text}")].format(**{**(fields or {}), "context": context})
        words = " ".join(text.split())
        if before.endswith(" "):  # the space belongs to the text's first token, as when the LM writes it
            before, words = before[:-1], " " + words
        head = self.tokenizer(before).input_ids
        tail = self.tokenizer(words, add_special_tokens=False).input_ids[-self.max_text_tokens :]
        return head + tail, len(tail)

    def log_likelihoods(self, sequences: Sequence[tuple[list[int], int]]) -> np.ndarray:
        """Mean log-probability of the last ``n`` tokens of each ``(ids, n)``, batched, left-padded."""
        import torch

        from textgym.left_padding import left_pad
        from textgym.left_padding import positions as left_positions

        out = np.zeros(len(sequences), dtype=np.float64)
        device = next(self.model.parameters()).device
        for start in range(0, len(sequences), self.batch_size):
            chunk = sequences[start : start + self.batch_size]
            keep = max(n for _, n in chunk) + 1
            ids, mask = left_pad([row_ids for row_ids, _ in chunk], self.tokenizer.pad_token_id)
            ids, mask = ids.to(device), mask.to(device)
            width = ids.shape[1]
            positions = left_positions(mask)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
                ).logits
            logprobs = logits[:, :-1].double().log_softmax(-1)  # position j predicts token width - keep + 1 + j
            targets = ids[:, width - keep + 1 :]
            picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
            for row, (_, n) in enumerate(chunk):
                out[start + row] = picked[row, -n:].mean().item() if n else 0.0
        return out

    def margins(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        fields: Sequence[Mapping[str, str]] | None = None,
    ) -> np.ndarray:
        """Returns the per-token log-likelihood gain of each text from its context."""
        contexts = contexts if contexts is not None else [""] * len(texts)
        fields = fields if fields is not None else [{}] * len(texts)
        with_context = [self.sequence(t, c, f) for t, c, f in zip(texts, contexts, fields, strict=True)]
        without = [self.sequence(t, "", f) for t, f in zip(texts, fields, strict=True)]
        both = self.log_likelihoods(with_context + without)
        return both[: len(texts)] - both[len(texts) :]
