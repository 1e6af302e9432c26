"""A causal-LM policy with a value head, its frozen reference model, and the log-probabilities PPO needs.

The policy is a copy of the reference model whose lower layers (and embeddings) can be frozen: frozen parameters
are *the reference's own tensors*, shared rather than copied, so freezing ``k`` of ``n`` layers saves ``k/n`` of
the copy's memory and all of their gradient and optimizer state. The reference stays frozen for the KL penalty.

Sampling controls (temperature, top-k, top-p) change the distribution the tokens come from. To keep the PPO ratio
honest, log-probabilities are always those of the *processed* distribution: logits divided by the temperature,
with the tokens outside the top-k / top-p support of the sampling step masked out. The support is recorded when
sampling and reused unchanged for every later evaluation (policy and reference), so old and new probabilities are
over the same tokens.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from textgym.left_padding import positions
from textgym.models import load_causal_lm


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Temperature-scaled logits with ``-inf`` outside the top-k / nucleus support (the last dimension).

    ``temperature=0`` is greedy: only the most likely token (and any exact tie) keeps a finite logit.
    """
    if temperature == 0:
        logits = logits.float()
        return logits.masked_fill(logits < logits.max(-1, keepdim=True).values, float("-inf"))
    logits = logits.float() / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks: the first ModuleList with ``num_hidden_layers`` entries."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"Cannot find the decoder layers of {type(model).__name__} (num_hidden_layers={count}).")


class LMPolicy(nn.Module):
    """A causal LM plus a scalar value head on its last hidden state.

    Args:
        model: The reference model (shared, read-only); the policy is a copy of it.
        freeze_layers: Freeze (and share with the reference) the embeddings and this many lowest layers; ``-1``
            freezes every layer (only the value head and the final norm/head train).
    """

    def __init__(self, model: nn.Module, freeze_layers: int = 0) -> None:
        super().__init__()
        layers = decoder_layers(model)
        if not -1 <= freeze_layers <= len(layers):
            raise ValueError(f"freeze_layers must be in [-1, {len(layers)}], got {freeze_layers}.")
        frozen: list[nn.Parameter] = []
        if freeze_layers:
            count = len(layers) if freeze_layers == -1 else freeze_layers
            frozen += list(model.get_input_embeddings().parameters())
            for layer in layers[:count]:
                frozen += list(layer.parameters())
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        # deepcopy with the frozen tensors in its memo: the copy refers to the reference's own tensors for them.
        self.lm = copy.deepcopy(model, memo={id(p): p for p in frozen})
        shared = {id(p) for p in frozen}
        for parameter in self.lm.parameters():
            parameter.requires_grad_(id(parameter) not in shared)
        self.lm.eval()  # no dropout: the sampling and the update must see the same function
        hidden = self.lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The parameters that train (for checkpoints): everything not shared with the reference."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {name: tensor for name, tensor in self.state_dict().items() if name in names}

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Processed logits and values of the ``length`` positions that predict tokens ``start..start+length-1``."""
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions(attention_mask),
            output_hidden_states=True,
        )
        window = slice(start - 1, start - 1 + length)
        values = self.value_head(out.hidden_states[-1][:, window].float()).squeeze(-1)
        return out.logits[:, window], values


def token_logprobs(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    support: torch.Tensor | None,
    temperature: float,
    vocab: int,
) -> torch.Tensor:
    """Log-probabilities of ``tokens`` under temperature-scaled ``logits`` restricted to ``support``."""
    logits = logits[..., :vocab].float() / temperature
    if support is not None:
        logits = logits.masked_fill(~support, float("-inf"))
    return torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def reference_logits(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, length: int
) -> torch.Tensor:
    """A model's logits (no gradient) at the positions that predict the generated tokens."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask))
    return out.logits[:, start - 1 : start - 1 + length]


DEFAULT_FROZEN_SHARE = 0.6


def build_policy(model_name: str, freeze_layers: int | None = None) -> tuple[LMPolicy, nn.Module]:
    """The trainable policy and the frozen reference for a model name, folder or hub id.

    ``freeze_layers=None`` freezes the lowest 60 % of the layers (rounded down).
    """
    reference = load_causal_lm(model_name)
    return LMPolicy(reference, resolve_frozen_layers(reference, freeze_layers)), reference


def resolve_frozen_layers(model: nn.Module, freeze_layers: int | None) -> int:
    """``freeze_layers``, or 60 % of the model's layers (rounded down) when it is None."""
    return int(DEFAULT_FROZEN_SHARE * len(decoder_layers(model))) if freeze_layers is None else freeze_layers
