"""A causal-LM policy with a value head, its frozen reference model, and the log-probabilities the agents need.

The policy is a copy of the reference model whose lower layers (and embeddings) can be frozen: frozen parameters
are *the reference's own tensors*, shared rather than copied, so freezing ``k`` of ``n`` layers saves ``k/n`` of
the copy's memory and all of their gradient and optimizer state. The reference stays frozen for the KL penalty.
Their common output, the trunk, is computed once while sampling and reused by every later pass
(:class:`SharedTrunk`), and logits are computed only at the positions that predict generated tokens.

Sampling controls (temperature, top-k, top-p) change the distribution the tokens come from. To keep the PPO ratio
honest, the policy's log-probabilities are always those of the *processed* distribution: logits divided by the
temperature, with the tokens outside the top-k / top-p support of the sampling step masked out. The support is
recorded when sampling and reused unchanged for every later evaluation of the policy. The reference is scored over
the full vocabulary at the same temperature, so the KL penalty ``log pi(a) - log ref(a)`` also charges the policy
for the probability mass its support leaves out.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator

import torch
from torch import nn

from textgym.left_padding import positions
from textgym.lm_compat import logits_agree
from textgym.models import load_causal_lm

log = logging.getLogger(__name__)


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Temperature-scaled logits with ``-inf`` outside the top-k / nucleus support (the last dimension).

    ``temperature=0`` is greedy: only the most likely token (and any exact tie) keeps a finite logit.
    """
    if temperature == 0:
        logits = logits.float()
        return logits.masked_fill(logits < logits.max(-1, keepdim=True).values, float("-inf"))
    logits = scaled(logits.float(), temperature)
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``, skipping the vocabulary-sized division at temperature 1."""
    return logits if temperature == 1 else logits / temperature


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks: the first ModuleList with ``num_hidden_layers`` entries."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"Cannot find the decoder layers of {type(model).__name__} (num_hidden_layers={count}).")


def _layer_slot(model: nn.Module) -> tuple[nn.Module, str]:
    """The module holding ``model``'s decoder-layer ModuleList and the attribute it is held under."""
    layers = decoder_layers(model)
    for name, module in model.named_modules():
        if module is layers:
            parent, _, attribute = name.rpartition(".")
            return model.get_submodule(parent), attribute
    raise ValueError(f"Cannot locate the decoder layers of {type(model).__name__}.")


class SharedTrunk:
    """The frozen lower layers that the policy and its reference share, computed once per batch.

    The embeddings and the lowest ``layers`` decoder layers of the policy *are* the reference's (the same tensors),
    so their output, the trunk, is the same for both models and does not change during an update. It is recorded
    while sampling (:meth:`recording`, a forward hook on the last shared layer around each incremental forward),
    and every later pass (policy scoring, reference, each epoch's minibatches, evaluation) runs only the
    layers above it (:meth:`upper`, the model called with ``inputs_embeds=trunk`` while its layer list holds only
    the upper layers). This works with any decoder whose layers take and return the hidden states in order; it is
    checked against a full forward pass when built, and when the check fails the trunk is switched off (a logged
    warning) and every pass runs the whole model.

    Args:
        policy_lm: The policy's LM.
        reference: The reference model.
        layers: How many lowest decoder layers are shared (0: no trunk).
    """

    def __init__(self, policy_lm: nn.Module, reference: nn.Module, layers: int) -> None:
        self.layers = layers
        self.enabled = layers > 0
        self._slots = {id(model): _layer_slot(model) for model in (policy_lm, reference)}
        # The policy's layer modules are copies holding the reference's tensors: each model has its own hook point.
        self._last_shared = {
            id(model): decoder_layers(model)[layers - 1] for model in (policy_lm, reference) if layers > 0
        }
        if self.enabled and not self._agrees(policy_lm):
            log.warning(
                "The shared-trunk shortcut does not reproduce %s's full forward pass; running full passes instead.",
                type(policy_lm).__name__,
            )
            self.enabled = False

    @contextlib.contextmanager
    def recording(self, model: nn.Module, chunks: list[torch.Tensor]) -> Iterator[None]:
        """Appends the trunk of ``model``'s forward pass run inside it to ``chunks`` (nothing when switched off).

        Wrap only the sampler's own calls: other users of the shared model (a scorer or critic that is the same
        model object) must not be recorded.
        """
        if not self.enabled:
            yield
            return

        def record(module, inputs, output):
            chunks.append((output[0] if isinstance(output, tuple) else output).detach())

        handle = self._last_shared[id(model)].register_forward_hook(record)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def upper(self, model: nn.Module) -> Iterator[None]:
        """Inside it, ``model``'s layer list holds only the unshared layers (feed it ``inputs_embeds=trunk``)."""
        parent, attribute = self._slots[id(model)]
        full = getattr(parent, attribute)
        setattr(parent, attribute, nn.ModuleList(list(full)[self.layers :]))
        try:
            yield
        finally:
            setattr(parent, attribute, full)

    def _agrees(self, model: nn.Module) -> bool:
        ids = torch.arange(3, 11, device=_device(model)).view(2, 4) % model.config.vocab_size
        mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], device=ids.device)
        chunks: list[torch.Tensor] = []
        with torch.no_grad(), self.recording(model, chunks):
            full = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
        if len(chunks) != 1:
            return False
        with torch.no_grad(), self.upper(model):
            short = model(inputs_embeds=chunks[0], attention_mask=mask, position_ids=positions(mask)).logits
        return logits_agree(full, short)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def causal_lm_forward(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    length: int,
    trunk: torch.Tensor | None = None,
    shared: SharedTrunk | None = None,
    hidden: bool = False,
):
    """One forward pass of ``model`` with logits only at the last ``length`` positions.

    With ``trunk`` (the shared layers' output for these inputs, see :class:`SharedTrunk`), only the layers above
    the trunk run. The positions are passed as indices, not as a count: transformers slices the hidden states with
    them, and an index gathers a contiguous copy where a slice keeps a strided view, which torch multiplies with
    the vocabulary-sized head as one broadcast matrix product per row (the head's 28M weights read once per row:
    1.8x slower for SmolLM2 at 8 rows of 20 positions).
    """
    width = attention_mask.shape[1]
    keep = torch.arange(width - length, width, device=attention_mask.device)
    kwargs = {"attention_mask": attention_mask, "position_ids": positions(attention_mask), "logits_to_keep": keep}
    if hidden:
        kwargs["output_hidden_states"] = True
    if trunk is not None and shared is not None and shared.enabled:
        with shared.upper(model):
            return model(inputs_embeds=trunk, **kwargs)
    return model(input_ids=input_ids, **kwargs)


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
        count = len(layers) if freeze_layers == -1 else freeze_layers
        if count:
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
        self.frozen_layers = count
        hidden = self.lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1, device=_device(model))
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The parameters that train (for checkpoints): everything not shared with the reference."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {name: tensor for name, tensor in self.state_dict().items() if name in names}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        length: int,
        trunk: torch.Tensor | None = None,
        shared: SharedTrunk | None = None,
        detach_value: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values of the last ``length`` positions of the inputs.

        For a batch's :attr:`~textgym.agents.lm_rollout.Batch.inputs` these are the positions that predict the
        generated tokens. ``detach_value`` stops the value loss's gradient at the value head.
        """
        out = causal_lm_forward(self.lm, input_ids, attention_mask, length, trunk, shared, hidden=True)
        last = out.hidden_states[-1][:, -length:]
        return out.logits, self.values(last.detach() if detach_value else last)

    def values(self, hidden: torch.Tensor) -> torch.Tensor:
        """The value head on last hidden states ``(rows, positions, hidden)``: ``(rows, positions)``, float32."""
        return self.value_head(hidden.float()).squeeze(-1)


def _log_distribution(
    logits: torch.Tensor, support: torch.Tensor | None, temperature: float, vocab: int
) -> torch.Tensor:
    """Log-probabilities over the vocabulary of temperature-scaled ``logits`` (-inf outside ``support``)."""
    logits = scaled(logits[..., :vocab].float(), temperature)
    if support is not None:
        logits = logits.masked_fill(~support, float("-inf"))
    return torch.log_softmax(logits, -1)


def token_logprobs(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    support: torch.Tensor | None,
    temperature: float,
    vocab: int,
) -> torch.Tensor:
    """Log-probabilities of ``tokens`` under temperature-scaled ``logits``, restricted to ``support`` when given.

    The policy's log-probabilities use the sampling support (the distribution the tokens came from); the
    reference's use the full vocabulary (``support=None``), so the KL estimate keeps the ``-log ref(support)``
    term and a policy cannot move its nucleus onto tokens the reference finds unlikely for free.
    """
    return _log_distribution(logits, support, temperature, vocab).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def token_entropy(logits: torch.Tensor, support: torch.Tensor | None, temperature: float, vocab: int) -> torch.Tensor:
    """Entropy (nats) of the sampling distribution at each position.

    Outside ``support`` the log-probability is -inf and its term 0; with the full vocabulary no term needs masking
    (a finite logit has a finite log-probability), which spares a pass over every position's vocabulary.
    """
    logp = _log_distribution(logits, support, temperature, vocab)
    terms = logp.exp() * (logp if support is None else logp.masked_fill(~support, 0.0))
    return -terms.sum(-1)


@torch.no_grad()
def reference_logits(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    length: int,
    trunk: torch.Tensor | None = None,
    shared: SharedTrunk | None = None,
) -> torch.Tensor:
    """A model's logits (no gradient) at the last ``length`` positions of the inputs."""
    return causal_lm_forward(model, input_ids, attention_mask, length, trunk, shared).logits


DEFAULT_FROZEN_SHARE = 0.6


def build_policy(
    model_name: str, freeze_layers: int | None = None, device: str = "cpu", dtype: str = "float32"
) -> tuple[LMPolicy, nn.Module]:
    """The trainable policy and the frozen reference for a model name, folder or hub id, on a device and dtype.

    ``freeze_layers=None`` freezes the lowest 60 % of the layers (rounded down).
    """
    reference = load_causal_lm(model_name, device, dtype)
    return LMPolicy(reference, resolve_frozen_layers(reference, freeze_layers)), reference


def resolve_frozen_layers(model: nn.Module, freeze_layers: int | None) -> int:
    """``freeze_layers``, or 60 % of the model's layers (rounded down) when it is None."""
    return int(DEFAULT_FROZEN_SHARE * len(decoder_layers(model))) if freeze_layers is None else freeze_layers
