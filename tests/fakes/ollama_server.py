"""A fake Ollama server on 127.0.0.1 (POST /api/chat) that the real `ollama` client talks to.

Scripted like the fake Anthropic server: `chat_json` / `chat_text` (a finished, non-streamed chat
reply with token counts), `ollama_error` (Ollama's `{"error": ...}` body), `hang`. Unscripted
requests get a 500, so an unexpected call fails loudly. Every request is logged.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import LoggedRequest, Responder, ScriptedServer, Step, hang

__all__ = ["FakeOllamaServer", "chat_json", "chat_text", "fake_ollama", "hang", "ollama_error"]


def chat_text(
    text: str, *, done_reason: str = "stop", prompt_eval_count: int = 300, eval_count: int = 60
) -> Responder:
    def respond(req: LoggedRequest) -> Step:
        body = req.body if isinstance(req.body, dict) else {}
        return Step(
            body={
                "model": body.get("model", "llama-test"),
                "created_at": "2026-11-24T08:00:00.000000Z",
                "message": {"role": "assistant", "content": text},
                "done": True,
                "done_reason": done_reason,
                "total_duration": 1_000_000,
                "load_duration": 1_000,
                "prompt_eval_count": prompt_eval_count,
                "prompt_eval_duration": 1_000,
                "eval_count": eval_count,
                "eval_duration": 1_000,
            }
        )

    return respond


def chat_json(obj: Any, **kwargs: Any) -> Responder:
    return chat_text(json.dumps(obj), **kwargs)


def ollama_error(status: int, message: str = "fake ollama error") -> Responder:
    def respond(req: LoggedRequest) -> Step:
        return Step(status=status, body={"error": message})

    return respond


class FakeOllamaServer(ScriptedServer):
    """`url` is the ollama client's host."""

    thread_name = "fake-ollama"

    @property
    def chat_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == "/api/chat"]


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllamaServer]:
    server = FakeOllamaServer().start()
    try:
        yield server
    finally:
        server.stop()
