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
