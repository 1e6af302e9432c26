"""What differs between transformers versions in the causal-LM calls textgym makes.

transformers 5.19+ names the key/value cache ``cache`` (argument and output); earlier versions (4.x and 5.0-5.18)
call it ``past_key_values``. Code that threads a cache through incremental forward passes reads and passes it
through these two functions, so it works with either. 4.56+ keep a cache's tensors in one object per layer, earlier
versions in lists of key and value tensors (:func:`select_rows` copies either).
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@functools.cache
def _cache_argument(forward: Any) -> str:
    parameters = inspect.signature(forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_argument(model: Any) -> str:
    """The name of ``model.forward``'s key/value-cache argument: ``"cache"`` or ``"past_key_values"``."""
    return _cache_argument(type(model).forward)


def output_cache(output: Any) -> Any:
    """The key/value cache a forward pass returned (``output.cache`` or ``output.past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The keyword argument that hands ``cache`` to ``model``'s forward pass."""
    return {cache_argument(model): cache}


def select_rows(cache: Any, rows: torch.Tensor) -> Any:
    """A new cache of the batch rows ``rows`` of ``cache`` (in that order, repeats allowed); ``cache`` is unchanged.

    Only the selected rows are copied (a deep copy would copy every row first). The forward pass that extends the
    new cache leaves ``cache`` as it was, so one cache serves many batches.
    """
    selected = copy.copy(cache)
    if hasattr(cache, "layers"):
        selected.layers = [copy.copy(layer) for layer in cache.layers]
    else:
        selected.key_cache, selected.value_cache = list(cache.key_cache), list(cache.value_cache)
    selected.batch_select_indices(rows)
    return selected


def logits_agree(full: torch.Tensor, short: torch.Tensor) -> bool:
    """Whether ``short`` (a shortcut's logits) reproduces ``full`` (the model's own forward pass).

    Same shape, and every entry within 1e-4 (float32; 5e-2 in lower precisions) of ``full``'s largest magnitude + 1:
    the shortcut reorders float sums, so equality is to rounding, not bit-exact.
    """
    tolerance = 1e-4 if full.dtype.itemsize >= 4 else 5e-2
    scale = float(full.float().abs().max()) + 1.0
    return full.shape == short.shape and float((full - short).float().abs().max()) <= tolerance * scale
