"""The dense reward wrapper: one of :data:`textgym.rewards.REWARDS` paid on a text environment's steps."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from textgym.rewards import DenseReward, build_reward
from textgym.rewards.base import DenseRewardBook, EnvSettings, RewardViews


def _plain(value: Any) -> Any:
    """A constructor argument as the env spec records it: plain data as it is, an object (a critic) by its repr."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


class DenseRewardWrapper(RewardViews, gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replaces a text environment's sparse reward by a dense reward that keeps (or shifts) its return.

    The reward is a member of :data:`textgym.rewards.REWARDS` (``uniform``, ``potential``, ``attention``,
    ``occlusion``, ``critic``), given by name with its arguments, or a :class:`~textgym.rewards.DenseReward`
    object. Its docstring gives the formula; :mod:`textgym.rewards.base` the payment modes, cache and faults.

    ## Info (last step)
    ``token_rewards`` (one float per generated token, summing to the episode's return; a tuple, because lengths
    differ between episodes and vector infos hold them as objects), ``dense_reward`` (the return minus the
    extrinsic reward), ``reward_fallback`` (an answer failed in this episode: a failed prefix paid nothing),
    ``reward_error`` (set when the final answer failed, so that the return is the extrinsic reward alone),
    ``reward_stats`` (requests, cache hits, calls, failures), plus the member's own keys.

    Attributes:
        reward: The member.
        reward_name: Its name (``"uniform"``, ...).
        mode: ``"episode"`` or ``"prefix"``.
        credit_token_rewards: Whether an agent should move the last step's ``token_rewards`` onto the episode's
            steps to get the dense signal (True in ``episode`` mode, where the whole return is paid on the last
            step; False in ``prefix`` mode, where the step rewards are already dense).

    Args:
        env: A textgym environment (``TextGenerationEnv``, possibly wrapped).
        reward: A reward name or a ``DenseReward``.
        mode: ``"episode"`` or ``"prefix"`` (where the reward has it).
        **reward_kwargs: The member's arguments (see its class).
    """

    def __init__(
        self, env: gym.Env, reward: str | DenseReward = "uniform", mode: str = "episode", **reward_kwargs: Any
    ):
        recorded = {key: _plain(value) for key, value in {"reward": reward, "mode": mode, **reward_kwargs}.items()}
        gym.utils.RecordConstructorArgs.__init__(self, **recorded)
        super().__init__(env)
        self.reward = build_reward(reward, EnvSettings.of_env(env), mode, **reward_kwargs)
        self.book = DenseRewardBook(self.reward, 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Resets the environment and starts the episode's reward bookkeeping."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.book.start(0, self.env.unwrapped.item)
        return obs, info

    def step(self, action: Any):
        """Steps the environment and pays the dense reward due at this step."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        extrinsic = float(info["extrinsic_score"]) if done else 0.0
        (result,) = self.book.step([(0, int(np.asarray(action).reshape(())), done, extrinsic)])
        if result.info:
            info = {**info, **result.info}
        return obs, result.reward, terminated, truncated, info
