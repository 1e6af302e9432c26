"""Errors raised by textgym.

Every error subclasses :class:`TextGymError`, itself a ``gymnasium.error.Error``, so a caller can catch all of
textgym's errors at once. Messages say what went wrong, why, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import gymnasium


class TextGymError(gymnasium.error.Error):
    """Base class of every error textgym raises."""


class UnknownNameError(TextGymError, KeyError):
    """A name (model, task, scorer, ...) that textgym does not know."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class MissingPackageError(TextGymError, ImportError):
    """A package that a named model or feature needs is not installed."""


class ModelLoadError(TextGymError):
    """A model id or path could not be loaded."""


class InvalidActionError(TextGymError, ValueError):
    """An action outside the environment's action space."""


class EpisodeFinishedError(TextGymError, gymnasium.error.ResetNeeded):
    """``step`` was called on an episode that has already ended."""


class CriticConfigError(TextGymError, ValueError):
    """A critic spec with a missing or unknown argument."""


class SettingsError(TextGymError, ValueError):
    """An agent or training setting is unknown or out of range."""


class DataError(TextGymError, ValueError):
    """A prompt file or data set that is missing or malformed."""


def unknown_name(kind: str, name: str, valid: Iterable[str], hint: str = "") -> UnknownNameError:
    """Builds an :class:`UnknownNameError` with a "Did you mean" suggestion and the list of valid names.

    Args:
        kind: What the name names, e.g. ``"model"`` or ``"task"``.
        name: The name the user gave.
        valid: Every valid name.
        hint: An extra sentence on how else to fix it.

    Returns:
        The error, ready to raise.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    message = f"Unknown {kind} {name!r}."
    if close:
        message += f" Did you mean {close[0]!r}?"
    message += f" Valid {kind}s: {', '.join(valid)}."
    if hint:
        message += f" {hint}"
    return UnknownNameError(message)
