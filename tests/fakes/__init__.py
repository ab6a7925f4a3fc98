"""Fake HTTP APIs on 127.0.0.1 for tests that drive real client libraries (no network, no mocks).

`ScriptedServer` is the shared machinery: a threaded stdlib HTTP server on an ephemeral port
that answers each request with the next scripted `Responder`, logs every request, and can hold
a request open (`hang`) until the client times out. `anthropic_server` and `ollama_server`
add their API's reply and error shapes and a pytest fixture each.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON

    def text(self) -> str:
        """Everything the request carried, as one string (for 'this never left' assertions)."""
        return json.dumps(self.body) if not isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Step:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0  # > 0: hold the request this long (or until the server stops), send nothing


Responder = Callable[[LoggedRequest], Step]


def hang(seconds: float = 30.0) -> Responder:
    def respond(req: LoggedRequest) -> Step:
        return Step(hang_s=seconds)

    return respond


class ScriptedServer:
    """Threaded HTTP server on an ephemeral 127.0.0.1 port that answers from a script.

    Subclasses say how an unscripted request is answered (in their API's error format).
    """

    thread_name = "fake-http"

    def __init__(self) -> None:
        self.requests: list[LoggedRequest] = []
        self._script: list[Responder] = []
        self._default: Responder | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=self.thread_name, daemon=True
        )

    # -- control -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers at once
        if self._thread.is_alive():  # shutdown() would wait forever on a server never started
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def script(self, *steps: Responder) -> None:
        """Queue one responder per expected request, in order."""
        with self._lock:
            self._script.extend(steps)

    def always(self, responder: Responder) -> None:
        """Answer every request that the script does not cover with `responder`."""
        self._default = responder

    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    # -- serving -----------------------------------------------------------------------------
    def _next_step(self, req: LoggedRequest) -> Step:
        with self._lock:
            self.requests.append(req)
            responder = self._script.pop(0) if self._script else self._default
        if responder is None:
            return self.unscripted(req)
        return responder(req)

    def unscripted(self, req: LoggedRequest) -> Step:
        return Step(status=500, body={"error": "fake server: no scripted reply for this request"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, a kept-alive client's delayed ACK adds ~40 ms per reply.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                req = LoggedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                step = server._next_step(req)
                if step.hang_s > 0:
                    server._stopping.wait(step.hang_s)
                    self.close_connection = True
                    return
                raw_body = isinstance(step.body, bytes)  # e.g. JSON Lines, sent as given
                payload = step.body if raw_body else json.dumps(step.body).encode()
                self.send_response(step.status)
                if not raw_body or "content-type" not in step.headers:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                for k, v in step.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        return Handler
