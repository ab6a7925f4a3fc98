"""A fake Anthropic Messages API on 127.0.0.1 that the real `anthropic` SDK talks to.

It answers POST /v1/messages from a per-test script, one scripted step per request, and logs
every request (method, path, headers, JSON body) so tests can assert what the SDK sent (the
system block's cache_control, the output schema, the key) and what it never sent (sensitive
records). Steps: `reply_json` / `reply_text` (a normal message with usage numbers),
`error` (any status with Anthropic's error body), `hang` (holds the connection past the client's
timeout). With the script empty it answers 500 "no scripted reply", so an unexpected call fails
loudly instead of passing by accident.

Error replies carry `retry-after-ms: 1` so the SDK's retries do not slow the suite down.

    def test_x(fake_anthropic):          # fixture below; tests import it into their module
        fake_anthropic.script(reply_json({"score": 80}))
        client = anthropic.Anthropic(api_key="k", base_url=fake_anthropic.url)
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import LoggedRequest, Responder, ScriptedServer, Step, hang

__all__ = [
    "FakeAnthropicServer", "LoggedRequest", "error", "fake_anthropic", "hang", "reply_json", "reply_text", "usage_block",
]


def usage_block(
    input_tokens: int = 120, output_tokens: int = 40, cache_read: int = 0, cache_write: int = 0
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def reply_text(
    text: str,
    *,
    stop_reason: str = "end_turn",
    model: str | None = None,
    usage: dict[str, int] | None = None,
) -> Responder:
    """A normal 200 message whose single text block is `text` (model echoes the request's)."""

    def respond(req: LoggedRequest) -> Step:
        body = req.body if isinstance(req.body, dict) else {}
        content = [{"type": "text", "text": text}] if text else []
        return Step(
            body={
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": model or body.get("model", "claude-test"),
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage or usage_block(),
            }
        )

    return respond


def reply_json(obj: Any, **kwargs: Any) -> Responder:
    """A 200 message whose text is `obj` as JSON: what structured output produces."""
    return reply_text(json.dumps(obj), **kwargs)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(status: int, message: str | None = None, *, retry_after_ms: int | None = 1) -> Responder:
    kind = _ERROR_TYPES.get(status, "api_error")
    headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}

    def respond(req: LoggedRequest) -> Step:
        return Step(
            status=status,
            body={"type": "error", "error": {"type": kind, "message": message or f"fake {kind}"}},
            headers=headers,
        )

    return respond


class FakeAnthropicServer(ScriptedServer):
    """The Messages API: `url` is the SDK's base_url."""

    thread_name = "fake-anthropic"

    @property
    def message_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.startswith("/v1/messages")]

    def unscripted(self, req: LoggedRequest) -> Step:
        return error(500, "fake server: no scripted reply for this request", retry_after_ms=None)(req)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    server = FakeAnthropicServer().start()
    try:
        yield server
    finally:
        server.stop()
