"""The agents textgym can train: one :class:`AgentSpec` line each, with string entry points imported on use.

Adding an agent is one file (its config dataclass and agent class) plus one line in :data:`AGENT_SPECS`; the
command line (``textgym train --agent NAME``, one flag per config field), ``textgym bench`` and
:func:`textgym.training.train` all read this list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any

from textgym.error import SettingsError, unknown_name

LOOPS = {"lm": "textgym.training.lm:train_lm", "sb3": "textgym.training.sb3:train_sb3"}
"""The training loops: ``lm`` for textgym's own agents (``agent.step()`` per iteration), ``sb3`` for SB3's."""


@dataclass(frozen=True)
class AgentSpec:
    """A trainable agent.

    Attributes:
        name: The name users give (``--agent NAME``).
        config: ``"module:Class"`` of its settings dataclass (every field a documented, validated setting).
        agent: ``"module:Class"`` of the agent: an :class:`~textgym.agents.lm_agent.LMAgent` subclass built from
            the config (``lm`` loop), or an SB3 algorithm (``sb3`` loop).
        loop: The training loop that runs it, a key of :data:`LOOPS`.
        help: One line on the agent, shown by ``textgym train --help``.
    """

    name: str
    config: str
    agent: str
    loop: str
    help: str

    def config_class(self) -> type:
        """The config dataclass (imported now)."""
        return load(self.config)

    def agent_class(self) -> type:
        """The agent class (imported now)."""
        return load(self.agent)

    def setting_names(self) -> set[str]:
        """The names of the config's fields: the settings this agent takes."""
        return {f.name for f in fields(self.config_class())}


AGENT_SPECS = (
    AgentSpec(name="lmppo", config="textgym.agents.lm_ppo:LMPPOConfig", agent="textgym.agents.lm_ppo:LMPPO",
              loop="lm", help="LM-PPO: PPO with a value head, GAE over tokens and a KL penalty to a frozen reference"),
    AgentSpec(name="rloo", config="textgym.agents.rloo:RLOOConfig", agent="textgym.agents.rloo:RLOO",
              loop="lm", help="RLOO: REINFORCE with a leave-one-out baseline over several completions of each prompt"),
    AgentSpec(name="grpo", config="textgym.agents.grpo:GRPOConfig", agent="textgym.agents.grpo:GRPO",
              loop="lm", help="GRPO: group-normalised advantages over completions of each prompt, KL in the loss"),
    AgentSpec(name="sb3-ppo", config="textgym.training.sb3_config:SB3PPOConfig", agent="stable_baselines3:PPO",
              loop="sb3", help="stable-baselines3's PPO with textgym's LM policy (KV cache, no KL penalty)"),
    AgentSpec(name="sb3-a2c", config="textgym.training.sb3_config:SB3Config", agent="stable_baselines3:A2C",
              loop="sb3", help="stable-baselines3's A2C with textgym's LM policy (KV cache, no KL penalty)"),
)  # fmt: skip
"""Every trainable agent, in the order ``--help`` lists them."""

AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in AGENT_SPECS}
"""Agent name -> its spec (iterating gives the names)."""


def load(entry_point: str) -> Any:
    """The object a ``"module:attribute"`` string names, imported now."""
    module, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module), attribute)


def agent_spec(name: str) -> AgentSpec:
    """The spec of a registered agent, with a "Did you mean" error for unknown names."""
    try:
        return AGENTS[name]
    except KeyError:
        raise unknown_name("agent", name, AGENTS) from None


def make_config(name: str, values: dict[str, Any]) -> Any:
    """Builds the config of agent ``name`` from a dict; unknown keys raise a :class:`SettingsError` naming them."""
    spec = agent_spec(name)
    cls = spec.config_class()
    known = spec.setting_names()
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"Unknown settings {unknown} for {cls.__name__} ({name}); known: {sorted(known)}.")
    return cls(**values)
