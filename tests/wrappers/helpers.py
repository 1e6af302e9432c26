"""Helpers shared by the critic-wrapper tests: find the wrapper, play a fixed text through an environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from textgym.wrappers import CriticRewardWrapper, DenseRewardWrapper


def critic_wrapper(env: gym.Env) -> CriticRewardWrapper:
    """The CriticRewardWrapper inside the wrappers that ``gym.make`` adds."""
    current = env
    while not isinstance(current, CriticRewardWrapper):
        current = current.env
    return current


def reward_wrapper(env: gym.Env) -> DenseRewardWrapper:
    """The dense reward wrapper (of any member) inside the wrappers that ``gym.make`` adds."""
    current = env
    while not isinstance(current, DenseRewardWrapper):
        current = current.env
    return current


def token_ids(env: gym.Env, text: str, eos: bool = True) -> list[int]:
    """The ids of ``text`` in the environment's tokenizer, plus EOS when asked."""
    tokenizer = env.unwrapped.tokenizer
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return ids + [tokenizer.eos_token_id] if eos else ids


def char_ends(env: gym.Env, ids: list[int]) -> list[tuple[int, int]]:
    """Character range of each token in the decoded completion, from decoding growing prefixes."""
    tokenizer = env.unwrapped.tokenizer
    ranges, previous = [], 0
    for index in range(len(ids)):
        end = len(tokenizer.decode(ids[: index + 1], skip_special_tokens=True))
        ranges.append((previous, end))
        previous = end
    return ranges


@dataclass
class Episode:
    """What one played episode gave: each step's reward and the last step's info."""

    rewards: list[float]
    info: dict[str, Any]
    terminated: bool

    @property
    def total(self) -> float:
        return float(sum(self.rewards))


def play(env: gym.Env, ids: list[int], prompt: str = "The man said") -> Episode:
    """Resets on ``prompt`` and steps ``ids`` until the episode ends (it must end on the last id at the latest)."""
    env.reset(options={"prompt": prompt})
    rewards: list[float] = []
    for token in ids:
        _, reward, terminated, truncated, info = env.step(token)
        rewards.append(float(reward))
        if terminated or truncated:
            return Episode(rewards, info, terminated)
    raise AssertionError("the episode did not end on the given tokens")
