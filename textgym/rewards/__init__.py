"""Dense rewards: the ways to turn a task's one sparse score into per-token rewards, behind one seam.

Each member is one file and one line of :data:`REWARDS`; :mod:`textgym.rewards.base` holds what they share.
``sparse`` is the env's own reward (no wrapper). Every task has an id per reward: ``Text{Task}-{reward}-v0``.
"""

from __future__ import annotations

import importlib
from typing import Any

from textgym.error import unknown_name
from textgym.rewards.base import DenseReward, EnvSettings, Failure

REWARDS: dict[str, str] = {
    "uniform": "textgym.rewards.uniform:UniformReward",
    "potential": "textgym.rewards.potential:PotentialReward",
    "attention": "textgym.rewards.attention:AttentionReward",
    "occlusion": "textgym.rewards.occlusion:OcclusionReward",
    "critic": "textgym.rewards.critic:CriticReward",
}
"""The dense rewards by name: ``module:class`` of each member (a new reward is one file plus one line here)."""
REWARD_KINDS = ("sparse", *REWARDS)
"""Every reward kind an env id can have, ``sparse`` (the task's own reward) first."""

__all__ = ["DenseReward", "EnvSettings", "Failure", "REWARDS", "REWARD_KINDS", "reward_class", "build_reward"]


def reward_class(name: str) -> type[DenseReward]:
    """The member class called ``name``."""
    if name not in REWARDS:
        raise unknown_name("reward", name, REWARDS, hint="'sparse' is the env's own reward: use no wrapper.")
    module, _, cls = REWARDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_reward(reward: str | DenseReward, settings: EnvSettings, mode: str = "episode", **kwargs: Any) -> DenseReward:
    """A member by name (with its arguments) for an env's settings, or a ``DenseReward`` object as it is."""
    if isinstance(reward, DenseReward):
        if kwargs or mode != reward.mode:
            raise ValueError("A DenseReward object comes configured: pass no mode or arguments with it.")
        return reward
    return reward_class(reward)(settings, mode, **kwargs)
