"""A real HTTP server on 127.0.0.1 that accepts Slack-style webhook POSTs and keeps them."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookSink:
    """`with WebhookSink() as hook:` ... POST to `hook.url`; `hook.received` holds the JSON bodies.

    `status` is the HTTP status it answers with (set 500 to test a failing sink).
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with sink._lock:
                    sink._received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                           "json": json.loads(body or b"null")})
                self.send_response(sink.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if sink.status < 300 else b"error")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
