"""A chat-completions server on 127.0.0.1 for critic tests: real HTTP, scripted replies, recorded requests.

Usage::

    with LoopbackChatServer(lambda request: Reply(content="Toxic phrases: idiot")) as server:
        critic = OpenAICompatibleCritic("detox", base_url=server.url, model="test-model")
        ...
        server.requests  # what the server received

``server.respond`` may be replaced at any time. The server listens on loopback only, answers at most
``max_requests`` requests (then 503 with ``x-should-retry: false``), and wakes any delayed reply when stopped.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Reply:
    """What the server answers.

    ``content`` becomes a proper chat.completion (``None`` content included, when ``body`` is not given);
    ``body`` (bytes, or an object to dump as JSON) replaces the whole body; ``delay`` is slept before answering.
    """

    content: Any = ""
    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def user_message(self) -> str:
        """The content of the last user message."""
        users = [m for m in self.body["messages"] if m.get("role") == "user"]
        return users[-1]["content"]


def chat_completion(content: Any, model: str = "test-model") -> dict[str, Any]:
    """A chat.completion body with one choice whose message has ``content``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def completion_between_markers(message: str, open_marker: str = "<<<TEXT", close_marker: str = "TEXT>>>") -> str:
    """The text between the line ``<<<TEXT`` and the line ``TEXT>>>`` of a rendered template."""
    lines = message.split("\n")
    start, end = lines.index(open_marker), lines.index(close_marker)
    return "\n".join(lines[start + 1 : end])


class LoopbackChatServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) that answers POST /v1/chat/completions."""

    def __init__(self, respond: Callable[[Recorded], Reply] | None = None, max_requests: int = 200) -> None:
        self.respond: Callable[[Recorded], Reply] = respond or (lambda request: Reply(content="none"))
        self.max_requests = max_requests
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API root to give a client, ``http://127.0.0.1:PORT/v1``."""
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> LoopbackChatServer:
        """Binds a free loopback port and serves in a daemon thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                owner._handle(self)

            def do_GET(self) -> None:
                self.send_error(404)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:  # a client that gave up: fine
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wakes delayed replies, stops serving and closes the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        recorded = Recorded("POST", handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(recorded)
            count = len(self.requests)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if count > self.max_requests:
                reply = Reply(status=503, body={"error": "too many requests"}, headers={"x-should-retry": "false"})
            elif handler.path != CHAT_PATH:
                reply = Reply(status=404, body={"error": f"no route {handler.path}"})
            else:
                reply = self.respond(recorded)
            if reply.delay and self._stopping.wait(reply.delay):
                return
            if reply.body is None:
                payload = json.dumps(chat_completion(reply.content)).encode()
            elif isinstance(reply.body, bytes):
                payload = reply.body
            else:
                payload = json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass
        finally:
            with self._lock:
                self.in_flight -= 1


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
