"""A causal LM as a judge: a few-shot completion prompt, and the logit margin between two answer words.

The few-shot prefix is run once and its key/value cache reused for every batch; so is the part of a query before the
text wherever queries share it (a summary clause's ``Post: ...``), so a judgement costs little more than the tokens
of the text being judged. Queries go through in batches of similar length. Used by the sentiment scorer and by the
segment-level LM critics. The judges run the model where it is (the device of its parameters, in its dtype: a live
policy in bfloat16 on a GPU works as it is) and return float64 numpy arrays on the CPU.

:class:`ContextGainJudge` asks the LM a question through its likelihood instead of an answer word: how much more
likely a context (a post) makes a text (a summary clause), the pointwise mutual information of the two. Small LMs
answer "is this supported by the post?" poorly in words but measurably in likelihood (``benchmarks/results/``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from textgym.lm_compat import logits_agree, output_cache, select_rows, with_cache


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


class _SharedHeads:
    """Runs rows of token ids that each start with a head many rows share (a query up to its text, say).

    Each distinct head goes through the model once, on the cache of the prefix when there is one, and its key/value
    cache serves every row that starts with it; the rests of the rows then go in batches of similar length, so little
    is padded (:func:`~textgym.left_padding.length_batches`). Positions and attention are those of each whole row run
    alone after the prefix.

    Args:
        model: A causal LM, used read-only.
        pad_id: The id that pads rows.
        batch_size: Heads, and rests, per forward pass.
        prefix_cache: The cache of a prefix before every head (one row), or None.
        prefix_len: The prefix's length in tokens.
        columns: Only these vocabulary columns of the last position's logits are wanted (see :class:`_ColumnHead`);
            every logits tensor the runner returns then holds these columns, in this order. None: every column.
    """

    def __init__(
        self,
        model,
        pad_id: int,
        batch_size: int,
        prefix_cache: Any = None,
        prefix_len: int = 0,
        columns: Sequence[int] | None = None,
    ) -> None:
        self.model, self.pad_id, self.batch_size = model, pad_id, batch_size
        self.prefix_cache, self.prefix_len = prefix_cache, prefix_len
        self.device = next(model.parameters()).device
        self.columns = None if columns is None else list(columns)
        self._column_head = None if columns is None else _ColumnHead.checked(model, self.columns)
        self._last: tuple[tuple[int, ...], tuple] | None = None  # a lone head's pass, reused while calls repeat it

    def _forward(self, every_position: bool = False, **kwargs: Any) -> tuple[Any, Any]:
        """Logits (of :attr:`columns` when set; of every position or the last) and the cache of one forward pass.

        ``kwargs`` are the model's (``cache`` stands for its key/value-cache argument, whatever its name).
        """
        cache = kwargs.pop("cache", None)
        if self._column_head is not None and not every_position:
            return self._column_head(cache=cache, **kwargs)
        past = {} if cache is None else with_cache(self.model, cache)
        width = kwargs["input_ids"].shape[1]
        output = self.model(**kwargs, **past, logits_to_keep=width if every_position else 1)
        logits = output.logits if self.columns is None else output.logits[..., self.columns]
        return logits, output_cache(output)

    def _heads(self, heads: list[tuple[int, ...]]) -> tuple[Any, Any, Any, Any]:
        """Runs ``heads`` (one row each) after the prefix.

        Returns:
            Their cache, its attention mask, the position after each head and the logits of each head's last
            position (None when every head is empty).
        """
        import torch

        from textgym.left_padding import left_pad
        from textgym.left_padding import positions as left_positions

        if len(heads) == 1 and self._last is not None and self._last[0] == heads[0]:
            return self._last[1]
        ones = torch.ones((len(heads), self.prefix_len), dtype=torch.long, device=self.device)
        if not any(heads):  # only the prefix
            ends = torch.full((1,), self.prefix_len, dtype=torch.long, device=self.device)
            return self.prefix_cache, ones[:1], ends, None
        ids, mask = left_pad(heads, self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = None
        if self.prefix_cache is not None:
            zeros = torch.zeros(len(heads), dtype=torch.long, device=self.device)
            cache = select_rows(self.prefix_cache, zeros)
        with torch.inference_mode():
            logits, cache = self._forward(
                input_ids=ids,
                attention_mask=torch.cat([ones, mask], dim=1),
                position_ids=self.prefix_len + left_positions(mask),
                use_cache=True,
                cache=cache,
            )
        result = (cache, torch.cat([ones, mask], dim=1), self.prefix_len + mask.sum(1), logits[:, -1])
        if len(heads) == 1:
            self._last = (heads[0], result)
        return result

    def run(
        self, rows: Sequence[tuple[tuple[int, ...], Sequence[int]]], every_position: bool = False
    ) -> Iterator[tuple[list[int], Any, Any, Any]]:
        """Runs the rows in batches, each head once.

        Yields:
            For each batch: its rows' indices, their rests' ids (left-padded), their logits, and the logits of their
            heads' last positions (None when every head is empty).

        Args:
            rows: (head, rest) of each row; a rest is not empty.
            every_position: Logits of every position of the rests (left-padded: each rest ends at the last column),
                else of the last position only.
        """
        import torch

        from textgym.left_padding import left_pad, length_batches
        from textgym.left_padding import positions as left_positions

        distinct = list(dict.fromkeys(head for head, _ in rows))
        for first in range(0, len(distinct), self.batch_size):
            slot = {head: k for k, head in enumerate(distinct[first : first + self.batch_size])}
            cache, head_mask, ends, last = self._heads(list(slot))
            members = sorted((i for i, (head, _) in enumerate(rows) if head in slot), key=lambda i: len(rows[i][1]))
            for batch in length_batches([len(rows[i][1]) for i in members], self.batch_size):
                chunk = [members[k] for k in batch]
                index = torch.tensor([slot[rows[i][0]] for i in chunk], device=self.device)
                ids, mask = left_pad([rows[i][1] for i in chunk], self.pad_id)
                ids, mask = ids.to(self.device), mask.to(self.device)
                with torch.inference_mode():
                    logits, _ = self._forward(
                        every_position,
                        input_ids=ids,
                        attention_mask=torch.cat([head_mask[index], mask], dim=1),
                        position_ids=ends[index, None] + left_positions(mask),
                        cache=select_rows(cache, index),
                    )
                yield chunk, ids, logits, None if last is None else last[index]


class _ColumnHead:
    """A causal LM's logits at the last position for a few vocabulary columns, without its full vocabulary head.

    A yes/no judge reads two columns of the last position's logits; the full head multiplies the hidden state with
    every word's embedding (262k of them for Gemma 3: a ninth of the default sentiment scorer's CPU time at 8 texts
    a call, ``benchmarks/results/judge_head.md``). This runs the LM's decoder (``get_decoder()``) and multiplies its
    last hidden state with the wanted rows of the output embedding only, applying the final logit soft-capping
    where the config has one (Gemma). :meth:`checked` builds it only where it reproduces the full forward pass on
    a short input, and returns None elsewhere (logged), so an architecture that does something else after its
    decoder falls back to the full head.
    """

    def __init__(self, model, columns: Sequence[int]) -> None:
        import torch

        self.decoder = model.get_decoder()
        self.head = model.get_output_embeddings()
        self.index = torch.tensor(list(columns), device=self.head.weight.device)
        self.cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    @classmethod
    def checked(cls, model, columns: Sequence[int]) -> _ColumnHead | None:
        """The column head, or None where it does not reproduce ``model``'s logits at ``columns``."""
        import logging

        import torch

        try:
            head = cls(model, columns)
            device = next(model.parameters()).device
            ids = (torch.arange(2, 8, device=device).view(2, 3) * 7 + 1) % model.config.get_text_config().vocab_size
            mask = torch.ones_like(ids)
            with torch.inference_mode():
                full = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[..., list(columns)]
                short, _ = head(input_ids=ids, attention_mask=mask)
            if logits_agree(full, short):
                return head
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            pass
        logging.getLogger(__name__).info("%s: no column head; the full head runs.", type(model).__name__)
        return None

    def __call__(self, cache: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        """Logits ``(rows, 1, columns)`` at the last position and the cache of one forward pass."""
        import torch

        past = {} if cache is None else with_cache(self.decoder, cache)
        output = self.decoder(**kwargs, **past)
        hidden = output.last_hidden_state[:, -1:]
        bias = None if getattr(self.head, "bias", None) is None else self.head.bias[self.index]
        logits = torch.nn.functional.linear(hidden, self.head.weight[self.index], bias)
        if self.cap is not None:
            logits = torch.tanh(logits / self.cap) * self.cap
        return logits, output_cache(output)


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
        self._runner = _SharedHeads(
            model, tokenizer.pad_token_id, batch_size, self.prefix_cache, self.prefix_ids.shape[1], self.answer_ids
        )

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
        return self._query(text, context, fields, offsets=True)[:2]

    def _query(
        self, text: str, context: str, fields: Mapping[str, str] | None, offsets: bool
    ) -> tuple[list[int], list[tuple[int, int]], int]:
        """The query's ids, the text spans of its ids, and how many leading ids are the part before the text."""
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
        return ids + tail, spans + [(0, 0)] * len(tail), len(head) if ids[: len(head)] == head else 0

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
            cache = select_rows(self.prefix_cache, torch.zeros(len(queries), dtype=torch.long, device=device))
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
        contexts = contexts if contexts is not None else [""] * len(texts)
        fields = fields if fields is not None else [{}] * len(texts)
        rows = []
        for text, context, row_fields in zip(texts, contexts, fields, strict=True):
            ids, _, head = self._query(text, context, row_fields, offsets=False)
            head = min(head, len(ids) - 1)  # the last position, whose logits answer, is run with the rest
            rows.append((tuple(ids[:head]), ids[head:]))
        out = np.empty(len(texts), dtype=np.float64)
        for chunk, _, logits, _ in self._runner.run(rows):
            pair = logits[:, -1].double()  # the runner's columns: the answer words' first tokens
            out[chunk] = (pair[:, 0] - pair[:, 1]).cpu().numpy()
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
        self._runner = _SharedHeads(model, tokenizer.pad_token_id, batch_size)

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
        """Mean log-probability of the last ``n`` tokens of each ``(ids, n)``.

        The ids before the last ``n`` (the prefix and the query up to the text) go through the model once for all
        sequences that share them; 0 where ``n`` is 0.
        """
        import torch

        rows, scored = [], []
        for index, (ids, n) in enumerate(sequences):
            head = max(len(ids) - n, 1)  # without a head the first token has no prediction: it is not scored
            if n and head < len(ids):
                rows.append((tuple(ids[:head]), ids[head:]))
                scored.append(index)
        out = np.zeros(len(sequences), dtype=np.float64)
        for chunk, ids, logits, last in self._runner.run(rows, every_position=True):
            # column c of a rest is predicted by column c - 1, its first column by its head's last position
            firsts = [ids.shape[1] - len(rows[i][1]) for i in chunk]
            predicted = torch.cat([last[:, None], logits[:, :-1]], dim=1)
            predicted[torch.arange(len(chunk), device=last.device), firsts] = last
            picked = predicted.double().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1).cpu()
            for row, (i, first) in enumerate(zip(chunk, firsts, strict=True)):
                out[scored[i]] = picked[row, first:].mean().item()
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
