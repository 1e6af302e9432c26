"""Low-precision training with float32 master weights: what makes ``dtype="bfloat16"`` learn.

A bfloat16 weight has 8 significant bits, so a step smaller than half its spacing is rounded away: at the LM
agents' learning rates (1e-5 to 3e-5, Adam's first steps about that size per weight) a weight of magnitude 0.01 or
more never moves. Measured on SmolLM2-135M: one Adam step at lr 3e-5 changed 3.7 % of the 42.5M trainable weights
held in bfloat16, and all of them held in float32. The remedy is the usual one of mixed-precision training
(Micikevicius et al. 2018, "Mixed Precision Training"): the model computes in bfloat16, the optimizer keeps a
float32 copy of each low-precision parameter (its master weight) and its moment estimates in float32, steps the
copy with the gradient cast to float32, and writes the rounded result back into the model. Small steps accumulate
in the master weight until they move the model's copy.

:func:`with_float32_master` turns any ``torch.optim.Optimizer`` class into one that does this for its
low-precision parameters (float32 ones are stepped directly, as before). Its ``state_dict`` carries the master
weights, so a resumed run continues from them rather than from their rounded copies.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)


class Float32Master:
    """Mixin for an optimizer class: float32 master weights for the low-precision parameters (see the module)."""

    def __init__(self, params: Any, *args: Any, **kwargs: Any) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.master_pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (the model's parameter, its master)
        stepped = []
        for group in groups:
            group = dict(group)
            tensors = [group["params"]] if isinstance(group["params"], torch.Tensor) else list(group["params"])
            group["params"] = [self._master_of(p) for p in tensors]
            stepped.append(group)
        super().__init__(stepped, *args, **kwargs)

    def _master_of(self, parameter: torch.Tensor) -> torch.Tensor:
        if parameter.dtype not in LOW_PRECISION:
            return parameter
        master = parameter.detach().float().clone().requires_grad_(True)
        self.master_pairs.append((parameter, master))
        return master

    @property
    def master_weights(self) -> list[torch.Tensor]:
        """The float32 master weights, in the order of the low-precision parameters they stand for."""
        return [master for _, master in self.master_pairs]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Steps the master weights with the model's gradients (cast to float32), then rounds them into the model."""
        for parameter, master in self.master_pairs:
            master.grad = None if parameter.grad is None else parameter.grad.float()
        loss = super().step(closure)
        self.push_to_model()
        return loss

    @torch.no_grad()
    def push_to_model(self) -> None:
        """Writes every master weight, rounded, into its model parameter (after a step, a load or an undo)."""
        for parameter, master in self.master_pairs:
            parameter.copy_(master)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the master weights' gradients and the model's."""
        super().zero_grad(set_to_none)
        for parameter, _ in self.master_pairs:
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state plus the master weights (``"float32_master"``)."""
        state = super().state_dict()
        state["float32_master"] = [master.detach().clone() for master in self.master_weights]
        return state

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s output; a state without master weights takes them from the model's values."""
        state_dict = dict(state_dict)
        saved = state_dict.pop("float32_master", None)
        super().load_state_dict(state_dict)
        if saved is not None and len(saved) != len(self.master_pairs):
            raise ValueError(f"The optimizer state holds {len(saved)} master weights; this model needs "
                             f"{len(self.master_pairs)}.")  # fmt: skip
        for i, (parameter, master) in enumerate(self.master_pairs):
            master.copy_(parameter if saved is None else saved[i])
        self.push_to_model()


@functools.cache
def with_float32_master(optimizer_class: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """``optimizer_class`` with float32 master weights for its low-precision parameters (one class per input)."""
    if issubclass(optimizer_class, Float32Master):
        return optimizer_class
    return type(f"{optimizer_class.__name__}WithFloat32Master", (Float32Master, optimizer_class), {})
