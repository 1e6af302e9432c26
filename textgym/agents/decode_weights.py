"""Faster token-by-token sampling on a CPU: linear layers multiply by a transposed copy of their weights.

While sampling, each linear layer of the policy sees one row per environment (8 by default). For so few rows,
MKL's matrix product on a CPU is much faster when the weight is stored as ``[in, out]`` (contiguous) than in
torch's ``[out, in]`` layout, which ``F.linear`` multiplies as ``x @ W.T``: 1.3-2.4x for SmolLM2-135M's shapes at
8 rows, and a whole KV-cached token step of the model 1.2x (``benchmarks/results/decode_layout.md``); for the long
inputs of a prompt's first pass the two layouts run alike. Inside :meth:`TransposedWeights.active`, every
``nn.Linear`` of a model computes ``x @ W_t + b``, where ``W_t`` is a cached contiguous copy of ``W.T``: the same
product up to float rounding.

Copies never serve a stale weight: a weight that trains (``requires_grad``) is copied again for every batch of
episodes (:meth:`TransposedWeights.forget_trainable`, called by :func:`~textgym.agents.lm_rollout.collect` before
it samples), because torch's fused optimizers write weights without moving their version counter; a frozen
weight's copy is kept and made again only if the weight is written in place (its version counter moves). With
gradients on, or for weights that are not float32 on the CPU, the layers run as they are. The cost is one more copy
of the linear weights (about 0.5 GB for SmolLM2-135M, a weight shared by several layers copied once; the GRPO run of
``benchmarks/results/trl_comparison_decode.md`` peaked 0.58 GiB above the run before) and, per batch, copying the
trainable ones again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class TransposedWeights:
    """Cached ``[in, out]`` copies of linear weights, and a context that makes a model's linear layers use them."""

    def __init__(self) -> None:
        self._copies: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self.builds = 0
        """How many copies were made (a changed weight's copy is made again)."""
        self.on = False
        """Whether installed layers use the copies now (see :meth:`switched_on`)."""

    def transposed(self, weight: torch.Tensor) -> torch.Tensor:
        """The contiguous ``weight.T``: the cached copy, unless there is none or the weight's version has moved."""
        entry = self._copies.get(id(weight))
        if entry is None or entry[0] is not weight or entry[1] != weight._version:
            entry = (weight, weight._version, weight.detach().t().contiguous())
            self._copies[id(weight)] = entry
            self.builds += 1
        return entry[2]

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
            vars(module)["forward"] = _TransposedForward(self, module)
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
        """Inside it, ``model``'s float32 CPU linear layers multiply by the transposed copies (without gradients)."""
        with self.installed(model), self.switched_on():
            yield


class _TransposedForward:
    """A linear layer's forward through :class:`TransposedWeights` (plain when switched off or with gradients)."""

    def __init__(self, weights: TransposedWeights, module: nn.Linear) -> None:
        self.weights, self.module = weights, module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        module = self.module
        if not self.weights.on or torch.is_grad_enabled() or x.dtype != torch.float32:
            return nn.functional.linear(x, module.weight, module.bias)
        out = x @ self.weights.transposed(module.weight)
        return out if module.bias is None else out + module.bias
