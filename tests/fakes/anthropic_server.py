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

import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agents.llm.caching import estimate_tokens, min_cacheable_tokens
from tests.fakes import LoggedRequest, Responder, ScriptedServer, Step, hang

__all__ = [
    "FakeAnthropicServer", "LoggedRequest", "age_cache", "error", "fake_anthropic", "forget_cache", "hang", "reply_json",
    "reply_text",
    "request_usage", "usage_block",
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
                "usage": usage or request_usage(req),
            }
        )

    return respond


def request_usage(req: LoggedRequest, *, output_tokens: int = 40) -> dict[str, int]:
    """Usage as the real API reports it for this request (a reply scripted without its own numbers).

    Each system block marked `cache_control` is a breakpoint; the prefix up to a breakpoint can be
    cached only when it reaches the model's minimum (agents.llm.caching). The longest marked prefix
    seen before, within the cache's lifetime (`CACHE_TTL_S`, refreshed by each use), is read
    (cache_read_input_tokens); the rest of the prefix up to the last breakpoint is written
    (cache_creation_input_tokens), when that prefix reaches the minimum; input_tokens counts the
    rest: what follows the last breakpoint, or everything when nothing could be cached. Token
    counts are estimates (4 characters a token).
    """
    body = req.body if isinstance(req.body, dict) else {}
    model = str(body.get("model", ""))
    system = body.get("system") or []
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    texts = [str(b.get("text", "")) if isinstance(b, dict) else "" for b in blocks]
    marked = [i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")]
    # The output_config schema is left out of the estimate: how the API counts it is not documented.
    messages = json.dumps(body.get("messages", []))
    total = estimate_tokens("".join(texts) + messages)
    minimum = min_cacheable_tokens(model)
    prefixes = [("".join(texts[: i + 1])) for i in marked]
    cacheable = [p for p in prefixes if p and estimate_tokens(p) >= minimum]
    if not cacheable or estimate_tokens(prefixes[-1]) < minimum:
        return usage_block(total, output_tokens)
    now = _now()
    keys = {p: hashlib.sha256(f"{model}\x00{p}".encode()).hexdigest() for p in cacheable}
    with _CACHE_LOCK:
        hit = next((p for p in reversed(cacheable) if now - _SEEN_PREFIXES.get(keys[p], -math.inf) <= CACHE_TTL_S), "")
        for p in cacheable:
            _SEEN_PREFIXES[keys[p]] = now
    read = estimate_tokens(hit) if hit else 0
    written = estimate_tokens(prefixes[-1]) - read
    return usage_block(total - read - written, output_tokens, cache_read=read, cache_write=written)


# Prefixes the fake API has cached, with when each was last used (process-wide, like the real cache
# is account-wide; tests that need a cold cache call forget_cache(), and age_cache() lets time pass).
CACHE_TTL_S = 300.0  # the 5-minute lifetime of an ephemeral cache entry, refreshed by each read
_SEEN_PREFIXES: dict[str, float] = {}
_CACHE_LOCK = threading.Lock()
_CLOCK_OFFSET = [0.0]


def _now() -> float:
    return time.monotonic() + _CLOCK_OFFSET[0]


def forget_cache() -> None:
    with _CACHE_LOCK:
        _SEEN_PREFIXES.clear()
        _CLOCK_OFFSET[0] = 0.0


def age_cache(seconds: float) -> None:
    """Let `seconds` pass for the fake cache: entries not used since expire past CACHE_TTL_S."""
    with _CACHE_LOCK:
        _CLOCK_OFFSET[0] += seconds


def route_sdk_to(monkeypatch: pytest.MonkeyPatch, url: str, *, batch_above: int | None = None) -> None:
    """Point the CRM's Anthropic provider at a fake server on loopback: a test key, a short timeout,
    no local model (so no context leaves for Ollama), and, when given, the batch threshold."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("CRM_LLM_TIMEOUT_S", "5")
    monkeypatch.delenv("CRM_OLLAMA_HOST", raising=False)
    if batch_above is not None:
        monkeypatch.setenv("CRM_LLM_BATCH_ABOVE", str(batch_above))


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
    """The Messages API: `url` is the SDK's base_url.

    It also answers the Message Batches API as documented: POST /v1/messages/batches takes
    `requests` ({custom_id, params}) and returns the batch `in_progress`; each item is answered by
    the script (or `always`) as if it were its own /v1/messages request; GET
    /v1/messages/batches/{id} says `in_progress` on the first poll and `ended` (with counts and a
    `results_url`) after; GET .../results returns one JSON line per item
    ({custom_id, result: {type: succeeded, message} | {type: errored, error}}), in no fixed order.
    """

    thread_name = "fake-anthropic"

    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[str, dict[str, Any]] = {}

    def _next_step(self, req: LoggedRequest) -> Step:
        if req.path.startswith("/v1/messages/batches"):
            with self._lock:
                self.requests.append(req)
            return self._batch_step(req)
        return super()._next_step(req)

    def _batch_step(self, req: LoggedRequest) -> Step:
        parts = req.path.split("?")[0].rstrip("/").split("/")  # ['', 'v1', 'messages', 'batches', id?, 'results'?]
        if req.method == "POST" and len(parts) == 4:
            items = (req.body or {}).get("requests", []) if isinstance(req.body, dict) else []
            batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
            results = []
            for item in items:
                # Logged as an item of the batch, answered as its own /v1/messages request would be.
                step = super()._next_step(LoggedRequest("POST", "/v1/messages#batch-item", req.headers, item.get("params", {})))
                if step.status == 200:
                    result = {"type": "succeeded", "message": step.body}
                else:
                    result = {"type": "errored", "error": {"type": "error", "error": (step.body or {}).get("error", {})}}
                results.append({"custom_id": item.get("custom_id"), "result": result})
            self.batches[batch_id] = {"results": list(reversed(results)), "polls": 0}
            return Step(body=self._batch_object(batch_id))
        batch_id = parts[4] if len(parts) > 4 else ""
        if batch_id not in self.batches:
            return error(404, f"batch {batch_id} not found", retry_after_ms=None)(req)
        if len(parts) == 6 and parts[5] == "results":
            lines = "".join(json.dumps(r) + "\n" for r in self.batches[batch_id]["results"])
            return Step(body=lines.encode(), headers={"content-type": "application/binary"})
        self.batches[batch_id]["polls"] += 1
        return Step(body=self._batch_object(batch_id))

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        ended = batch["polls"] > 1
        kinds = [r["result"]["type"] for r in batch["results"]]
        return {
            "id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": {"processing": 0 if ended else len(kinds), "succeeded": kinds.count("succeeded") if ended else 0,
                               "errored": kinds.count("errored") if ended else 0, "canceled": 0, "expired": 0},
            "created_at": "2026-06-01T09:00:00Z", "expires_at": "2026-06-02T09:00:00Z",
            "ended_at": "2026-06-01T09:01:00Z" if ended else None, "cancel_initiated_at": None, "archived_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    @property
    def message_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.startswith("/v1/messages")]

    def unscripted(self, req: LoggedRequest) -> Step:
        return error(500, "fake server: no scripted reply for this request", retry_after_ms=None)(req)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    forget_cache()
    server = FakeAnthropicServer().start()
    try:
        yield server
    finally:
        server.stop()
