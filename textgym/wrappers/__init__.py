"""Reward wrappers for textgym's environments: the dense rewards of :mod:`textgym.rewards` behind one seam."""

from textgym.wrappers.critic_reward import CriticRewardWrapper
from textgym.wrappers.critic_reward_vector import CriticRewardVectorWrapper
from textgym.wrappers.dense_reward import DenseRewardWrapper
from textgym.wrappers.dense_reward_vector import DenseRewardVectorWrapper

__all__ = ["CriticRewardWrapper", "CriticRewardVectorWrapper", "DenseRewardWrapper", "DenseRewardVectorWrapper"]
