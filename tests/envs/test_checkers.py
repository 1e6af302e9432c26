"""Gymnasium's and Stable-Baselines3's environment checkers on every registered textgym id."""

from __future__ import annotations

import os
import warnings

import gymnasium as gym
import pytest
import stable_baselines3
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import textgym

IDS = textgym.registered_ids()

# Warnings raised from these packages (their checkers, passive checker, wrappers, or our own code) are about our
# env and fail the test. Others (e.g. a third-party library warning while a scorer model loads) are not.
_OWN_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (gym, stable_baselines3, textgym)  # type: ignore[arg-type]
)


def _about_env(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if w.filename.startswith(_OWN_DIRS) or "WARN:" in str(w.message)
    ]


def test_registered_ids_are_the_three_tasks():
    assert IDS == ["TextSentiment-sparse-v0", "TextDetox-sparse-v0", "TextSummarize-sparse-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, max_new_tokens=4)
        gym_check_env(env.unwrapped)
        env.close()
    assert _about_env(caught) == []


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, max_new_tokens=4)
        sb3_check_env(env, warn=True)
        env.close()
    assert _about_env(caught) == []


def test_warning_filter_sees_checker_warnings():
    # The filter above must not be blind: a wrapped env makes gymnasium's checker warn, and the filter sees it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(gym.make("TextDetox-sparse-v0", max_new_tokens=4))
    assert any("unwrapped" in message for message in _about_env(caught))
