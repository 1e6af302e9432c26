"""Fixtures of the critic-wrapper tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One torch thread while these tests run: on 2 shared cores, two threads spin against other processes and
    small ops (the toxicity BiLSTM's 100 time steps) slow down a hundredfold."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
