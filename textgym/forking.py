"""Keeps processes forked from a textgym process from hanging in their first torch operation.

A process that has run torch's intra-op thread pool (OpenMP) and then forks leaves the child a copy of that pool's
state without its threads: the child's first parallel region waits forever for threads that do not exist (no
error, no CPU use). This is what hung ``gym.make_vec("TextDetox-critic-v0", num_envs=2,
vectorization_mode="async")`` with the default fork start method: building the env in the parent (Gymnasium builds
one there to read its spaces) loads the toxicity scorer, whose weight loading runs a parallel copy; the worker's
first LSTM forward then hung. With ``spawn`` the child is a fresh process and nothing is inherited.

The fix is the one PyTorch's own DataLoader applies to its forked workers: in every child forked after torch was
imported, intra-op parallelism is set to one thread, which never enters the inherited pool. Forked env workers
then run one thread each (where several envs run in parallel, more threads per worker would oversubscribe the
cores anyway); a worker that wants more may call ``torch.set_num_threads`` itself, at its own risk, or the user
may pass ``vector_kwargs={"context": "spawn"}``. Registered once, when textgym is imported.
"""

from __future__ import annotations

import os
import sys

_REGISTERED = False


def _after_fork_in_child() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:  # a child of a process that never imported torch inherits no pool
        torch.set_num_threads(1)


def register() -> None:
    """Registers the at-fork handler (once per process)."""
    global _REGISTERED
    if not _REGISTERED and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _REGISTERED = True
