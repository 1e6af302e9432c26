"""Collecting a batch of episodes from a textgym vector env with a causal-LM policy, token by token.

All rows start together from one reset and advance in lockstep with one key/value cache; a row that ends early
idles (the vector env runs with ``autoreset_mode="disabled"``) until every row has ended. Per-token rewards are
the environment's step rewards, except that a critic's ``episode`` mode pays a whole episode on its last step:
there the per-token rewards of ``info["token_rewards"]`` are credited to the tokens that earned them instead (the
same total, each token's own share).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from textgym.agents.lm_policy import filter_logits
from textgym.left_padding import positions


@dataclass
class Batch:
    """One batch of finished episodes, as tensors over (rows, generated positions).

    ``context`` holds the left-padded prompts (trimmed to the longest); ``tokens`` the generated tokens, padded
    after each row's end; ``valid`` marks the real ones; ``rewards`` the per-token rewards; ``support`` the
    sampling support of each step (None without top-k / top-p).
    """

    context_ids: torch.Tensor
    context_mask: torch.Tensor
    tokens: torch.Tensor
    valid: torch.Tensor
    rewards: torch.Tensor
    support: torch.Tensor | None
    extrinsic: np.ndarray
    critic_reward: np.ndarray
    completions: list[str]
    prompts: list[str]
    infos: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + generated tokens and their attention mask (generated padding masked out)."""
        ids = torch.cat([self.context_ids, self.tokens], dim=1)
        mask = torch.cat([self.context_mask, self.valid.long()], dim=1)
        return ids, mask

    @property
    def start(self) -> int:
        """Index of the first generated position in :attr:`sequences`."""
        return self.context_ids.shape[1]

    def rows(self, index: torch.Tensor) -> Batch:
        """The sub-batch of the given rows (tensors only; used for minibatches)."""
        return Batch(
            self.context_ids[index],
            self.context_mask[index],
            self.tokens[index],
            self.valid[index],
            self.rewards[index],
            None if self.support is None else self.support[index],
            self.extrinsic[index.numpy()],
            self.critic_reward[index.numpy()],
            [],
            [],
        )


def row_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Row ``i``'s entries of a vector env's info dict (nested dicts included)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, dtype=bool))[i]:
            continue
        out[key] = row_info(value, i) if isinstance(value, dict) else value[i]
    return out


def episode_credit(envs: Any) -> bool:
    """Whether the env pays critic rewards in ``episode`` mode (so ``info["token_rewards"]`` is to be credited)."""
    rules = getattr(envs, "rules", None)
    return rules is not None and rules.mode == "episode"


@torch.no_grad()  # not inference_mode: the batch's tensors are used in the update's autograd graph
def collect(
    envs: Any,
    model: torch.nn.Module,
    generator: torch.Generator,
    seeds: list[int],
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    credit_token_rewards: bool = True,
    options: dict[str, Any] | None = None,
) -> Batch:
    """Runs one episode in every row of ``envs`` (reset with ``seeds``) and returns the batch.

    Args:
        envs: A textgym vector env with ``autoreset_mode="disabled"``.
        model: The causal LM that samples (a policy's ``lm``), used read-only.
        generator: The source of all sampling randomness.
        seeds: One reset seed per row.
        temperature: Softmax temperature of sampling.
        top_k: Keep the ``top_k`` most likely tokens (0 keeps all); the support is then recorded per step.
        top_p: Nucleus sampling threshold (1 keeps all); the support is then recorded per step.
        credit_token_rewards: Credit ``info["token_rewards"]`` to each token in a critic's ``episode`` mode.
        options: Reset options (e.g. ``{"prompt_index": [...]}``, one prompt per row).
    """
    num = envs.num_envs
    vocab = envs.single_action_space.n
    max_new = int(envs.get_attr("max_new_tokens")[0])
    obs, _ = envs.reset(seed=seeds, options=options)
    mask = torch.as_tensor(obs["attention_mask"])
    first = int(mask.any(0).long().argmax())  # drop the columns that are padding in every row
    context_ids, context_mask = torch.as_tensor(obs["input_ids"])[:, first:], mask[:, first:]
    pad = int(envs.get_attr("pad_token_id")[0])
    credit = credit_token_rewards and episode_credit(envs)

    tokens = torch.full((num, max_new), pad, dtype=torch.long)
    valid = torch.zeros((num, max_new), dtype=torch.bool)
    rewards = torch.zeros((num, max_new))
    restricted = top_k > 0 or top_p < 1
    support = torch.zeros((num, max_new, vocab), dtype=torch.bool) if restricted else None
    extrinsic, critic_reward = np.zeros(num), np.zeros(num)
    completions, prompts, infos = [""] * num, [""] * num, [{} for _ in range(num)]
    active = np.ones(num, dtype=bool)

    attention = context_mask.clone()
    out = model(
        input_ids=context_ids,
        attention_mask=attention,
        position_ids=positions(attention),
        use_cache=True,
        logits_to_keep=1,
    )
    for t in range(max_new):
        logits = filter_logits(out.logits[:, -1, :vocab], temperature, top_k, top_p)
        if support is not None:
            support[:, t] = torch.isfinite(logits)
        actions = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
        actions[torch.as_tensor(~active)] = pad  # idle rows ignore their action
        _, step_rewards, terminations, truncations, step_infos = envs.step(actions.numpy())
        tokens[active, t] = actions[torch.as_tensor(active)]
        valid[active, t] = True
        rewards[active, t] = torch.as_tensor(step_rewards[active], dtype=torch.float32)
        for i in np.flatnonzero((terminations | truncations) & active):
            info = row_info(step_infos, i)
            infos[i], completions[i], prompts[i] = info, info["completion"], info["prompt"]
            extrinsic[i] = info["extrinsic_score"]
            critic_reward[i] = info.get("critic_reward", 0.0)
            if credit and "token_rewards" in info:
                share = torch.as_tensor(info["token_rewards"], dtype=torch.float32)
                rewards[i, : len(share)] = share
            active[i] = False
        if not active.any():
            break
        attention = torch.cat([attention, torch.ones((num, 1), dtype=attention.dtype)], dim=1)
        out = model(
            input_ids=actions.view(-1, 1),
            attention_mask=attention,
            position_ids=attention.sum(-1, keepdim=True) - 1,
            cache=out.cache,
            use_cache=True,
        )
    length = int(valid.sum(1).max())
    return Batch(
        context_ids,
        context_mask,
        tokens[:, :length],
        valid[:, :length],
        rewards[:, :length],
        None if support is None else support[:, :length],
        extrinsic,
        critic_reward,
        completions,
        prompts,
        infos,
    )
