"""The batched vector form of :class:`~textgym.envs.text_env.TextGenerationEnv`.

It steps ``num_envs`` sub-environments and scores every episode that ends on a step in one batched scorer call,
where ``SyncVectorEnv`` would score them one at a time. Otherwise it behaves exactly like ``SyncVectorEnv`` with
next-step autoreset on the same seeds: same observations, rewards (up to the scorer's batching arithmetic),
terminations and infos.

With ``autoreset_mode="disabled"`` a sub-environment whose episode has ended stays idle until ``reset`` (with a
``reset_mask``) restarts it: its actions are ignored and it returns its last observation, reward 0 and no
termination. Agents that sample a batch of episodes in lockstep (one key/value cache for the batch) use this, so
a row that ends early neither starts a new episode nor gets scored again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from textgym.envs.text_env import TextGenerationEnv
from textgym.error import InvalidActionError


class TextGenerationVectorEnv(VectorEnv):
    """``num_envs`` text-generation environments stepped together, with batched scoring.

    Args:
        num_envs: Number of sub-environments.
        autoreset_mode: ``"next_step"`` (Gymnasium's default) or ``"disabled"`` (ended sub-environments stay idle
            until reset; see the module docstring).
        **kwargs: Arguments of :class:`TextGenerationEnv`, the same for every sub-environment.
    """

    def __init__(self, num_envs: int = 1, autoreset_mode: str | AutoresetMode = "next_step", **kwargs: Any) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")
        modes = {"next_step": AutoresetMode.NEXT_STEP, "disabled": AutoresetMode.DISABLED}
        mode = modes.get(autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode)
        if mode is None:
            raise ValueError(f"autoreset_mode must be one of {sorted(modes)}, got {autoreset_mode!r}.")
        self.envs = [TextGenerationEnv(**kwargs) for _ in range(num_envs)]
        self.num_envs = num_envs
        first = self.envs[0]
        self.render_mode = first.render_mode
        self.metadata = {**first.metadata, "autoreset_mode": mode}
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = create_empty_array(self.single_observation_space, num_envs)
        self._env_obs: list[Any] = [None] * num_envs
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Resets the sub-environments selected by ``options["reset_mask"]`` (all by default).

        Args:
            seed: ``None``, an int (sub-environment ``i`` gets ``seed + i``) or a list of one seed each.
            options: Passed to every sub-environment's ``reset``; may hold a boolean ``reset_mask``, and a
                ``prompt_index`` that is a list (one index per sub-environment) instead of one index for all.
        """
        seeds = self._seeds(seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", np.ones(self.num_envs, dtype=np.bool_))
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise TypeError(f"options['reset_mask'] must be a numpy bool array, got {type(mask).__name__}.")
        if mask.shape != (self.num_envs,) or not mask.any():
            raise ValueError(
                f"options['reset_mask'] must have shape ({self.num_envs},) and at least one True value, got {mask}."
            )
        if any(obs is None for obs in self._env_obs) and not mask.all():
            raise ValueError("The first reset must reset every sub-environment: drop reset_mask or make it all True.")
        per_row = options.pop("prompt_index") if isinstance(options.get("prompt_index"), (list, np.ndarray)) else None
        if per_row is not None and len(per_row) != self.num_envs:
            raise ValueError(f"A list of prompt indices needs one per sub-environment ({self.num_envs}).")
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask):
            row_options = options if per_row is None else {**options, "prompt_index": int(per_row[i])}
            self._env_obs[i], info = self.envs[i].reset(seed=seeds[i], options=row_options or None)
            self._autoreset[i] = False
            infos = self._add_info(infos, info, i)
        return self._batch(), infos

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every sub-environment; those that ended earlier are reset (next-step) or stay idle (disabled)."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise InvalidActionError(
                f"Expected one token id per sub-environment, an array of shape ({self.num_envs},); "
                f"got shape {actions.shape}."
            )
        for i, env in enumerate(self.envs):  # Validate all first, so a bad action leaves no env half-stepped.
            if not self._autoreset[i]:
                env.validate_action(actions[i])
        ended = [i for i, env in enumerate(self.envs) if not self._autoreset[i] and env.advance(actions[i])]
        score_of: dict[int, float] = {}
        if ended:
            items = [self.envs[i].item for i in ended]
            scores = self.envs[0].scorer(items, [self.envs[i].completion for i in ended])
            score_of = dict(zip(ended, scores, strict=True))

        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=np.bool_)
        truncations = np.zeros(self.num_envs, dtype=np.bool_)
        infos: dict[str, Any] = {}
        idle = self._autoreset & (self.metadata["autoreset_mode"] == AutoresetMode.DISABLED)
        for i, env in enumerate(self.envs):
            if idle[i]:  # ended earlier, waits for reset: last observation, reward 0, no new termination
                info = {}
            elif self._autoreset[i]:
                self._env_obs[i], info = env.reset()
            elif i in score_of:
                self._env_obs[i], rewards[i], terminations[i], truncations[i], info = env.finish(score_of[i])
            else:
                self._env_obs[i], info = env._observation(), {}
            infos = self._add_info(infos, info, i)
        self._autoreset = terminations | truncations | idle
        return self._batch(), rewards, terminations, truncations, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Returns attribute ``name`` of every sub-environment, as ``SyncVectorEnv.get_attr`` does."""
        return tuple(getattr(env, name) for env in self.envs)

    def render(self) -> tuple[str | None, ...]:
        """Returns each sub-environment's rendering."""
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Closes the sub-environments."""
        for env in self.envs:
            env.close()

    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"A list of seeds needs one per sub-environment ({self.num_envs}), got {len(seed)}.")
        return list(seed)

    def _batch(self) -> dict[str, np.ndarray]:
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return {key: value.copy() for key, value in self._observations.items()}
