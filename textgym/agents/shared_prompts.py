"""Rows that share a prompt run it once: the sampler's first pass, and the group agents' scoring and update passes.

GRPO and RLOO sample ``samples_per_prompt`` completions of each prompt. Every pass over such a batch used to run
each row's prompt through the model again, though the rows of a group hold the same prompt: in a summarisation batch
of 2 posts x 4 completions (a 126-token prompt and 20 new tokens a row), 65 % of the positions were such copies.
Two places now share it:

- **Sampling** (:func:`~textgym.left_padding.shared_rows`, used by :func:`~textgym.agents.lm_rollout.collect`):
  the first pass runs each distinct prompt once, and its key/value cache, last logits and shared-trunk states are
  copied to the rows that hold it. Any agent's batch with repeated prompts gains; a batch of distinct prompts runs
  as before.
- **The policy's and the reference's passes over a group batch** (:class:`GroupPacking`): each group becomes one
  packed row, the prompt followed by every completion, with an attention mask that lets each completion see the
  prompt and its own earlier tokens only, and position ids that restart after the prompt for each completion. So
  the prompt's positions go through the layers (and, in the update, the backward pass) once per group instead of
  once per row; its gradient is the sum of what every completion sends back through it, as in the unpacked pass.

Both give the same logits as the unpacked passes up to float rounding (other batch shapes, other sums). The packed
pass needs a decoder that accepts a custom 4D attention mask (transformers passes one through as it is); it is
checked against the unpacked pass when built, and switched off with a logged warning when it does not agree. A
model with a sliding attention window uses it only while no sequence is longer than the window, where the window
changes nothing. ``share_prompts=False`` in the agents' config turns both off.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from textgym.agents.lm_policy import SharedTrunk, causal_lm_forward
from textgym.agents.lm_rollout import Batch
from textgym.left_padding import positions
from textgym.lm_compat import logits_agree

log = logging.getLogger(__name__)


class GroupPacking:
    """The packed passes over batches whose consecutive blocks of ``group`` rows share a prompt.

    Args:
        group: Rows per prompt.
        model: The policy's LM (used for the check when built).
        shared: The shared trunk of the policy and its reference (its states feed the packed rows when enabled).
    """

    def __init__(self, group: int, model: nn.Module, shared: SharedTrunk) -> None:
        self.group, self.shared = group, shared
        self.window = getattr(model.config, "sliding_window", None)
        self.enabled = True
        if not self._agrees(model):
            log.warning(
                "Packing a group's completions behind one prompt does not reproduce %s's unpacked passes; "
                "running every row's prompt instead.",
                type(model).__name__,
            )
            self.enabled = False

    def applies(self, batch: Batch) -> bool:
        """Whether ``batch`` can be packed: whole groups, each of one prompt, within any sliding window."""
        rows = batch.tokens.shape[0]
        if not self.enabled or rows % self.group or batch.length < 1:
            return False
        if self.window is not None and batch.start + batch.length > self.window:
            return False
        blocks = (batch.context_ids, batch.context_mask)
        return all(bool((b.view(-1, self.group, b.shape[1]) == b[:: self.group, None]).all()) for b in blocks)

    def logits(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """``model``'s logits at the batch's generated positions, shape ``(rows, length, vocab)``, from packed rows.

        The same as :func:`~textgym.agents.lm_policy.causal_lm_forward` on the batch's inputs (to rounding) at
        every position that predicts a generated token; gradients flow when they are on. Call it on a batch for
        which :meth:`applies` holds.
        """
        return packed_logits(model, batch, self.group, self.shared)

    def _agrees(self, model: nn.Module) -> bool:
        """Packed against unpacked logits of a small batch: two groups of two, one prompt left-padded, one row short."""
        device = next(model.parameters()).device
        vocab = model.config.vocab_size
        context = (torch.arange(3, 9, device=device).view(2, 3) % vocab).repeat_interleave(2, dim=0)
        context_mask = torch.tensor([[0, 1, 1]] * 2 + [[1, 1, 1]] * 2, device=device)
        tokens = torch.arange(20, 32, device=device).view(4, 3) % vocab
        valid = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 1]], dtype=torch.bool, device=device)
        batch = Batch(
            context, context_mask, tokens, valid, torch.zeros(4, 3), None, None, None, [""] * 4, [""] * 4
        )  # fmt: skip
        ids, mask = batch.inputs
        chunks: list[torch.Tensor] = []
        with torch.no_grad():
            with self.shared.recording(model, chunks):
                full = causal_lm_forward(model, ids, mask, batch.length).logits
            batch.trunk = chunks[0] if chunks else None
            packed = packed_logits(model, batch, 2, self.shared)  # any group size runs the same code
        return logits_agree(full[valid], packed[valid])


def packed_logits(model: nn.Module, batch: Batch, group: int, shared: SharedTrunk) -> torch.Tensor:
    """:meth:`GroupPacking.logits` for groups of ``group`` rows (the shared trunk's states used when enabled)."""
    g, start, length = group, batch.start, batch.length
    rows = batch.tokens.shape[0]
    n, tail = rows // g, length - 1  # packed rows; each completion's input tokens (its last one predicts none)
    ids, mask = batch.inputs
    prompt_mask = batch.context_mask[::g]
    tail_mask = mask[:, start:].reshape(n, g * tail)
    width = start + g * tail
    device = ids.device

    first_position = prompt_mask.sum(-1, keepdim=True)  # each completion's first position id
    tail_positions = (first_position + torch.arange(tail, device=device)).repeat(1, g)
    position_ids = torch.cat([positions(prompt_mask), tail_positions], dim=1)

    block = torch.cat([torch.zeros(start, dtype=torch.long), torch.arange(1, g + 1).repeat_interleave(tail)])
    block = block.to(device)
    index = torch.arange(width, device=device)
    allowed = (index[None, :] <= index[:, None]) & ((block[None, :] == 0) | (block[None, :] == block[:, None]))
    keys = torch.cat([prompt_mask, tail_mask], dim=1).bool()
    allowed = (allowed[None] & keys[:, None, :]) | torch.eye(width, dtype=torch.bool, device=device)[None]

    keep = torch.cat([torch.tensor([start - 1], device=device), torch.arange(start, width, device=device)])
    use_trunk = batch.trunk is not None and shared.enabled
    if use_trunk:
        trunk = batch.trunk
        inputs = torch.cat([trunk[::g, :start], trunk[:, start:].reshape(n, g * tail, -1)], dim=1)
        dtype = inputs.dtype
    else:
        inputs = torch.cat([batch.context_ids[::g], ids[:, start:].reshape(n, g * tail)], dim=1)
        dtype = model.get_input_embeddings().weight.dtype
    attention = torch.zeros(allowed.shape, dtype=dtype, device=device)
    attention = attention.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
    kwargs = {"attention_mask": attention, "position_ids": position_ids, "logits_to_keep": keep, "use_cache": False}
    if use_trunk:
        with shared.upper(model):
            logits = model(inputs_embeds=inputs, **kwargs).logits
    else:
        logits = model(input_ids=inputs, **kwargs).logits
    vocab = logits.shape[-1]
    head = logits[:, None, :1].expand(n, g, 1, vocab)  # the prompt's last position predicts every first token
    return torch.cat([head, logits[:, 1:].reshape(n, g, tail, vocab)], dim=2).reshape(rows, length, vocab)
