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
from textgym.envs.registration import reward_of

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


def test_registered_ids_are_the_three_tasks_times_the_six_rewards():
    rewards = ("sparse", "uniform", "potential", "attention", "occlusion", "critic")
    assert IDS[:18] == [f"Text{task}-{kind}-v0" for task in ("Sentiment", "Detox", "Summarize") for kind in rewards]
    assert [reward_of(env_id) for env_id in IDS[:6]] == list(rewards)  # the kind sits in the spec, not the spelling


def _checked(env_id):
    """The env the checker should see: the base env of a sparse id, the reward wrapper of a dense one."""
    env = gym.make(env_id, max_new_tokens=4)
    return env.unwrapped if reward_of(env_id) == "sparse" else env.env.env  # below OrderEnforcing, PassiveEnvChecker


_WRAPPER_NOTE = "different from the unwrapped version"  # gymnasium's note when handed a wrapper, as intended here


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = _checked(env_id)
        gym_check_env(env)
        env.close()
    assert [message for message in _about_env(caught) if _WRAPPER_NOTE not in message] == []


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
