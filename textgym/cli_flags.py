"""Command-line flags generated from config dataclasses and the ``Attributes:`` sections of their docstrings.

Every field of a config becomes ``--field-name``: its type comes from the annotation (``int``, ``float``, ``str``;
``bool`` as ``--flag / --no-flag``; ``X | None`` takes ``none`` too; ``dict`` and ``list`` take JSON; a
``Literal`` gives choices), its help from the field's entry in the Google-style ``Attributes:`` section of the class
or of a base class. Several configs (one per agent) share one parser: a field that several of them have is one
flag (it must have the same type in each), in an argument group titled with the agents that take it. Flags default
to "not given" (absent from the parsed namespace), so that the config's own defaults apply and a flag that the
chosen agent does not take can be refused (:func:`given_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textgym.error import SettingsError

_ENTRY = re.compile(r"^(?P<names>\w+(?:\s*,\s*\w+)*)\s*(?:\([^)]*\))?:\s*(?P<text>.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """Each documented field's text, from the ``Attributes:`` sections of ``cls`` and its bases (``cls`` wins).

    An entry may document several fields at once (``temperature, top_k, top_p: Sampling controls.``) and may
    continue on more-indented lines.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_attributes(klass.__dict__.get("__doc__") or ""))
    return docs


def _attributes(docstring: str) -> dict[str, str]:
    lines = inspect.cleandoc(docstring).splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return out
    header = _indent(lines[start])
    entry_indent = None
    names: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header:
            break  # the next section
        entry_indent = indent if entry_indent is None else entry_indent
        match = _ENTRY.match(line.strip()) if indent == entry_indent else None
        if match:
            names = [name.strip() for name in match["names"].split(",")]
            for name in names:
                out[name] = match["text"].strip()
        else:
            for name in names:
                out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


@dataclass(frozen=True)
class Flag:
    """One generated flag.

    Attributes:
        dest: The config field (and the parsed namespace's attribute).
        option: The flag, ``--field-name``.
        takers: The names (agents) whose config has the field, in the order the configs were given.
    """

    dest: str
    option: str
    takers: tuple[str, ...]


def add_config_flags(
    parser: argparse.ArgumentParser,
    configs: Mapping[str, type],
    skip: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Flag]:
    """Adds one flag per field of the config dataclasses, grouped by the configs that have it.

    Args:
        parser: The parser to add the flags to.
        configs: Name (an agent) -> its config dataclass.
        skip: Fields that get no flag (given another way, e.g. positionally).
        defaults: Field -> the default this command uses instead of the config's (shown in the help only; the
            command applies it).
        aliases: Field -> more option strings for its flag (e.g. ``{"learning_rate": ["--lr"]}``).

    Returns:
        Field name -> its :class:`Flag`.

    Raises:
        TypeError: A field whose type has no command-line form, or a field with different types in two configs.
    """
    defaults, aliases = defaults or {}, aliases or {}
    found: dict[str, dict[str, Any]] = {}  # field -> {"type", "takers", "docs", "defaults", "owners"}
    for name, cls in configs.items():
        hints, docs = typing.get_type_hints(cls), field_docs(cls)
        for item in dataclasses.fields(cls):
            if item.name in skip:
                continue
            entry = found.setdefault(
                item.name, {"type": hints[item.name], "takers": [], "docs": {}, "defaults": {}, "owners": set()}
            )
            if entry["type"] != hints[item.name]:
                raise TypeError(
                    f"{cls.__name__}.{item.name} is {hints[item.name]}, but another config's {item.name} is "
                    f"{entry['type']}: one flag needs one type. Rename one of them or give them the same type."
                )
            entry["takers"].append(name)
            entry["docs"].setdefault(docs.get(item.name, ""), []).append(name)
            default = _default(item)
            entry["defaults"].setdefault("required" if default is _MISSING else repr(default), []).append(name)
            entry["owners"].add(_owner(cls, item.name))
    everyone = tuple(configs)
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    flags: dict[str, Flag] = {}
    order = sorted(found, key=lambda f: (-len(found[f]["takers"]), everyone.index(found[f]["takers"][0])))
    for dest in order:
        entry = found[dest]
        takers = tuple(entry["takers"])
        if takers not in groups:
            owners = sorted(set().union(*(found[f]["owners"] for f in found if tuple(found[f]["takers"]) == takers)))
            title = "settings of every agent" if takers == everyone else f"settings of {', '.join(takers)}"
            groups[takers] = parser.add_argument_group(f"{title} ({', '.join(owners)})")
        option = "--" + dest.replace("_", "-")
        help_text = _help(entry, takers, everyone, defaults.get(dest, _MISSING))
        kwargs = _argument(entry["type"], f"{configs[takers[0]].__name__}.{dest}")
        groups[takers].add_argument(
            option, *aliases.get(dest, ()), dest=dest, default=argparse.SUPPRESS, help=help_text, **kwargs
        )
        flags[dest] = Flag(dest, option, takers)
    return flags


def given_settings(args: argparse.Namespace, flags: Mapping[str, Flag], name: str, takes: Collection[str]) -> dict:
    """The config fields given on the command line, for the config ``name`` whose fields are ``takes``.

    Raises:
        SettingsError: A flag given that ``name``'s config does not have; it says which names take it.
    """
    given = {dest: getattr(args, dest) for dest in flags if hasattr(args, dest)}
    for dest in given:
        if dest not in takes:
            raise SettingsError(
                f"{flags[dest].option} is not a setting of {name}; it is one of {', '.join(flags[dest].takers)}. "
                f"Drop the flag, or choose one of those with --agent."
            )
    return given


_MISSING = object()


def _default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return _MISSING


def _owner(cls: type, name: str) -> str:
    """The most basic class of ``cls``'s bases that declares field ``name``."""
    owners = [k for k in cls.__mro__ if name in getattr(k, "__dataclass_fields__", {})]
    return owners[-1].__name__


def _help(entry: dict[str, Any], takers: tuple[str, ...], everyone: tuple[str, ...], override: Any) -> str:
    def by_agents(values: dict[str, list[str]]) -> str:
        if len(values) == 1:
            return next(iter(values))
        return " | ".join(f"{', '.join(names)}: {value}" for value, names in values.items())

    text = by_agents(entry["docs"]) or "(undocumented)"
    default = repr(override) if override is not _MISSING else by_agents(entry["defaults"])
    return f"{text} (default: {default})".replace("``", "").replace("%", "%%")  # no reST literals in a terminal


def _argument(hint: Any, where: str) -> dict[str, Any]:
    """The keyword arguments of ``add_argument`` for a field of type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if hint in (int, float, str):
        return {"type": hint, "metavar": hint.__name__.upper()}
    if origin in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        inner = _argument(next(a for a in args if a is not type(None)), where)
        if "type" not in inner:
            raise TypeError(f"{where}: no command-line form for {hint}.")
        convert = inner["type"]
        return {"type": _or_none(convert), "metavar": f"{inner.get('metavar', 'VALUE')}|none"}
    if origin is typing.Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if hint in (dict, list) or origin in (dict, list):
        return {"type": json_value(origin or hint), "metavar": "JSON"}
    raise TypeError(
        f"{where} is {hint}, which has no command-line form; use int, float, str, bool, X | None, dict, list or "
        "Literal, or skip the field."
    )


def _or_none(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its error messages
    return parse


def json_value(kind: type) -> Callable[[str], Any]:
    """An argparse ``type`` that reads a JSON value of ``kind`` (dict, list); anything else is argparse's error."""

    def parse(text: str) -> Any:
        value = json.loads(text)
        if not isinstance(value, kind):
            raise ValueError(text)
        return value

    parse.__name__ = f"JSON {kind.__name__}"
    return parse
