"""Reward wrappers for textgym's environments."""

from textgym.wrappers.critic_reward import CriticRewardWrapper
from textgym.wrappers.critic_reward_vector import CriticRewardVectorWrapper

__all__ = ["CriticRewardWrapper", "CriticRewardVectorWrapper"]
