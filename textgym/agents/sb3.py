"""A causal LM as a stable-baselines3 policy, and the callback that credits a critic's per-token rewards.

``TextGymLMPolicy`` puts a causal LM inside SB3's PPO and A2C: the observation (the left-padded prompt and the
tokens so far) goes through the LM; the logits of its last position are the action distribution and a value head
on the last hidden state gives the value::

    from stable_baselines3 import PPO
    from textgym.agents.sb3 import TextGymLMPolicy, TokenRewardCredit

    env = gym.make("TextSentiment-critic-v0")
    model = PPO(TextGymLMPolicy, env, n_steps=64, batch_size=32, learning_rate=1e-5,
                policy_kwargs={"model": "smollm2-135m-instruct", "freeze_layers": 18})
    model.learn(2048, callback=TokenRewardCredit())

SB3 recomputes the whole observation at every step (no key/value cache), so it is slower per token than textgym's
LM-PPO; it has no KL penalty to a reference model either. In a critic's ``episode`` mode the whole episode's reward
arrives on its last step; :class:`TokenRewardCredit` moves each token's share of ``info["token_rewards"]`` onto the
rollout-buffer step of the token that earned it, before advantages are computed. In ``prefix`` mode the rewards
are dense already and nothing is needed.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy

from textgym.agents.lm_policy import LMPolicy, resolve_frozen_layers
from textgym.devices import resolve_dtype
from textgym.left_padding import positions
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm

log = logging.getLogger(__name__)


class TextGymLMPolicy(ActorCriticPolicy):
    """An SB3 actor-critic policy whose actor is a causal LM and whose critic is a value head on it.

    Args:
        observation_space: The env's Dict of ``input_ids`` and ``attention_mask``.
        action_space: ``Discrete(vocabulary size)``.
        lr_schedule: SB3's learning-rate schedule.
        model: The LM: a named model, folder or hub id (the env's tokenizer must match it).
        freeze_layers: Embeddings and this many lowest layers are frozen (None: 60 % of them).
        dtype: The LM's weights, ``"float32"`` or ``"bfloat16"`` (the value head stays float32).
        **kwargs: Other ActorCriticPolicy arguments (``optimizer_class``, ``optimizer_kwargs``).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule,
        model: str = DEFAULT_POLICY_MODEL,
        freeze_layers: int | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> None:
        keys = set(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else set()
        if not isinstance(action_space, spaces.Discrete) or keys != {"input_ids", "attention_mask"}:
            raise ValueError("TextGymLMPolicy needs a textgym env: Dict(input_ids, attention_mask) -> Discrete.")
        self.model_name, self.freeze_layers, self.dtype = model, freeze_layers, dtype
        kwargs.pop("net_arch", None)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "model": self.model_name,
            "freeze_layers": self.freeze_layers,
            "dtype": self.dtype,
        }

    def _build(self, lr_schedule) -> None:
        reference = load_causal_lm(self.model_name)
        dtype = resolve_dtype(self.dtype)
        if dtype != torch.float32:  # a copy: the frozen layers are shared, and the loaded model is the process's
            reference = copy.deepcopy(reference).to(dtype)
        self.net = LMPolicy(reference, resolve_frozen_layers(reference, self.freeze_layers))
        self.action_dist = CategoricalDistribution(int(self.action_space.n))
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

    def set_training_mode(self, mode: bool) -> None:
        """Keeps the LM in eval mode (no dropout): sampling and updates must see the same function."""
        super().set_training_mode(mode)
        self.net.lm.eval()

    def _outputs(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = obs["input_ids"].long()
        mask = obs["attention_mask"].long()
        first = int(mask.any(0).long().argmax())  # drop the columns that are padding in every row
        ids, mask = ids[:, first:], mask[:, first:]
        out = self.net.lm(input_ids=ids, attention_mask=mask, position_ids=positions(mask), output_hidden_states=True)
        logits = out.logits[:, -1, : int(self.action_space.n)].float()
        values = self.net.value_head(out.hidden_states[-1][:, -1].float())
        return logits, values

    def forward(self, obs, deterministic: bool = False):
        """Samples (or picks) tokens; returns actions, values and log-probabilities."""
        logits, values = self._outputs(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs, actions: torch.Tensor):
        """Values, log-probabilities and entropy of given actions (used by the update)."""
        logits, values = self._outputs(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs):
        """The action distribution of observations."""
        return self.action_dist.proba_distribution(action_logits=self._outputs(obs)[0])

    def predict_values(self, obs) -> torch.Tensor:
        """The value estimates of observations."""
        return self._outputs(obs)[1]

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)


class TokenRewardCredit(BaseCallback):
    """Credits a critic's ``episode``-mode ``info["token_rewards"]`` to each token's own rollout-buffer step.

    When an episode ends, the shares of its tokens that are still in the current rollout buffer replace the
    rewards stored for those steps (0 before the last step in ``episode`` mode), and the last step gets its own
    share instead of the whole total. Tokens of an episode that began in an earlier rollout (already trained on)
    cannot be rewritten: their shares go to the episode's earliest token still in the buffer, so every episode's
    return is unchanged. Those carried episodes are counted in :attr:`carried`. Envs in ``prefix`` mode (or
    without a critic) are left alone.

    Use with an unnormalised reward (no ``VecNormalize(norm_reward=True)``), as its sums must match.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.positions: list[list[int]] = []
        self.credit: np.ndarray | None = None
        self.credited = 0
        self.carried = 0

    def _on_training_start(self) -> None:
        env = self.training_env
        self.positions = [[] for _ in range(env.num_envs)]
        try:
            modes = env.get_attr("mode")
        except AttributeError:
            modes = [None] * env.num_envs
        self.credit = np.array([mode == "episode" for mode in modes])
        if not self.credit.any():
            log.info("TokenRewardCredit: no env pays critic rewards in episode mode; nothing to credit.")

    def _on_rollout_start(self) -> None:
        self.positions = [[] for _ in self.positions]  # the previous buffer has been trained on and reset

    def _on_step(self) -> bool:
        buffer = self.locals["rollout_buffer"]
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        for i, done in enumerate(dones):
            self.positions[i].append(buffer.pos)  # where this step is about to be stored
            if not done:
                continue
            shares = infos[i].get("token_rewards")
            if self.credit[i] and shares is not None:
                self._credit(buffer, rewards, i, np.asarray(shares, dtype=np.float64))
            self.positions[i] = []
        return True

    def _credit(self, buffer, rewards: np.ndarray, i: int, shares: np.ndarray) -> None:
        positions = self.positions[i]
        if not np.isclose(shares.sum(), rewards[i], atol=1e-5):
            log.warning("token_rewards sum %.4f != step reward %.4f; not credited.", shares.sum(), rewards[i])
            return
        gone = len(shares) - len(positions)
        if gone < 0:
            log.warning("token_rewards has %d entries for %d steps; not credited.", len(shares), len(positions))
            return
        own = shares[max(gone, 0) :].copy()
        if gone > 0:
            own[0] += shares[:gone].sum()
            self.carried += 1
        for position, share in zip(positions[:-1], own[:-1], strict=True):
            buffer.rewards[position, i] = share
        rewards[i] = own[-1]  # the current step is added to the buffer after this callback
        self.credited += 1
