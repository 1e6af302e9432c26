"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One torch thread for the whole suite: on 2 cores shared with other processes, two threads wait for each other
    at every op, and small models (the toxicity BiLSTM's 100 steps, SmolLM2 forward passes) slow down up to 100-fold.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """A tiny config-built causal LM with the real tokenizer, saved in a folder of its own for each test module (so
    no module sees a model another one loaded and changed): the folder's path."""
    from tests.tiny_model import save_tiny_causal_lm

    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="session")
def tiny_lm_folder(tmp_path_factory):
    """A tiny config-built causal LM with the real tokenizer, saved once, whose few-shot margins vary between texts
    (P(positive) of the sentiment prompt from about 0.48 to 0.60), so that a change of dtype or device shows."""
    from tests.tiny_model import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), initializer_range=0.2)
