"""A causal LM as a stable-baselines3 policy, its rollout buffer, and the callback that credits a critic's rewards.

``TextGymLMPolicy`` puts a causal LM inside SB3's PPO and A2C: the observation (the left-padded prompt and the
tokens so far) goes through the LM; the logits of its last position are the action distribution and a value head
on the last hidden state gives the value::

    from stable_baselines3 import PPO
    from textgym.agents.sb3 import EpisodeRolloutBuffer, TextGymLMPolicy, TokenRewardCredit

    env = gym.make("TextSentiment-critic-v0")
    model = PPO(TextGymLMPolicy, env, n_steps=64, batch_size=32, learning_rate=1e-5, gamma=1.0, gae_lambda=0.95,
                rollout_buffer_class=EpisodeRolloutBuffer,
                policy_kwargs={"model": "smollm2-135m-instruct", "freeze_layers": 18})
    model.learn(2048, callback=TokenRewardCredit())

Consecutive observations of an episode extend one another by one token, and the policy uses that twice:

- **While collecting** (``forward`` under ``no_grad``, SB3's ``collect_rollouts``), it keeps a key/value cache per
  env row: a row whose observation is the previous one plus one token runs only that token through the LM; a row
  that does not (an episode start, a reset, anything else) has its prefix recomputed. The cache is dropped
  whenever the weights may have changed (``set_training_mode(True)``, which PPO's and A2C's ``train`` call first,
  and ``load_state_dict``). ``predict_values`` uses it too for a batch of the collection's shape (SB3 asks for the
  values of the observations after a rollout's last step); ``evaluate_actions`` and ``predict`` never touch it.
- **In the update** (``evaluate_actions``), the rows of a minibatch that are prefixes of one sequence share one
  forward pass over the longest of them, and each row's logits and value are read at its own position (logits
  only at the positions needed). :class:`EpisodeRolloutBuffer` makes minibatches of whole episodes (shuffled by
  episode), so that one forward serves most of an episode's steps; with SB3's default buffer (steps shuffled one
  by one) the sharing still happens, less often.

``kv_cache=False`` and ``group_prefixes=False`` (policy kwargs) switch these off: every observation is then
computed from scratch, as before (the same results, slower; ``benchmarks/sb3_throughput.py`` compares them).

The policy has no KL penalty to a reference model. In a critic's ``episode`` mode the whole episode's reward
arrives on its last step; :class:`TokenRewardCredit` moves each token's share of ``info["token_rewards"]`` onto
the rollout-buffer step of the token that earned it, before advantages are computed. In ``prefix`` mode the
rewards are dense already and nothing is needed.

On a GPU, the LM is built on the device from :func:`~textgym.models.load_causal_lm`'s copy for that device and
dtype, so SB3's ``policy.to(device)`` never moves the process's shared float32 CPU model that the env's scorers
use; a ``to()`` onto another device rebuilds the LM from that device's copy (trained weights and optimizer state
carried over) rather than moving shared tensors.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples

from textgym.agents.lm_policy import LMPolicy, resolve_frozen_layers
from textgym.agents.precision import with_float32_master
from textgym.devices import resolve_device
from textgym.left_padding import positions
from textgym.lm_compat import output_cache, with_cache
from textgym.models import DEFAULT_POLICY_MODEL, load_causal_lm

log = logging.getLogger(__name__)


@dataclass
class _Collecting:
    """The collection forward's state: the last observations and the key/value cache that covers them.

    ``cache_mask`` has one column per cached position: 1 where it holds one of the row's real tokens, 0 for
    padding and for what a row held before it restarted.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    cache: Any
    cache_mask: torch.Tensor


class TextGymLMPolicy(ActorCriticPolicy):
    """An SB3 actor-critic policy whose actor is a causal LM and whose critic is a value head on it.

    Args:
        observation_space: The env's Dict of ``input_ids`` and ``attention_mask``.
        action_space: ``Discrete(vocabulary size)``.
        lr_schedule: SB3's learning-rate schedule.
        model: The LM: a named model, folder or hub id (the env's tokenizer must match it).
        freeze_layers: Embeddings and this many lowest layers are frozen (None: 60 % of them).
        dtype: The LM's weights, ``"float32"`` or ``"bfloat16"`` (the value head stays float32; bfloat16 weights
            step through float32 master weights, :mod:`textgym.agents.precision`).
        device: Where the LM is built (``"auto"``, like SB3's default: a GPU when there is one). SB3 then moves the
            policy to its own ``device``; a move elsewhere rebuilds the LM there, so this only saves a rebuild.
        kv_cache: While collecting, run only each observation's new token, with a key/value cache per env row.
        group_prefixes: In updates, one forward per sequence that other rows of the minibatch are prefixes of.
        **kwargs: Other ActorCriticPolicy arguments (``optimizer_class``, ``optimizer_kwargs``). SB3's Adam runs
            fused (one kernel a step) unless ``optimizer_kwargs`` sets ``fused`` or ``foreach``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule,
        model: str = DEFAULT_POLICY_MODEL,
        freeze_layers: int | None = None,
        dtype: str = "float32",
        device: str = "auto",
        kv_cache: bool = True,
        group_prefixes: bool = True,
        **kwargs: Any,
    ) -> None:
        keys = set(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else set()
        if not isinstance(action_space, spaces.Discrete) or keys != {"input_ids", "attention_mask"}:
            raise ValueError("TextGymLMPolicy needs a textgym env: Dict(input_ids, attention_mask) -> Discrete.")
        self.model_name, self.freeze_layers, self.dtype, self.build_device = model, freeze_layers, dtype, device
        self.kv_cache, self.group_prefixes = kv_cache, group_prefixes
        self._collecting: _Collecting | None = None
        kwargs.pop("net_arch", None)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "model": self.model_name,
            "freeze_layers": self.freeze_layers,
            "dtype": self.dtype,
            "kv_cache": self.kv_cache,
            "group_prefixes": self.group_prefixes,
        }

    def _build(self, lr_schedule) -> None:
        self.net = self._new_net(resolve_device(self.build_device))
        self.action_dist = CategoricalDistribution(int(self.action_space.n))
        self.optimizer = self._new_optimizer(lr_schedule(1))

    def _new_net(self, device: torch.device) -> LMPolicy:
        # load_causal_lm gives the process's shared model on the CPU in float32 and a copy of it on any other
        # device or dtype: the frozen layers the policy shares with it never need to move.
        reference = load_causal_lm(self.model_name, str(device), self.dtype)
        return LMPolicy(reference, resolve_frozen_layers(reference, self.freeze_layers))

    def _new_optimizer(self, learning_rate: float) -> torch.optim.Optimizer:
        trainable = [p for p in self.parameters() if p.requires_grad]
        kwargs = dict(self.optimizer_kwargs)
        if self.optimizer_class in (torch.optim.Adam, torch.optim.AdamW) and not {"fused", "foreach"} & set(kwargs):
            kwargs["fused"] = True  # the same steps, in one kernel: about 3x faster than the default on a CPU
        # bfloat16 weights step through float32 master weights (textgym.agents.precision); float32 ones directly.
        return with_float32_master(self.optimizer_class)(trainable, lr=learning_rate, **kwargs)

    def to(self, *args, **kwargs) -> TextGymLMPolicy:
        """Moves the policy; onto another device, the LM is rebuilt there instead (its trained weights kept).

        Moving it tensor by tensor would move the frozen layers it shares with a model other code uses (the float32
        CPU model also serves the env's scorers). The dtype is the ``dtype`` argument's and cannot be changed here.
        """
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is not None:
            raise ValueError(f"TextGymLMPolicy keeps its dtype ({self.dtype}); build it with dtype=... instead.")
        if device is not None:
            device = torch.device(device)
            if device.type == "cuda" and device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
            if device != next(self.net.lm.parameters()).device:
                self._rebuild(device)
        return super().to(*args, **kwargs)

    def cuda(self, device: int | torch.device | None = None) -> TextGymLMPolicy:
        """Moves the policy to a GPU, as :meth:`to` does."""
        if not isinstance(device, torch.device):
            device = torch.device("cuda") if device is None else torch.device("cuda", device)
        return self.to(device)

    def cpu(self) -> TextGymLMPolicy:
        """Moves the policy to the CPU, as :meth:`to` does."""
        return self.to("cpu")

    def _rebuild(self, device: torch.device) -> None:
        state, optimizer_state = self.net.trainable_state(), self.optimizer.state_dict()
        self.net = self._new_net(device)
        self.net.load_state_dict(state, strict=False)  # the rest is the frozen layers, the same in every copy
        self.optimizer = self._new_optimizer(optimizer_state["param_groups"][0]["lr"])
        self.optimizer.load_state_dict(optimizer_state)
        self._collecting = None

    def set_training_mode(self, mode: bool) -> None:
        """Keeps the LM in eval mode (no dropout); training mode drops the collection cache (weights will change)."""
        super().set_training_mode(mode)
        self.net.lm.eval()
        if mode:
            self._collecting = None

    def load_state_dict(self, *args, **kwargs):
        """Loads weights (and drops the collection cache, computed with the old ones)."""
        self._collecting = None
        return super().load_state_dict(*args, **kwargs)

    def _lm(self, ids: torch.Tensor, mask: torch.Tensor, keep: int, **kwargs):
        return self.net.lm(
            input_ids=ids, attention_mask=mask, position_ids=positions(mask), logits_to_keep=keep,
            output_hidden_states=True, **kwargs,
        )  # fmt: skip

    def _read(self, out, rows: torch.Tensor | slice, back: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values at ``back`` positions before the last one, in ``rows`` of a forward's output."""
        logits = out.logits[rows, out.logits.shape[1] - 1 - back, : int(self.action_space.n)].float()
        hidden = out.hidden_states[-1]
        return logits, self.net.value_head(hidden[rows, hidden.shape[1] - 1 - back].float())

    def _outputs(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values of each observation, computed from scratch."""
        ids, mask = _trimmed(obs["input_ids"].long(), obs["attention_mask"].long())
        return self._read(self._lm(ids, mask, keep=1), slice(None), 0)

    def _shared_outputs(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`_outputs`, with one forward per sequence that other rows are prefixes of."""
        if not self.group_prefixes:
            return self._outputs(obs)
        ids, mask = obs["input_ids"].long(), obs["attention_mask"].long()
        heads, group, back = prefix_groups(ids, mask)
        head_ids, head_mask = _trimmed(ids[heads], mask[heads])
        out = self._lm(head_ids, head_mask, keep=int(back.max()) + 1)
        return self._read(out, group.to(ids.device), back.to(ids.device))

    def _collect_outputs(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`_outputs`, with a key/value cache per row.

        A row that extends its last observation by one token runs only that token through the cache; the others
        (episode starts, anything else) have their prefix recomputed, and their cache rows replaced. Where the
        model's cache cannot be edited row by row (sliding windows, quantised layers ...), a step in which some row
        restarts recomputes every row.
        """
        ids, mask = obs["input_ids"].long(), obs["attention_mask"].long()
        last = self._collecting
        if last is None or last.ids.shape != ids.shape:
            return self._start(ids, mask)
        extends = (
            (mask[:, -1] == 1)
            & (last.mask[:, 0] == 0)
            & (mask[:, :-1] == last.mask[:, 1:]).all(1)
            & ((ids[:, :-1] == last.ids[:, 1:]) | (mask[:, :-1] == 0)).all(1)
        )
        if not extends.any() or (not extends.all() and _editable_layers(last.cache) is None):
            return self._start(ids, mask)
        # Every row's newest token through the cache (masked out, and its output unused, where a row restarts).
        attention = torch.cat([last.cache_mask, extends.long()[:, None]], dim=1)
        out = self.net.lm(
            input_ids=ids[:, -1:], attention_mask=attention, position_ids=positions(mask)[:, -1:],
            logits_to_keep=1, output_hidden_states=True, use_cache=True, **with_cache(self.net.lm, last.cache),
        )  # fmt: skip
        logits, values = self._read(out, slice(None), 0)
        cache = output_cache(out)
        if not extends.all():
            restarts = ~extends
            fresh_ids, fresh_mask = _trimmed(ids[restarts], mask[restarts])
            fresh = self._lm(fresh_ids, fresh_mask, keep=1, use_cache=True)
            logits[restarts], values[restarts] = self._read(fresh, slice(None), 0)
            fresh_layers = _editable_layers(output_cache(fresh))
            attention = _splice(_editable_layers(cache), attention, fresh_layers, fresh_mask, restarts)
        self._collecting = _Collecting(ids, mask, cache, attention)
        return logits, values

    def _start(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trimmed_ids, trimmed_mask = _trimmed(ids, mask)
        out = self._lm(trimmed_ids, trimmed_mask, keep=1, use_cache=True)
        self._collecting = _Collecting(ids, mask, output_cache(out), trimmed_mask)
        return self._read(out, slice(None), 0)

    def forward(self, obs, deterministic: bool = False):
        """Samples (or picks) tokens; returns actions, values and log-probabilities.

        Under ``no_grad`` (SB3's collection) it uses the collection cache (see the module docstring).
        """
        if self.kv_cache and not torch.is_grad_enabled():
            logits, values = self._collect_outputs(obs)
        else:
            logits, values = self._outputs(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs, actions: torch.Tensor):
        """Values, log-probabilities and entropy of given actions (used by the update)."""
        logits, values = self._shared_outputs(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs):
        """The action distribution of observations."""
        return self.action_dist.proba_distribution(action_logits=self._shared_outputs(obs)[0])

    def predict_values(self, obs) -> torch.Tensor:
        """The value estimates of observations.

        Under ``no_grad`` and for a batch of the collection's shape, through the collection cache: SB3 asks for the
        values of the observations that follow a rollout's last step, one token past the cached ones.
        """
        last = self._collecting
        if self.kv_cache and not torch.is_grad_enabled() and last and last.ids.shape == obs["input_ids"].shape:
            return self._collect_outputs(obs)[1]
        return self._shared_outputs(obs)[1]

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)


def _editable_layers(cache) -> list | None:
    """The layers of a growing full-attention key/value cache, whose ``keys``/``values`` can be edited by row.

    None for any other cache (sliding windows, quantised or static layers, transformers before 4.56).
    """
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None
    layers = getattr(cache, "layers", None)
    return list(layers) if layers and all(type(layer) is DynamicLayer for layer in layers) else None


def _splice(
    layers: list, mask: torch.Tensor, fresh: list, fresh_mask: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """Replaces the cache of ``rows`` by ``fresh`` (their recomputed prefixes), right-aligned; returns the new mask.

    Columns that no row needs any more (all masked) are dropped from the left.
    """
    width = max(mask.shape[1], fresh_mask.shape[1])
    index = rows.nonzero().squeeze(1)
    mask = torch.nn.functional.pad(mask, (width - mask.shape[1], 0))
    mask[index] = 0
    mask[index, width - fresh_mask.shape[1] :] = fresh_mask
    first = int(mask.any(0).long().argmax())
    for layer, new in zip(layers, fresh, strict=True):
        for name in ("keys", "values"):
            tensor = torch.nn.functional.pad(getattr(layer, name), (0, 0, width - getattr(layer, name).shape[-2], 0))
            tensor[index] = 0
            tensor[index, :, width - fresh_mask.shape[1] :] = getattr(new, name)
            setattr(layer, name, tensor[:, :, first:])
    return mask[:, first:]


def _trimmed(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded rows without the columns that are padding in every row."""
    first = int(mask.any(0).long().argmax())
    return ids[:, first:], mask[:, first:]


def prefix_groups(ids: torch.Tensor, mask: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Groups left-padded rows whose real tokens are a prefix of another row's.

    Returns:
        ``heads``, the rows whose sequences cover all the others (one forward each); ``group``, for each row, the
        index in ``heads`` of a head it is a prefix of; ``back``, for each row, how many tokens that head runs on
        past it (0 for the heads themselves).
    """
    ids_, lengths = ids.cpu().numpy(), mask.sum(1).cpu().numpy()
    width = ids_.shape[1]
    heads: list[int] = []
    group, back = np.zeros(len(ids_), dtype=np.int64), np.zeros(len(ids_), dtype=np.int64)
    for row in np.argsort(-lengths, kind="stable").tolist():
        n = lengths[row]
        tokens = ids_[row, width - n :]
        found = next(
            (g for g, head in enumerate(heads) if np.array_equal(ids_[head, width - lengths[head] :][:n], tokens)), None
        )
        if found is None:
            found = len(heads)
            heads.append(row)
        group[row], back[row] = found, lengths[heads[found]] - n
    return heads, torch.from_numpy(group), torch.from_numpy(back)


class EpisodeRolloutBuffer(DictRolloutBuffer):
    """SB3's rollout buffer for Dict observations, with minibatches of whole episodes instead of single steps.

    ``get(batch_size)`` shuffles the rollout's episodes (with ``np.random``, which SB3's ``seed`` seeds, as SB3's
    own buffer shuffles steps), lays their steps end to end in that order and cuts them into minibatches of
    ``batch_size`` steps: the same number and size of minibatches as SB3's, each holding whole episodes except
    where one straddles two minibatches. An episode is a run of one env's steps from an episode start, or from
    the rollout's first step, to the next start. With :class:`TextGymLMPolicy`, one forward pass then serves all
    of an episode's steps in a minibatch. Use it as ``PPO(..., rollout_buffer_class=EpisodeRolloutBuffer)``.
    """

    def reset(self) -> None:
        """Empties the buffer for the next rollout."""
        super().reset()
        self.episodes: list[np.ndarray] = []

    def get(self, batch_size: int | None = None) -> Generator[DictRolloutBufferSamples, None, None]:
        """Yields minibatches of ``batch_size`` steps (all steps at once when None), laid out episode by episode."""
        assert self.full, "The rollout buffer is read once it is full."
        if not self.generator_ready:
            self.episodes = self._episodes()
            for key, obs in self.observations.items():
                self.observations[key] = self.swap_and_flatten(obs)
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        indices = np.concatenate([self.episodes[i] for i in np.random.permutation(len(self.episodes))])
        size = batch_size or len(indices)
        for start in range(0, len(indices), size):
            yield self._get_samples(indices[start : start + size])

    def _episodes(self) -> list[np.ndarray]:
        """Each episode's step indices in the flattened buffer (env-major, as ``swap_and_flatten`` lays them)."""
        starts = self.episode_starts.astype(bool)
        starts[0] = True
        episodes = []
        for env in range(self.n_envs):
            bounds = [*np.flatnonzero(starts[:, env]).tolist(), self.buffer_size]
            episodes += [env * self.buffer_size + np.arange(a, b) for a, b in itertools.pairwise(bounds)]
        return episodes


class TokenRewardCredit(BaseCallback):
    """Credits a dense reward's ``episode``-mode ``info["token_rewards"]`` to each token's own rollout-buffer step.

    When an episode ends, the shares of its tokens that are still in the current rollout buffer replace the
    rewards stored for those steps (0 before the last step in ``episode`` mode), and the last step gets its own
    share instead of the whole total. Tokens of an episode that began in an earlier rollout (already trained on)
    cannot be rewritten: their shares go to the episode's earliest token still in the buffer, so every episode's
    return is unchanged. Those carried episodes are counted in :attr:`carried`. Which envs to credit is read from the
    wrappers' public ``credit_token_rewards`` (True in ``episode`` mode); envs in ``prefix`` mode, or sparse ones,
    are left alone.

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
            credit = env.get_attr("credit_token_rewards")  # the dense reward wrappers' public property
        except AttributeError:
            credit = [False] * env.num_envs
        self.credit = np.array([bool(value) for value in credit])
        if not self.credit.any():
            log.info("TokenRewardCredit: no env pays a dense reward in episode mode; nothing to credit.")

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
