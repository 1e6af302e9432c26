"""Faster token-by-token sampling on a CPU: linear layers multiply by copies of their weights laid out for few rows.

While sampling, each linear layer of the policy sees one row per environment (8 by default). For so few rows, torch's
own ``F.linear`` (MKL, ``x @ W.T`` over the ``[out, in]`` weight) streams the weights far below the memory's rate
(``benchmarks/results/speed_floor.md``). Inside :meth:`DecodeWeights.active`, every ``nn.Linear`` of a model
multiplies inputs of at most :data:`SMALL_ROWS` rows by a cached copy of its weight in one of two layouts:

- **packed**, wherever torch has it: oneDNN's own layout for the weight, multiplied by oneDNN (the ``torch.ops.mkldnn``
  products that torch's compiler uses for frozen float32 linear layers on a CPU), checked once per process against
  ``F.linear`` and not used where missing or wrong. Over a whole token step at 8 rows faster than the transposed
  layout, most of all for the vocabulary head (for SmolLM2's small attention projections alone it is not); slower
  for a single row;
- **transposed**, for a store made for one row or where oneDNN's products are missing: a contiguous ``[in, out]``
  copy, ``x @ W_t``, itself faster than torch's layout for few rows.

``benchmarks/results/decode_layout.md`` measures all three, per layer shape and over a whole KV-cached token step.
Longer inputs (a prompt's first pass) run as they are: there the layouts run alike. Either way the same product up
to float rounding.

Copies never serve a stale weight: a weight that trains (``requires_grad``) is copied again for every batch of
episodes (:meth:`DecodeWeights.forget_trainable`, called by :func:`~textgym.agents.lm_rollout.collect` before
it samples), because torch's fused optimizers write weights without moving their version counter; a frozen
weight's copy is kept and made again only if the weight is written in place (its version counter moves). With
gradients on, or for weights that are not float32 on the CPU, the layers run as they are. The cost is one more copy
of the linear weights (about 0.5 GB for SmolLM2-135M, a weight shared by several layers copied once; the GRPO run of
``benchmarks/results/trl_comparison_decode.md`` peaked 0.58 GiB above the run before) and, per batch, copying the
trainable ones again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

import torch
from torch import nn

log = logging.getLogger(__name__)

SMALL_ROWS = 32
"""Inputs of at most this many rows (all leading dimensions together) use the copies; longer ones run as they are."""


@functools.cache
def packed_products() -> bool:
    """Whether this torch multiplies by oneDNN-packed weights, and gets ``F.linear``'s product that way."""
    try:
        generator = torch.Generator().manual_seed(0)
        weight, bias = torch.randn(24, 16, generator=generator), torch.randn(24, generator=generator)
        x = torch.randn(3, 1, 16, generator=generator)
        out = _packed_product(x, _pack(weight), bias)
        return bool(torch.allclose(out, nn.functional.linear(x, weight, bias), atol=1e-4, rtol=1e-4))
    except (AttributeError, RuntimeError, NotImplementedError) as error:
        log.info("oneDNN's packed products are not available (%s); sampling with transposed weights.", error)
        return False


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 8)


def _packed_product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class DecodeWeights:
    """Cached copies of linear weights laid out for few rows, and a context that makes a model's layers use them.

    Args:
        rows: The rows the sampler will run (its envs): for one row the copies are transposed, else packed where
            :func:`packed_products` holds.
    """

    def __init__(self, rows: int = 8) -> None:
        self._copies: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self.packed = rows > 1 and packed_products()
        """Whether the copies are oneDNN-packed (else transposed): packed for stores made for more than one row."""
        self.builds = 0
        """How many copies were made (a changed weight's copy is made again)."""
        self.on = False
        """Whether installed layers use the copies now (see :meth:`switched_on`)."""

    def copy(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight's copy in this store's layout: the cached one, unless there is none or the weight has moved."""
        entry = self._copies.get(id(weight))
        if entry is None or entry[0] is not weight or entry[1] != weight._version:
            made = _pack(weight) if self.packed else weight.detach().t().contiguous()
            entry = (weight, weight._version, made)
            self._copies[id(weight)] = entry
            self.builds += 1
        return entry[2]

    def product(self, x: torch.Tensor, module: nn.Linear) -> torch.Tensor:
        """``module(x)`` through the copy of its weight."""
        if self.packed:
            return _packed_product(x, self.copy(module.weight), module.bias)
        out = x @ self.copy(module.weight)
        return out if module.bias is None else out + module.bias

    def forget_trainable(self) -> None:
        """Drops the copies of weights that train: they are made again from the weights as they are then."""
        self._copies = {key: entry for key, entry in self._copies.items() if not entry[0].requires_grad}

    @contextlib.contextmanager
    def installed(self, model: nn.Module) -> Iterator[None]:
        """Inside it, ``model``'s float32 CPU linear layers can multiply by the copies: while :meth:`switched_on`.

        Installing walks the model's modules and sets a forward on each linear layer, which costs about as much as
        a small layer's product: the sampler installs once per batch and switches on around each of its own passes,
        so that another user of the same model object in between (a critic that is the policy) runs it as it is.
        """
        layers = [
            module
            for module in model.modules()
            if isinstance(module, nn.Linear)
            and module.weight.device.type == "cpu"
            and module.weight.dtype == torch.float32
            and "forward" not in vars(module)
        ]
        for module in layers:  # the instance's own attribute, without nn.Module.__setattr__'s checks
            vars(module)["forward"] = _DecodeForward(self, module)
        try:
            yield
        finally:
            for module in layers:
                vars(module).pop("forward", None)

    @contextlib.contextmanager
    def switched_on(self) -> Iterator[None]:
        """Inside it, the layers of :meth:`installed` use the copies (outside it they run as they are)."""
        previous, self.on = self.on, True
        try:
            yield
        finally:
            self.on = previous

    @contextlib.contextmanager
    def active(self, model: nn.Module) -> Iterator[None]:
        """Inside it, ``model``'s float32 CPU linear layers multiply few rows by the copies (without gradients)."""
        with self.installed(model), self.switched_on():
            yield


class _DecodeForward:
    """A linear layer's forward through :class:`DecodeWeights` (plain when off, with gradients, or long inputs)."""

    def __init__(self, weights: DecodeWeights, module: nn.Linear) -> None:
        self.weights, self.module = weights, module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        module = self.module
        if (
            not self.weights.on
            or torch.is_grad_enabled()
            or x.dtype != torch.float32
            or x.numel() > SMALL_ROWS * x.shape[-1]
        ):
            return nn.functional.linear(x, module.weight, module.bias)
        return self.weights.product(x, module)
