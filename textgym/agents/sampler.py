"""Sampling tokens from a causal LM for a batch of environments in lockstep, with a key/value cache.

The first call reads the environments' observations (left-padded prompts); later calls feed only the tokens just
taken, so each step costs one token per row. All randomness comes from the sampler's own ``torch.Generator``.
"""

from __future__ import annotations

import numpy as np
import torch

from textgym.agents.lm_policy import filter_logits


class LMSampler:
    """Samples next tokens for a batch of episodes that advance together.

    Args:
        model: A causal LM (``transformers``), used read-only.
        action_size: Size of the environment's action space; wider logits (padded vocabularies) are masked.
        temperature: Softmax temperature; 0 means greedy.
        top_p: Nucleus sampling: keep the smallest set of tokens whose probability reaches ``top_p``.
        top_k: Keep only the ``top_k`` most likely tokens (0 keeps all).
        seed: Seed of the sampler's generator.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        action_size: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
    ) -> None:
        if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
            raise ValueError(f"Need temperature >= 0, 0 < top_p <= 1, top_k >= 0; got {temperature}, {top_p}, {top_k}.")
        self.model = model
        self.action_size = action_size
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generator = torch.Generator().manual_seed(seed)
        self._cache = None
        self._mask: torch.Tensor | None = None

    @torch.inference_mode()
    def start(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Reads a batch of observations (rows of equal width) and returns the first sampled tokens."""
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        self._mask = torch.as_tensor(attention_mask, dtype=torch.long)
        positions = (self._mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids, attention_mask=self._mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        self._cache = out.cache
        return self._sample(out.logits[:, -1])

    @torch.inference_mode()
    def next(self, tokens: np.ndarray) -> np.ndarray:
        """Feeds the tokens just taken (one per row) and returns the next sampled tokens."""
        if self._mask is None:
            raise RuntimeError("Call start() with the first observations before next().")
        self._mask = torch.cat([self._mask, torch.ones((len(tokens), 1), dtype=torch.long)], dim=1)
        positions = self._mask.sum(-1, keepdim=True) - 1
        out = self.model(
            input_ids=torch.as_tensor(tokens, dtype=torch.long).view(-1, 1),
            attention_mask=self._mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
        )
        self._cache = out.cache
        return self._sample(out.logits[:, -1])

    def _sample(self, logits: torch.Tensor) -> np.ndarray:
        logits = logits[:, : self.action_size].float()
        if self.temperature == 0:
            return logits.argmax(-1).numpy()
        return (
            torch.multinomial(
                filter_logits(logits, self.temperature, self.top_k, self.top_p).softmax(-1), 1, generator=self.generator
            )
            .squeeze(-1)
            .numpy()
        )
