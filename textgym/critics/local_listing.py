"""A local transformers LM that *lists* spans: the OpenAI-compatible critic's prompt and parser, without a server.

Each completion is rendered into the task's listing template (see :mod:`textgym.critics.prompts`), wrapped in the
tokenizer's chat template as one user message when the tokenizer has one (plain text otherwise), and answered by
greedy generation, batched with left padding. The reply ("Toxic phrases: stupid idiot | hate you") is read by the
same parser as the OpenAI-compatible critic's (:func:`~textgym.critics.parsing.critique_from_labelled_reply`):
phrases that cannot be found in the completion are dropped and counted; a reply that names no label, or whose
phrases are none of them in the completion, is a failed critique, counted and logged at WARNING on the
``textgym.critics`` logger.

Listing needs a capable model: small ones list badly (``shared/MODELS.md``; SmolLM2-135M and Gemma 3 270M are
measured in ``benchmarks/results/critic_quality.md``). Use it with a larger local model, e.g.
``LocalListingCritic("detox", model="Qwen/Qwen2.5-1.5B-Instruct")``, or the ``lm-list`` critic type.

Example::

    critic = LocalListingCritic("detox", model="smollm2-135m-instruct")
    [critique] = critic.critique(["The man said"], ["you stupid idiot, I hate you"])
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textgym.critics.base import LABELS, Critique
from textgym.critics.openai_compat import CriticStats
from textgym.critics.parsing import critique_from_labelled_reply
from textgym.critics.prompts import load_template, render
from textgym.error import unknown_name
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm, load_tokenizer

logger = logging.getLogger("textgym.critics")


def generate_replies(
    model: Any,
    tokenizer: Any,
    messages: Sequence[str | Sequence[dict[str, str]]],
    max_new_tokens: int = 96,
    batch_size: int = 8,
    chat: bool | None = None,
) -> list[str]:
    """Greedy replies of a causal LM to user messages (or whole conversations), in batches, left-padded.

    Args:
        model: A transformers causal LM, used read-only, where it is (its device and dtype).
        tokenizer: Its tokenizer (not modified).
        messages: The user messages, each a string (one user turn) or a conversation (``{"role", "content"}``
            dicts, as a chat-completions request holds them).
        max_new_tokens: Most tokens of a reply.
        batch_size: Messages per ``generate`` call.
        chat: Wrap each message in the tokenizer's chat template; ``None`` does so when the tokenizer has one.
            In plain-text mode a conversation is its contents joined by blank lines.

    Returns:
        The decoded replies, special tokens removed. In plain-text mode a reply is cut at its first blank line
        after some text, since a base model runs on past its answer.
    """
    import torch

    from textgym.left_padding import left_pad

    use_chat = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    replies: list[str] = []
    device = next(model.parameters()).device
    for first in range(0, len(messages), batch_size):
        chunk = messages[first : first + batch_size]
        turns = [[{"role": "user", "content": m}] if isinstance(m, str) else list(m) for m in chunk]
        if use_chat:
            texts = [tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True) for turn in turns]
            encoded = [tokenizer(text, add_special_tokens=False).input_ids for text in texts]
        else:
            encoded = [tokenizer("\n\n".join(t["content"] for t in turn)).input_ids for turn in turns]
        ids, mask = left_pad(encoded, pad_id)  # every prompt ends where generation starts
        width = ids.shape[1]
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        for row in out[:, width:].cpu():
            text = tokenizer.decode(row, skip_special_tokens=True)
            replies.append(text if use_chat else _first_block(text))
    return replies


def _first_block(text: str) -> str:
    """``text`` up to its first blank line after some text."""
    match = re.search(r"\S.*?(?=\n\s*\n)", text, re.DOTALL)
    return match.group() if match else text


class LocalListingCritic:
    """A local causal LM asked to list the spans of each label, few tokens at a time.

    Attributes:
        task: The task whose labels the critic marks.
        model_name: The named model, folder or hub id, or ``live:<class>@<id>`` for a live model object.
        template: The listing template's text.
        uses_extrinsic: Whether the template shows the extrinsic score (``{extrinsic}``).
        stats: Counts of critiques and their outcomes (see :class:`~textgym.critics.openai_compat.CriticStats`).
    """

    def __init__(
        self,
        task: str,
        model: Any = DEFAULT_POLICY_MODEL,
        tokenizer: Any = None,
        template_path: str | Path | None = None,
        max_new_tokens: int = 96,
        batch_size: int = 8,
        chat: bool | None = None,
        fuzzy: float = 0.85,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        """Loads the model and the template.

        Args:
            task: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
            model: A named causal LM, folder or hub id, or a live model object (then pass ``tokenizer``).
            tokenizer: The tokenizer of a live model.
            template_path: A listing template of your own (fields ``{prompt}``, ``{completion}``, ``{extrinsic}``);
                by default the packaged ``templates/{task}_list.txt``.
            max_new_tokens: Most tokens of a reply.
            batch_size: Completions per ``generate`` call.
            chat: Use the tokenizer's chat template; ``None`` uses it when the tokenizer has one.
            fuzzy: Least similarity (0 to 1) of a fuzzy phrase match (see :func:`~textgym.critics.parsing.locate`).
            device: Where a named model runs (see :mod:`textgym.devices`); a live model runs where it is.
            dtype: A named model's weights, ``"float32"`` or ``"bfloat16"``; a live model keeps its own.

        Raises:
            UnknownNameError: ``task`` is not a known task.
            ValueError: A setting is out of range, a live model comes without its tokenizer, or the template lacks
                exactly one ``{completion}`` field.
        """
        if task not in LABELS:
            raise unknown_name("task", task, LABELS, hint="A critic's task sets the labels of its spans.")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not 0.0 < fuzzy <= 1.0:
            raise ValueError(f"fuzzy must be in (0, 1], got {fuzzy!r}.")
        template = load_template(task, "list", template_path)
        try:
            render(template, "", "")
        except ValueError as error:
            where = str(template_path) if template_path is not None else f"the packaged {task} template"
            raise ValueError(f"{error} Fix {where}.") from None
        if not isinstance(model, str) and tokenizer is None:
            raise ValueError("A live model needs its tokenizer: pass tokenizer=...")
        self.task, self.template, self.fuzzy = task, template, fuzzy
        self.max_new_tokens, self.batch_size, self.chat = max_new_tokens, batch_size, chat
        self.uses_extrinsic = "{extrinsic}" in template
        self.model_name = model if isinstance(model, str) else f"live:{type(model).__name__}@{id(model):x}"
        self.model = load_causal_lm(model, device, dtype) if isinstance(model, str) else model
        self.tokenizer = load_tokenizer(model) if isinstance(model, str) else tokenizer
        weight = next(self.model.parameters())
        self.placement = f"{weight.device}/{str(weight.dtype).removeprefix('torch.')}"
        self.stats = CriticStats()
        self.version = 1

    def refresh(self) -> None:
        """Marks the weights of a live model as changed, so cached critiques of the old weights are not reused."""
        self.version += 1

    def config_key(self) -> str:
        """Identifies model (and its version for live models), template and generation settings."""
        digest = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:16]
        return (
            f"LocalListingCritic(task={self.task}, model={self.model_name}, v{self.version}, template={digest}, "
            f"max_new_tokens={self.max_new_tokens}, chat={self.chat}, fuzzy={self.fuzzy!r}, on={self.placement})"
        )

    def messages(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[str]:
        """The rendered template of each completion: the user message the model answers.

        Raises:
            ValueError: The sequences differ in length.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"Need one prompt per completion, got {len(prompts)} prompts, {len(completions)}.")
        if extrinsic is not None and len(extrinsic) != len(completions):
            raise ValueError(f"Need one extrinsic score per completion, got {len(extrinsic)} for {len(completions)}.")
        scores = [None] * len(completions) if extrinsic is None else [float(score) for score in extrinsic]
        return [
            render(self.template, prompt, completion, score)
            for prompt, completion, score in zip(prompts, completions, scores, strict=True)
        ]

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Lists and locates the spans of each completion; an unusable reply is a failed critique.

        Args:
            prompts: The prompt of each completion (shown to the critic, not judged).
            completions: The texts to mark.
            extrinsic: The task score of each completion, for templates with an ``{extrinsic}`` field.

        Returns:
            One critique per completion, in order, with the raw reply; a failed one's ``error`` starts with
            ``"empty"``, ``"unparsable"`` or ``"unlocated"``.

        Raises:
            ValueError: The sequences differ in length.
        """
        messages = self.messages(prompts, completions, extrinsic)
        replies = generate_replies(
            self.model, self.tokenizer, messages, self.max_new_tokens, self.batch_size, self.chat
        )
        critiques = []
        for index, (reply, completion) in enumerate(zip(replies, completions, strict=True)):
            critique = critique_from_labelled_reply(reply, completion, self.task, self.fuzzy)
            self.stats.calls += 1
            if critique.ok:
                self.stats.ok += 1
                self.stats.dropped += critique.dropped
            else:
                self.stats.failures[(critique.error or "unparsable").split(":")[0]] += 1
                logger.warning("Critic %s failed on completion %d: %s", self.model_name, index, critique.error)
            critiques.append(critique)
        return critiques
