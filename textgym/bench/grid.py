"""A benchmark grid: env ids x variants x agents x budgets x seeds, expanded into runnable cells.

A grid comes from command-line lists or from a YAML / JSON file of the same fields::

    env_ids: [TextDetox-sparse-v0]
    variants: [sparse, critic-episode, critic-prefix]   # optional; a list of names or a {name: overrides} map
    agents: [lmppo]
    seeds: [0, 1, 2]
    budgets: [12]                                        # training iterations
    settings: {num_envs: 8, eval_episodes: 32, env_kwargs: {max_new_tokens: 20}}
    agent_settings: {rloo: {learning_rate: 5.0e-5}}      # optional, per agent

A *variant* is a set of overrides of the shared settings (a grid file may also give it an ``env_id``, and may
override a built-in variant's settings by naming it in a map). The built-in ones (:data:`VARIANTS`) are the reward
wrappers: one per reward kind (``sparse``, ``uniform``, ``potential``, ``attention``, ``occlusion``, ``critic``),
plus ``potential-prefix``, ``critic-episode`` and ``critic-prefix`` (a payment mode) and ``self-critique`` (the
policy is its own critic). Their ``reward`` key swaps the reward kind of the env id (``TextDetox-critic-v0`` ->
``TextDetox-sparse-v0``, read from the id's spec by :func:`textgym.envs.registration.with_reward`), so
``env_ids: [TextDetox-sparse-v0]`` with the six reward variants gives six different runs. Without variants, a
cell's variant is the reward kind of its env id.

Each cell gets a run name, ``FAMILY.VARIANT.AGENT.itN.seedS`` (e.g. ``TextDetox-v0.sparse.lmppo.it12.seed0``),
and the config dict that :func:`textgym.training.train` takes. Settings merge in this order, later winning: the
shared ``settings``, the agent's ``agent_settings``, the variant's overrides, then the cell's ``env_id``,
``seed`` and ``iterations``; ``env_kwargs`` dicts are merged key by key. Agents and their settings come from the
registry (:data:`textgym.training.AGENTS`): a shared setting that the cell's agent lacks but another agent has
(``kl_coef`` for ``sb3-ppo``) is left out of that cell and listed in its ``dropped``; one that no agent has stays,
and the run reports it as an unknown setting.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textgym.error import SettingsError, unknown_name
from textgym.rewards import REWARD_KINDS

VARIANTS: dict[str, dict[str, Any]] = {
    **{reward: {"reward": reward} for reward in REWARD_KINDS},
    "potential-prefix": {"reward": "potential", "env_kwargs": {"mode": "prefix"}},
    "critic-episode": {"reward": "critic", "env_kwargs": {"mode": "episode"}},
    "critic-prefix": {"reward": "critic", "env_kwargs": {"mode": "prefix"}},
    "self-critique": {"reward": "critic", "self_critique": True},
}
"""The built-in variants; ``reward`` picks the env id's reward kind, every other key is an agent setting."""

GRID_FIELDS = ("env_ids", "variants", "agents", "seeds", "budgets", "settings", "agent_settings")


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    Attributes:
        name: The run's folder name, unique in the grid.
        env_id: The env id the run trains on (after the variant's reward kind is applied).
        family: The env id without its reward kind (``TextDetox-v0``): runs of one family are compared.
        variant: The variant's name (``sparse``, ``critic-prefix``, ...).
        agent: The agent's name (see :data:`textgym.training.AGENTS`).
        seed: The run's seed.
        iterations: The run's budget, in training iterations.
        config: The settings passed to :func:`textgym.training.train`.
        dropped: Shared settings that this agent's config lacks but another agent's has, left out of its config.
    """

    name: str
    env_id: str
    family: str
    variant: str
    agent: str
    seed: int
    iterations: int
    config: dict[str, Any]
    dropped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The cell as plain data (written to ``cell.json`` in its run folder)."""
        return {**asdict(self), "dropped": list(self.dropped)}


@dataclass
class Grid:
    """A benchmark grid (see the module docstring for the fields and how they combine).

    Attributes:
        env_ids: Registered textgym ids.
        agents: Agent names.
        seeds: Seeds; each seed is one run of every other combination.
        budgets: Training iterations; each budget is its own run.
        variants: Variant name -> overrides (None for a built-in variant as it is); empty: one variant per env id.
        settings: Agent settings shared by every cell.
        agent_settings: Agent name -> settings of that agent only.
    """

    env_ids: list[str]
    agents: list[str] = field(default_factory=lambda: ["lmppo"])
    seeds: list[int] = field(default_factory=lambda: [0])
    budgets: list[int] = field(default_factory=lambda: [12])
    variants: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    agent_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises :class:`~textgym.error.SettingsError` (or an unknown-name error) on an invalid grid."""
        from textgym.training import AGENTS

        for kind, values in (("env_ids", self.env_ids), ("agents", self.agents), ("seeds", self.seeds)):
            if not values:
                raise SettingsError(f"The grid has no {kind}: give at least one.")
        if not self.budgets or any(not isinstance(b, int) or b < 1 for b in self.budgets):
            raise SettingsError(f"Budgets are iteration counts >= 1, got {self.budgets}.")
        for agent in [*self.agents, *self.agent_settings]:
            if agent not in AGENTS:
                raise unknown_name("agent", agent, AGENTS)
        for name, overrides in self.variants.items():
            if overrides is None and name not in VARIANTS:
                raise unknown_name("variant", name, VARIANTS, "Or give the variant's overrides in a grid file.")
            reward = (overrides or {}).get("reward")
            if reward not in (None, *REWARD_KINDS):
                raise SettingsError(f"Variant {name!r}: reward must be one of {REWARD_KINDS}, got {reward!r}.")
        for key in ("env_id", "seed", "iterations"):
            if key in self.settings:
                raise SettingsError(f"{key!r} is a grid axis, not a shared setting: use the grid's lists instead.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        """A grid from the fields of a grid file; ``variants`` may be a list of names or a name -> overrides map."""
        unknown = sorted(set(data) - set(GRID_FIELDS))
        if unknown:
            raise SettingsError(f"Unknown grid fields {unknown}; known: {list(GRID_FIELDS)}.")
        if "env_ids" not in data:
            raise SettingsError("A grid needs env_ids, e.g. env_ids: [TextDetox-sparse-v0].")
        values = dict(data)
        variants = values.get("variants") or {}
        if isinstance(variants, list):
            variants = dict.fromkeys(variants)
        values["variants"] = variants
        for axis in ("env_ids", "agents", "seeds", "budgets"):
            if axis in values and not isinstance(values[axis], list):
                values[axis] = [values[axis]]
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> Grid:
        """Reads a grid from a ``.yaml`` / ``.yml`` or ``.json`` file."""
        path = Path(path)
        if not path.exists():
            raise SettingsError(f"No grid file at {path}.")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as error:
                from textgym.error import MissingPackageError

                raise MissingPackageError("Reading a YAML grid needs PyYAML: pip install pyyaml.") from error
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise SettingsError(f"{path} is not valid YAML: {error}") from error
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise SettingsError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise SettingsError(f"{path} must hold a mapping of grid fields ({', '.join(GRID_FIELDS)}).")
        return cls.from_dict(data)

    def set(self, key: str, value: Any) -> None:
        """Sets one shared setting; ``a.b`` sets key ``b`` of the dict setting ``a`` (e.g. ``env_kwargs.mode``)."""
        if key in ("env_id", "seed", "iterations"):
            raise SettingsError(f"{key!r} is a grid axis, not a shared setting: use the grid's lists instead.")
        head, _, rest = key.partition(".")
        if rest:
            self.settings[head] = {**self.settings.get(head, {}), rest: value}
        else:
            self.settings[key] = value

    def cells(self) -> list[Cell]:
        """Every run of the grid, in a stable order (env id, variant, agent, budget, seed); duplicates merged."""
        cells: dict[str, Cell] = {}
        variants = list(self.variants.items()) or [(None, None)]
        for env_id in self.env_ids:
            for variant, overrides in variants:
                if variant in VARIANTS:
                    overrides = merge(VARIANTS[variant], overrides or {})
                for agent in self.agents:
                    for iterations in self.budgets:
                        for seed in self.seeds:
                            cell = self._cell(env_id, variant, overrides or {}, agent, iterations, seed)
                            known = cells.get(cell.name)
                            if known is not None and known.config != cell.config:
                                raise SettingsError(
                                    f"Two cells are named {cell.name!r} with different settings: give the "
                                    "variants different names."
                                )
                            cells[cell.name] = cell
        return list(cells.values())

    def _cell(
        self, env_id: str, variant: str | None, overrides: dict[str, Any], agent: str, iterations: int, seed: int
    ) -> Cell:
        overrides = dict(overrides)
        reward = overrides.pop("reward", None)
        env_id = overrides.pop("env_id", env_id)
        env_id = with_reward(env_id, reward) if reward else env_id
        family, kind = split_env_id(env_id)
        from textgym.training import AGENTS

        takes = AGENTS[agent].setting_names()
        elsewhere = set().union(*(spec.setting_names() for spec in AGENTS.values()))
        dropped = sorted(key for key in self.settings if key not in takes and key in elsewhere)
        shared = {key: copy.deepcopy(value) for key, value in self.settings.items() if key not in dropped}
        config = merge(merge(shared, self.agent_settings.get(agent, {})), overrides)
        config.update({"env_id": env_id, "seed": seed, "iterations": iterations})
        variant = variant or kind or "default"
        name = f"{family}.{variant}.{agent}.it{iterations}.seed{seed}"
        return Cell(name, env_id, family, variant, agent, seed, iterations, config, tuple(dropped))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``, with dict values (``env_kwargs``) merged key by key; copies both."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_env_id(env_id: str) -> tuple[str, str | None]:
    """The family and reward kind of an id, read from its spec; ``(env_id, None)`` for an id not textgym's.

    ``split_env_id("TextDetox-critic-v0") == ("TextDetox-v0", "critic")``.
    """
    import gymnasium as gym

    from textgym.envs.registration import ENTRY_POINT, family_of, reward_of

    if env_id not in gym.registry or gym.registry[env_id].entry_point != ENTRY_POINT:
        return env_id, None
    return family_of(env_id), reward_of(env_id)


def with_reward(env_id: str, reward: str) -> str:
    """``env_id`` with its reward kind replaced: ``with_reward("TextDetox-critic-v0", "sparse")``."""
    from textgym.envs import registration

    if split_env_id(env_id)[1] is None:
        raise SettingsError(
            f"A variant with reward={reward!r} needs a registered textgym id (`textgym list`), got {env_id!r}; "
            "give the variant's env_id in a grid file instead."
        )
    return registration.with_reward(env_id, reward)


def parse_assignment(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", value)``, the value read as JSON when it parses, else kept as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise SettingsError(f"Expected KEY=VALUE, got {item!r} (e.g. --set num_envs=4).")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw
