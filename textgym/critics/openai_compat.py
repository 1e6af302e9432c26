"""A critic that asks any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp, OpenAI) for spans.

Each completion is rendered into the task's listing template (see :mod:`textgym.critics.prompts`) and sent as one
user message; the reply ("Toxic phrases: stupid idiot | hate you") is split by label and its phrases are located in
the completion (see :mod:`textgym.critics.parsing`). Requests of a batch run concurrently and keep their order.

A server problem never raises: a timeout, a refused connection, an HTTP error (after the client's retries), a body
that is not a chat completion, a reply without text, a reply that names no label of the task or one whose phrases
are none of them in the completion each turn into ``Critique.failed("<kind>: <reason>")`` for that completion, are
counted in :attr:`OpenAICompatibleCritic.stats` and are logged at WARNING on the ``textgym.critics`` logger.

The API key is read from an environment variable when the client is built and lives only inside the ``openai``
client: it is not part of :meth:`~OpenAICompatibleCritic.config_key`, the ``repr``, log records, errors, a pickled
critic, or a critique's ``raw`` reply (a server that echoes it gets it replaced by ``[redacted]``).

Example::

    critic = OpenAICompatibleCritic("detox", base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    [critique] = critic.critique(["The man said"], ["you stupid idiot, I hate you"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import threading
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textgym.critics.base import LABELS, Critique
from textgym.critics.parsing import critique_from_labelled_reply
from textgym.critics.prompts import load_template, render
from textgym.error import MissingPackageError, unknown_name

logger = logging.getLogger("textgym.critics")

PLACEHOLDER_API_KEY = "not-needed"
"""The key sent when the environment variable is unset: local servers (vLLM, Ollama, llama.cpp) need none."""

FAILURE_KINDS: tuple[str, ...] = (
    "timeout",
    "connection",
    "http_error",
    "malformed",
    "empty",
    "unparsable",
    "unlocated",
)
"""The kinds of failure a critique can have; each failed critique's ``error`` starts with one of them (the last
three are the reply's: see :func:`~textgym.critics.parsing.critique_from_labelled_reply`)."""

_REDACTED = "[redacted]"


@dataclass
class CriticStats:
    """Counts of a critic's requests and their outcomes, since it was built or last reset.

    Attributes:
        calls: Completions sent to the server (one request each, the client's retries not counted).
        ok: Critiques that came back usable.
        dropped: Phrases the server named that could not be found in their completion.
        failures: Failed critiques by kind (see :data:`FAILURE_KINDS`).
    """

    calls: int = 0
    ok: int = 0
    dropped: int = 0
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILURE_KINDS, 0))

    @property
    def failed(self) -> int:
        """All failed critiques, whatever their kind."""
        return sum(self.failures.values())

    def as_dict(self) -> dict[str, int]:
        """The counts as one flat dict, e.g. for logging to a metrics sink."""
        return {"calls": self.calls, "ok": self.ok, "dropped": self.dropped, "failed": self.failed, **self.failures}


class _Failure(Exception):
    """A failed request, with its kind (one of :data:`FAILURE_KINDS`) and a short reason free of credentials."""

    def __init__(self, kind: str, reason: str, raw: str | None = None) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind, self.reason, self.raw = kind, reason, raw


class OpenAICompatibleCritic:
    """A critic served by an OpenAI-compatible chat-completions endpoint.

    Attributes:
        task: The task whose labels the critic marks (a key of :data:`~textgym.critics.base.LABELS`).
        base_url: The server's API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: The model name the server is asked for.
        template: The listing template's text.
        stats: Counts of requests and outcomes (see :class:`CriticStats`); :meth:`reset_stats` clears them.
    """

    def __init__(
        self,
        task: str,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        template_path: str | Path | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 256,
        fuzzy: float = 0.85,
    ) -> None:
        """Checks the settings, loads the template and builds the client.

        Args:
            task: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
            base_url: The server's API root, ``http://`` or ``https://`` (``.../v1`` for most servers).
            model: The model name, as the server knows it.
            api_key_env: Name of the environment variable that holds the API key; read once, here. When it is
                unset or empty, the placeholder ``"not-needed"`` is sent (local servers check no key).
            template_path: A listing template of your own (fields ``{prompt}``, ``{completion}``,
                ``{extrinsic}``); by default the packaged ``templates/{task}_list.txt``.
            timeout: Seconds each network step of a request (connect, send, each read) may take.
            max_retries: Retries of a request after a timeout, a connection error, HTTP 408, 409, 429 or 5xx.
            concurrency: Requests in flight at once.
            temperature: Sampling temperature of the critic model (0 for greedy).
            max_tokens: Most tokens of a reply.
            fuzzy: Least similarity (0 to 1) of a fuzzy phrase match (see :func:`~textgym.critics.parsing.locate`).

        Raises:
            UnknownNameError: ``task`` is not a known task.
            ValueError: A setting is out of range, or the template lacks exactly one ``{completion}`` field.
            FileNotFoundError: ``template_path`` does not exist.
            MissingPackageError: The ``openai`` package is not installed.
        """
        if task not in LABELS:
            raise unknown_name("task", task, LABELS, hint="A critic's task sets the labels of its spans.")
        parts = urllib.parse.urlsplit(base_url.strip()) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url must be an http:// or https:// URL with a host, such as 'http://127.0.0.1:8000/v1'; "
                f"got {_public_url(base_url) if isinstance(base_url, str) else base_url!r}."
            )
        if parts.path.rstrip("/").endswith("/chat/completions"):
            raise ValueError(
                "base_url is the API root the client adds '/chat/completions' to: drop that suffix, e.g. "
                "'http://127.0.0.1:8000/v1'."
            )
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model must be a non-empty model name, as the server knows it.")
        if not isinstance(api_key_env, str) or not api_key_env.strip():
            raise ValueError("api_key_env must name an environment variable, e.g. 'OPENAI_API_KEY'.")
        _check_number("timeout", timeout, low=0.0, low_open=True)
        _check_int("max_retries", max_retries, low=0)
        _check_int("concurrency", concurrency, low=1)
        _check_number("temperature", temperature, low=0.0)
        _check_int("max_tokens", max_tokens, low=1)
        _check_number("fuzzy", fuzzy, low=0.0, high=1.0, low_open=True)

        if template_path is not None and not Path(template_path).is_file():
            raise FileNotFoundError(
                f"The critic template {str(template_path)!r} is not a file; pass template_path=None for the "
                f"packaged {task} template."
            )
        template = load_template(task, "list", template_path)
        try:
            render(template, "", "")
        except ValueError as error:
            where = str(template_path) if template_path is not None else f"the packaged {task} template"
            raise ValueError(f"{error} Fix {where}.") from None

        self.task = task
        self.base_url = base_url.strip().rstrip("/")
        self.model = model.strip()
        self.api_key_env = api_key_env.strip()
        self.template_path = None if template_path is None else str(template_path)
        self.template = template
        self.uses_extrinsic = "{extrinsic}" in template
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.concurrency = int(concurrency)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.fuzzy = float(fuzzy)
        self.stats = CriticStats()
        self._lock = threading.Lock()
        self._client = self._build_client()

    def _build_client(self) -> Any:
        """Builds the ``openai`` client, reading the API key from the environment now."""
        try:
            import openai
        except ImportError as error:
            raise MissingPackageError(
                "OpenAICompatibleCritic needs the openai package: pip install 'textgym[openai]'."
            ) from error
        api_key = os.environ.get(self.api_key_env) or PLACEHOLDER_API_KEY
        return openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=self.timeout, max_retries=self.max_retries
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels of the task's spans."""
        return LABELS[self.task]

    def config_key(self) -> str:
        """Identifies the configuration for caching: task, server, model, template, sampling and matching.

        Returns:
            A string with no credentials (a password in ``base_url`` is left out).
        """
        digest = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:16]
        return (
            f"{type(self).__name__}(task={self.task}, base_url={_public_url(self.base_url)}, model={self.model}, "
            f"template={digest}, temperature={self.temperature!r}, max_tokens={self.max_tokens}, "
            f"fuzzy={self.fuzzy!r})"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task={self.task!r}, base_url={_public_url(self.base_url)!r}, "
            f"model={self.model!r}, api_key_env={self.api_key_env!r}, concurrency={self.concurrency})"
        )

    def reset_stats(self) -> CriticStats:
        """Clears the counts.

        Returns:
            The counts as they were.
        """
        with self._lock:
            old, self.stats = self.stats, CriticStats()
        return old

    def close(self) -> None:
        """Closes the client's connections; the critic cannot be used afterwards."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleCritic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # The client holds the key and open connections: neither is pickled. The copy reads the key again.
        state = self.__dict__.copy()
        for name in ("_client", "_lock"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._client = self._build_client()

    def critique(
        self, prompts: Sequence[str], completions: Sequence[str], extrinsic: Sequence[float] | None = None
    ) -> list[Critique]:
        """Critiques each completion of its prompt, with up to ``concurrency`` requests in flight.

        Args:
            prompts: The prompt of each completion (shown to the critic, not judged).
            completions: The texts to mark.
            extrinsic: The task score of each completion, for templates with an ``{extrinsic}`` field.

        Returns:
            One critique per completion, in order. Spans are sorted by start; a failed request gives
            ``Critique.failed("<kind>: <reason>")``.

        Raises:
            ValueError: The sequences differ in length (a caller's mistake, never a server's).
        """
        if len(prompts) != len(completions):
            raise ValueError(f"Need one prompt per completion, got {len(prompts)} prompts, {len(completions)}.")
        if extrinsic is not None and len(extrinsic) != len(completions):
            raise ValueError(f"Need one extrinsic score per completion, got {len(extrinsic)} for {len(completions)}.")
        scores = [None] * len(completions) if extrinsic is None else [float(score) for score in extrinsic]
        messages = [
            render(self.template, prompt, completion, score)
            for prompt, completion, score in zip(prompts, completions, scores, strict=True)
        ]

        def one(index: int) -> Critique:
            return self._critique_one(index, messages[index], completions[index])

        if len(messages) <= 1 or self.concurrency == 1:
            return [one(index) for index in range(len(messages))]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(messages))) as pool:
            return list(pool.map(one, range(len(messages))))

    def _critique_one(self, index: int, message: str, completion: str) -> Critique:
        with self._lock:
            self.stats.calls += 1
        try:
            reply = self._request(message)
            critique = self._parse(reply, completion)
        except _Failure as failure:
            with self._lock:
                self.stats.failures[failure.kind] += 1
            logger.warning(
                "Critic %s at %s failed on completion %d: %s: %s",
                self.model,
                _public_url(self.base_url),
                index,
                failure.kind,
                failure.reason,
            )
            return Critique.failed(f"{failure.kind}: {failure.reason}", raw=self._redact(failure.raw))
        with self._lock:
            self.stats.ok += 1
            self.stats.dropped += critique.dropped
        return critique

    def _request(self, message: str) -> str:
        """Sends one message and returns the reply's text, or raises :class:`_Failure`."""
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": message}],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.APITimeoutError:
            raise _Failure("timeout", f"no reply within {self.timeout:g} s") from None
        except openai.APIConnectionError:
            raise _Failure("connection", "could not reach the server") from None
        except openai.APIStatusError as error:  # its message may quote the body, which may quote the key
            raise _Failure("http_error", f"HTTP {error.status_code}") from None
        except ValueError as error:  # the body is not JSON (json.JSONDecodeError and kin)
            raise _Failure("malformed", f"the body is not JSON ({type(error).__name__})") from None
        except (openai.OpenAIError, TypeError, AttributeError, KeyError) as error:
            raise _Failure("malformed", f"unreadable response ({type(error).__name__})") from None
        return _reply_text(response)

    def _parse(self, reply: str, completion: str) -> Critique:
        """Reads the spans of every label from a reply, or raises :class:`_Failure` for an unusable reply."""
        critique = critique_from_labelled_reply(reply, completion, self.task, self.fuzzy)
        if not critique.ok:
            kind, _, reason = (critique.error or "unparsable: ").partition(": ")
            raise _Failure(kind, reason, raw=reply)
        return dataclasses.replace(critique, raw=self._redact(reply))

    def _redact(self, text: str | None) -> str | None:
        """``text`` with the API key, should a server echo it, replaced by ``[redacted]``."""
        key = getattr(self._client, "api_key", None)
        if not text or not isinstance(key, str) or not key or key == PLACEHOLDER_API_KEY:
            return text
        return text.replace(key, _REDACTED)


def _reply_text(response: object) -> str:
    """The text of a chat completion's first choice, or :class:`_Failure` for anything else."""
    if isinstance(response, (str, bytes)) or response is None:  # a body that is not a JSON object
        raise _Failure("malformed", "the body is not a chat completion")
    choices = _field(response, "choices")
    if choices is None and _field(response, "object") != "chat.completion":
        raise _Failure("malformed", "the body is not a chat completion")
    if not isinstance(choices, list) or not choices:
        raise _Failure("empty", "the reply has no choices")
    message = _field(choices[0], "message")
    if message is None:
        raise _Failure("malformed", "the first choice has no message")
    content = _field(message, "content")
    if content is None:
        refusal = _field(message, "refusal")
        raise _Failure("empty", "the model refused" if refusal else "the reply has no content")
    if not isinstance(content, str):
        raise _Failure("malformed", f"the reply's content is not text ({type(content).__name__})")
    if not content.strip():
        raise _Failure("empty", "the reply's content is empty", raw=content)
    return content


def _field(value: object, name: str) -> Any:
    """``value.name`` or ``value[name]``, None when absent: a loosely constructed reply may hold plain dicts."""
    if isinstance(value, dict):
        return value.get(name)
    try:
        return getattr(value, name, None)
    except Exception:  # a half-built model may raise anything on access
        return None


def _public_url(url: str) -> str:
    """``url`` without a user name or password."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _check_number(name: str, value: object, low: float, high: float | None = None, low_open: bool = False) -> None:
    """Raises ValueError unless ``value`` is a finite real number in range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")


def _check_int(name: str, value: object, low: int) -> None:
    """Raises ValueError unless ``value`` is an integer of at least ``low``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
