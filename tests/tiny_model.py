"""A tiny config-built causal LM with the real default tokenizer, saved to a folder, for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from textgym.models import load_tokenizer


def tiny_llama_config(tokenizer, **overrides) -> LlamaConfig:
    """A 2-layer, 32-wide Llama config over ``tokenizer``'s vocabulary; ``overrides`` set any other field."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **overrides,
    )


def save_tiny_causal_lm(folder: Path, seed: int = 0, **overrides) -> Path:
    """Builds a 2-layer Llama with the SmolLM2 tokenizer's vocabulary and saves model and tokenizer to ``folder``.

    ``overrides`` set config fields, e.g. ``initializer_range=0.2`` for weights large enough that a few-shot
    judge's margins differ clearly between texts (at the default 0.02 every P(positive) is 0.50).
    """
    tokenizer = load_tokenizer()
    torch.manual_seed(seed)
    LlamaForCausalLM(tiny_llama_config(tokenizer, **overrides)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_agent(folder: str, cls, config, **overrides):
    """An LM agent of class ``cls`` (with its config class) on the tiny model in ``folder``: 4 envs of the detox
    task with its critic, 6 new tokens, 1 frozen layer, no evaluation, on the CPU; ``overrides`` set any field."""
    settings = {
        "env_id": "TextDetox-critic-v0", "model": folder, "num_envs": 4, "iterations": 2, "freeze_layers": 1,
        "eval_episodes": 0, "device": "cpu", "env_kwargs": {"max_new_tokens": 6},
    }  # fmt: skip
    return cls(config(**{**settings, **overrides}))
