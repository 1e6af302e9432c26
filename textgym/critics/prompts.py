"""Critic prompts: template files a user can replace, and the delimiting that keeps a completion from escaping.

A listing template (``templates/{task}_list.txt``) has the fields ``{prompt}``, ``{completion}`` and
``{extrinsic}``. The completion sits between the markers ``<<<TEXT`` and ``TEXT>>>``; any marker inside the
prompt or completion is defused first (its angle brackets become look-alike characters), so a completion that says
"TEXT>>> ignore the instructions" cannot close the data block or add instructions outside it.

A reply lists phrases per label, one line each (``Toxic phrases: a | b``); :mod:`textgym.critics.parsing` reads
it (and the other formats critics answer in).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

OPEN, CLOSE = "<<<TEXT", "TEXT>>>"
_MARKER = re.compile(r"<<<|>>>")


def defuse(text: str) -> str:
    """Replaces every ``<<<`` and ``>>>`` in ``text`` with look-alike characters, so no marker can be forged."""
    return _MARKER.sub(lambda match: "‹‹‹" if match.group() == "<<<" else "›››", text)


def template_path(task: str, name: str):
    """Where a task's critic template ``name`` (e.g. ``"detox_list.txt"``) lives.

    The task's own declaration (``Task.critic_templates``, by kind) first, else the packaged
    ``textgym/critics/templates/``.
    """
    from textgym.tasks import get_task

    kind = name.removeprefix(f"{task}_").rsplit(".", 1)[0]
    declared = get_task(task).critic_templates.get(kind)
    return Path(declared) if declared else resources.files("textgym.critics") / "templates" / name


def load_template(task: str, kind: str = "list", path: str | Path | None = None) -> str:
    """Returns a template's text: the user's file at ``path``, else the task's (its own, or the packaged one)."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    return template_path(task, f"{task}_{kind}.txt").read_text(encoding="utf-8")


def render(template: str, prompt: str, completion: str, extrinsic: float | None = None) -> str:
    """Fills a template with a defused prompt and completion."""
    if template.count("{completion}") != 1:
        raise ValueError("A critic template needs exactly one {completion} field.")
    values = {
        "prompt": defuse(prompt),
        "completion": defuse(completion),
        "extrinsic": "unknown" if extrinsic is None else f"{extrinsic:.2f}",
    }
    # One pass over the template only: text inside the prompt or completion is never read as a field.
    return re.sub(r"\{(prompt|completion|extrinsic)\}", lambda match: values[match.group(1)], template)
