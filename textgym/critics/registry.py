"""Critics by name: ``build_critic(task, "default")``, a model id, a server URL, or a config dict.

The defaults were chosen by ``textgym critic-eval`` on the project's gold spans (``benchmarks/results/``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from textgym.critics.base import Critic
from textgym.error import CriticConfigError, unknown_name

CRITIC_TYPES = ("lm-judge", "attribution", "openai", "self", "lm-list")
MODEL_CRITIC_TYPES = ("lm-judge", "attribution", "self", "lm-list")
"""The critic types that run a local model, and so take ``device`` and ``dtype`` (an ``openai`` critic does not)."""


def default_critic(task: str) -> dict[str, Any]:
    """A copy of the task's offline default critic config (declared by the task; see :data:`DEFAULT_CRITICS`)."""
    from textgym.tasks import get_task

    return dict(get_task(task).default_critic)


class _DefaultCritics(Mapping[str, dict[str, Any]]):
    def __getitem__(self, task: str) -> dict[str, Any]:
        from textgym.error import UnknownNameError

        try:
            return default_critic(task)
        except UnknownNameError as error:
            raise KeyError(task) from error

    def __iter__(self):
        from textgym.tasks import task_names

        return iter(task_names())

    def __len__(self) -> int:
        from textgym.tasks import task_names

        return len(task_names())


DEFAULT_CRITICS: Mapping[str, dict[str, Any]] = _DefaultCritics()
"""The offline default critic of each task, as the tasks declare it (``Task.default_critic``).

The built-in ones have the best word-level F1 of their candidates on the gold spans' dev parts
(``benchmarks/results/critic_choice.md``); on the test parts (``critic_quality_defaults.md``): sentiment 0.54
(Gemma 3 270M clause judge, untrimmed), detox 0.33 (BiLSTM occlusion), summaries 0.18 (SmolLM2 clause judge with two
questions, untrimmed). The summary judge is the slowest on a CPU (``benchmarks/results/critic_throughput.md``): pass
``critic="attribution"`` where speed matters more."""


def critic_config(task: str, critic: str | dict[str, Any] = "default", **kwargs: Any) -> dict[str, Any]:
    """Normalises a critic spec into a config dict with a ``type``.

    Args:
        task: The task.
        critic: ``"default"``; a type name (``"lm-judge"``: a local LM judges each clause; ``"attribution"``: the
            task's scorer on each clause; ``"openai"``: a chat-completions server lists spans; ``"self"``: the
            policy's model judges; ``"lm-list"``: a local LM lists spans, for larger local models); an
            ``http(s)://`` URL of an OpenAI-compatible server (give ``model=``); a named causal LM, folder or hub id
            (an ``lm-judge`` on that model); or a dict with ``type`` and the critic's arguments.
        **kwargs: More arguments of the critic.
    """
    if isinstance(critic, dict):
        config = dict(critic)
    elif critic == "default":
        config = default_critic(task)
    elif critic in CRITIC_TYPES:
        config = {"type": critic}
    elif critic.startswith(("http://", "https://")):
        config = {"type": "openai", "base_url": critic}
    else:
        from textgym.error import UnknownNameError
        from textgym.models import NAMED_MODELS, resolve

        try:
            resolve(critic)
        except UnknownNameError:
            causal = [name for name, model in NAMED_MODELS.items() if model.kind == "causal-lm"]
            raise unknown_name(
                "critic",
                critic,
                ["default", *CRITIC_TYPES, *causal],
                hint="A critic is a type, a named model, a folder, a model hub id or an http(s):// server URL.",
            ) from None
        config = {"type": "lm-judge", "model": critic}
    config.update(kwargs)
    if config.get("type") not in CRITIC_TYPES:
        raise unknown_name("critic type", str(config.get("type")), CRITIC_TYPES)
    return config


def build_critic(task: str, critic: str | dict[str, Any] = "default", **kwargs: Any) -> Critic:
    """Builds (once per process for each configuration) the critic a spec names; see :func:`critic_config`."""
    config = critic_config(task, critic, **kwargs)
    return _build(task, json.dumps(config, sort_keys=True))


@functools.cache
def _build(task: str, frozen: str) -> Critic:
    config = json.loads(frozen)
    kind = config.pop("type")
    try:
        return _construct(task, kind, config)
    except TypeError as error:  # a missing or misspelt argument
        raise CriticConfigError(
            f"Bad arguments {sorted(config)} for a {kind!r} critic: {error}. See the critic class's docstring "
            "(an 'openai' critic needs base_url and model)."
        ) from error


def _construct(task: str, kind: str, config: dict[str, Any]) -> Critic:
    if kind == "lm-judge":
        from textgym.critics.segment_judge import SegmentJudgeCritic

        return SegmentJudgeCritic(task, **config)
    if kind == "self":
        from textgym.critics.segment_judge import SegmentJudgeCritic

        if "model" not in config:
            raise ValueError("A self-critic judges with the policy's model: pass model=<the policy model name>.")
        return SegmentJudgeCritic(task, **config)
    if kind == "attribution":
        from textgym.critics.attribution import AttributionCritic

        return AttributionCritic(task, **config)
    if kind == "lm-list":
        from textgym.critics.local_listing import LocalListingCritic

        return LocalListingCritic(task, **config)
    from textgym.critics.openai_compat import OpenAICompatibleCritic

    return OpenAICompatibleCritic(task, **config)
