"""Collecting a batch of episodes from a textgym vector env with a causal-LM policy, token by token.

All rows start together from one reset and advance in lockstep with one key/value cache; a row that ends early
idles (the vector env runs with ``autoreset_mode="disabled"``) until every row has ended. Per-token rewards are
the environment's step rewards, except where a dense reward wrapper reports each token's share of the episode's
return (``info["token_rewards"]`` on the last step, in a critic's ``episode`` and ``prefix`` modes alike): there
the shares are credited to the tokens that earned them instead (the same return, each token's own share).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from textgym.agents.decode_weights import DecodeWeights
from textgym.agents.lm_policy import SharedTrunk, filter_logits
from textgym.left_padding import positions, shared_rows
from textgym.lm_compat import output_cache, select_rows, with_cache

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """One batch of finished episodes, as tensors over (rows, generated positions).

    ``context`` holds the left-padded prompts (trimmed to the longest); ``tokens`` the generated tokens, padded
    after each row's end; ``valid`` marks the real ones; ``rewards`` the per-token rewards; ``support`` the
    sampling support of each step (None without top-k / top-p); ``trunk`` the shared frozen layers' output at the
    positions of :attr:`inputs` (None without a shared trunk); ``terminated`` which episodes ended at
    end-of-sequence rather than at the length limit (``info["length_limit"]``). With ``collect(behaviour=True)``,
    ``behaviour_logprobs`` holds each token's log-probability under the distribution it was drawn from and
    ``last_hidden`` the model's last hidden state at the position that predicted it (the sampler's own passes:
    what a scoring pass over the batch would compute, up to float rounding); ``policy_version`` is the agent's
    :attr:`~textgym.agents.lm_agent.LMAgent.policy_version` when it sampled the batch. Tensors live on the model's
    device.
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
    trunk: torch.Tensor | None = None
    terminated: np.ndarray | None = None
    behaviour_logprobs: torch.Tensor | None = None
    last_hidden: torch.Tensor | None = None
    policy_version: int | None = None

    @property
    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + generated tokens and their attention mask (generated padding masked out)."""
        ids = torch.cat([self.context_ids, self.tokens], dim=1)
        mask = torch.cat([self.context_mask, self.valid.long()], dim=1)
        return ids, mask

    @property
    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:attr:`sequences` without the last column: its last ``length`` positions predict the generated tokens."""
        ids, mask = self.sequences
        return ids[:, :-1], mask[:, :-1]

    @property
    def length(self) -> int:
        """Generated positions (the longest episode's length)."""
        return self.tokens.shape[1]

    @property
    def start(self) -> int:
        """Index of the first generated position in :attr:`sequences`."""
        return self.context_ids.shape[1]

    def rows(self, index: torch.Tensor) -> Batch:
        """The sub-batch of the given rows (tensors only; used for minibatches)."""
        cpu = index.cpu().numpy()
        index = index.to(self.tokens.device)
        return Batch(
            self.context_ids[index],
            self.context_mask[index],
            self.tokens[index],
            self.valid[index],
            self.rewards[index],
            None if self.support is None else self.support[index],
            self.extrinsic[cpu],
            self.critic_reward[cpu],
            [],
            [],
            trunk=None if self.trunk is None else self.trunk[index],
            terminated=None if self.terminated is None else self.terminated[cpu],
            behaviour_logprobs=None if self.behaviour_logprobs is None else self.behaviour_logprobs[index],
            last_hidden=None if self.last_hidden is None else self.last_hidden[index],
            policy_version=self.policy_version,
        )


def row_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Row ``i``'s entries of a vector env's info dict (nested dicts included)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, dtype=bool))[i]:
            continue
        out[key] = row_info(value, i) if isinstance(value, dict) else value[i]
    return out


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
    trunk: SharedTrunk | None = None,
    decode: DecodeWeights | None = None,
    share_prompts: bool = True,
    behaviour: bool = False,
) -> Batch:
    """Runs one episode in every row of ``envs`` (reset with ``seeds``) and returns the batch.

    Args:
        envs: A textgym vector env with ``autoreset_mode="disabled"``.
        model: The causal LM that samples (a policy's ``lm``), used read-only; the batch's tensors go to its device.
        generator: The source of all sampling randomness (a CPU generator: tokens are drawn on the CPU, so a
            seed gives the same draws from the same probabilities on every device).
        seeds: One reset seed per row.
        temperature: Softmax temperature of sampling.
        top_k: Keep the ``top_k`` most likely tokens (0 keeps all); the support is then recorded per step.
        top_p: Nucleus sampling threshold (1 keeps all); the support is then recorded per step.
        credit_token_rewards: Credit each finished episode's ``info["token_rewards"]`` (a dense reward wrapper's
            per-token shares) to the tokens that earned them, in place of the step rewards. The shares sum to the
            episode's return in both of the critic's modes, so the return is unchanged; in ``prefix`` mode this
            moves each clause's reward from its boundary token onto the clause's own tokens, as ``episode`` mode
            does. Shares that do not sum to the return are not credited (logged).
        options: Reset options (e.g. ``{"prompt_index": [...]}``, one prompt per row).
        trunk: Record the shared frozen layers' output while sampling (``Batch.trunk``), so later passes skip them.
        decode: Run the sampler's forward passes with these weight copies laid out for few rows (faster on a CPU, see
            :mod:`textgym.agents.decode_weights`); the env's scorer and critic run as they are.
        share_prompts: Run the first pass once per distinct prompt and copy its cache, logits and trunk states to
            the rows that repeat it (a group agent's batch; see :mod:`textgym.agents.shared_prompts`). The same
            distribution up to float rounding.
        behaviour: Keep each token's sampling log-probability and the last hidden state before it
            (``Batch.behaviour_logprobs``, ``Batch.last_hidden``), so that an update needs no scoring pass.
    """
    num = envs.num_envs
    device = next(model.parameters()).device
    vocab = envs.single_action_space.n
    max_new = int(envs.get_attr("max_new_tokens")[0])
    obs, _ = envs.reset(seed=seeds, options=options)
    mask = torch.as_tensor(obs["attention_mask"])
    first = int(mask.any(0).long().argmax())  # drop the columns that are padding in every row
    context_ids = torch.as_tensor(obs["input_ids"])[:, first:].to(device)
    context_mask = mask[:, first:].to(device)
    pad = int(envs.get_attr("pad_token_id")[0])

    tokens = torch.full((num, max_new), pad, dtype=torch.long)
    valid = torch.zeros((num, max_new), dtype=torch.bool)
    rewards = torch.zeros((num, max_new))
    restricted = top_k > 0 or top_p < 1
    support = torch.zeros((num, max_new, vocab), dtype=torch.bool, device=device) if restricted else None
    extrinsic, critic_reward = np.zeros(num), np.zeros(num)
    terminated = np.zeros(num, dtype=bool)
    completions, prompts, infos = [""] * num, [""] * num, [{} for _ in range(num)]
    active = np.ones(num, dtype=bool)
    drawn = torch.zeros((num, max_new), device=device) if behaviour else None
    hidden = (
        torch.zeros((num, max_new, model.config.get_text_config().hidden_size), device=device) if behaviour else None
    )

    chunks: list[torch.Tensor] = []
    installed = contextlib.ExitStack()  # the decode layers stay in place, switched on for the sampler's passes
    if decode is not None:
        decode.forget_trainable()  # the policy may have trained since the last batch
        installed.enter_context(decode.installed(model))

    def forward(**kwargs):
        with contextlib.ExitStack() as stack:
            if trunk is not None:
                stack.enter_context(trunk.recording(model, chunks))
            if decode is not None:
                stack.enter_context(decode.switched_on())
            return model(use_cache=True, output_hidden_states=behaviour, **kwargs)

    with installed:
        attention = context_mask.clone()
        last = torch.tensor([attention.shape[1] - 1], device=device)  # an index, not a count: see causal_lm_forward
        repeats = shared_rows(context_ids, context_mask) if share_prompts else None
        heads = slice(None) if repeats is None else repeats[0]
        out = forward(
            input_ids=context_ids[heads],
            attention_mask=attention[heads],
            position_ids=positions(attention[heads]),
            logits_to_keep=last,
        )
        last_logits, cache = out.logits[:, -1], output_cache(out)
        last_state = out.hidden_states[-1][:, -1] if behaviour else None
        if repeats is not None:  # every row gets its prompt's pass
            inverse = repeats[1]
            last_logits, cache = last_logits[inverse], select_rows(cache, inverse)
            last_state = None if last_state is None else last_state[inverse]
            if chunks:
                chunks[-1] = chunks[-1][inverse]
        for t in range(max_new):
            logits = filter_logits(last_logits[:, :vocab], temperature, top_k, top_p)
            if support is not None:
                support[:, t] = torch.isfinite(logits)
            actions = sample(logits.softmax(-1).cpu(), generator)
            if behaviour:  # as token_logprobs computes it from a scoring pass's logits
                drawn[:, t] = logits.float().log_softmax(-1).gather(-1, actions.to(device).view(-1, 1)).squeeze(-1)
                hidden[:, t] = last_state
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
                terminated[i] = not info.get("length_limit", False)  # ended at end-of-sequence
                if credit_token_rewards and "token_rewards" in info:
                    _credit(rewards, i, info["token_rewards"])
                active[i] = False
            if not active.any():
                break
            attention = torch.cat([attention, torch.ones((num, 1), dtype=attention.dtype, device=device)], dim=1)
            out = forward(
                input_ids=actions.view(-1, 1).to(device),
                attention_mask=attention,
                position_ids=attention.sum(-1, keepdim=True) - 1,
                **with_cache(model, cache),
            )
            last_logits, cache = out.logits[:, -1], output_cache(out)
            last_state = out.hidden_states[-1][:, -1] if behaviour else None
    length = int(valid.sum(1).max())
    trunk_states = torch.cat(chunks, dim=1)[:, : context_ids.shape[1] + length - 1] if chunks else None
    return Batch(
        context_ids,
        context_mask,
        tokens[:, :length].to(device),
        valid[:, :length].to(device),
        rewards[:, :length].to(device),
        None if support is None else support[:, :length],
        extrinsic,
        critic_reward,
        completions,
        prompts,
        infos,
        trunk=trunk_states,
        terminated=terminated,
        behaviour_logprobs=None if drawn is None else drawn[:, :length] * valid[:, :length].to(device),
        last_hidden=None if hidden is None else hidden[:, :length],
    )


def sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row from ``probs`` (rows, vocabulary) by inverse-CDF sampling with one uniform draw per row.

    The same distribution as ``torch.multinomial`` at a tenth of its cost over a 49k vocabulary. Tokens of
    probability zero (outside a top-k / top-p support) are never drawn: the search takes the first cumulative sum
    strictly above the draw.
    """
    cumulative = probs.double().cumsum(-1)
    draw = torch.rand((probs.shape[0], 1), generator=generator, dtype=torch.float64) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, draw, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def _credit(rewards: torch.Tensor, row: int, token_rewards: Any) -> None:
    """Replaces row ``row``'s step rewards by its per-token shares when they sum to the same return."""
    share = torch.as_tensor(token_rewards, dtype=torch.float32)
    if not torch.isclose(share.sum(), rewards[row].sum(), atol=1e-4):
        log.warning(
            "token_rewards sum %.4f but the episode's step rewards %.4f; keeping the step rewards.",
            float(share.sum()),
            float(rewards[row].sum()),
        )
        return
    rewards[row] = 0.0
    rewards[row, : len(share)] = share
