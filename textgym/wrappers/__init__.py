"""Reward wrappers for textgym's environments."""

from textgym.wrappers.critic_reward import CriticRewardWrapper

__all__ = ["CriticRewardWrapper"]
