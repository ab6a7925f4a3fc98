"""A local model through the `ollama` client: where sensitive records are reasoned about.

`chat(format=<JSON schema>)` makes Ollama constrain decoding to the decision's schema; the reply
is still validated against the pydantic model by `reason()`. The ollama client has no retries
of its own, so this module retries connection errors, timeouts, 429 and 5xx with exponential
backoff, `settings.max_retries` times, like the Anthropic SDK does. Temperature 0: the same
context should get the same decision. `OllamaProvider` is this module behind the
`agents.llm.provider.Provider` interface.
"""
from __future__ import annotations

import json
import time
from typing import Any

import httpx
import ollama
from pydantic import BaseModel

from agents.base import Usage
from agents.llm.provider import CallLimits, ClientFactory, ModelRequest
from agents.llm.reply import ModelReply, ProviderFailure
from agents.llm.settings import LLMSettings

BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 4.0


def build_client(settings: LLMSettings) -> ollama.Client:
    if not settings.ollama_host:
        raise ProviderFailure("ollama: CRM_OLLAMA_HOST is not set")
    return ollama.Client(host=settings.ollama_host, timeout=settings.timeout_s)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (ConnectionError, httpx.TransportError))


def _describe(exc: Exception, host: str, timeout_s: float, attempts: int) -> str:
    after = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, httpx.TimeoutException):
        return f"ollama: no reply from {host} within {timeout_s}s{after}"
    if isinstance(exc, ollama.ResponseError):
        return f"ollama: HTTP {exc.status_code} from {host}{after}: {str(exc.error)[:300]}"
    if isinstance(exc, (ConnectionError, httpx.TransportError)):
        return f"ollama: could not reach {host}{after} ({exc})"
    return f"ollama: {type(exc).__name__}: {exc}"


def call(
    client: ollama.Client,
    *,
    model: str,
    system: str,
    user: str,
    decision_model: type[BaseModel],
    max_retries: int,
    host: str,
    timeout_s: float,
) -> ModelReply:
    schema = decision_model.model_json_schema()
    attempts = 0
    while True:
        attempts += 1
        try:
            response = client.chat(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                format=schema,
                stream=False,
                options={"temperature": 0},
            )
            break
        except Exception as exc:  # the client raises ResponseError, ConnectionError and raw httpx errors
            if attempts > max_retries or not _retryable(exc):
                raise ProviderFailure(_describe(exc, host, timeout_s, attempts), model=model,
                                      outage=_retryable(exc) or isinstance(exc, ollama.ResponseError),
                                      attempts=attempts) from exc
            time.sleep(min(BACKOFF_BASE_S * 2 ** (attempts - 1), BACKOFF_MAX_S))

    usage = Usage(input_tokens=response.prompt_eval_count or 0, output_tokens=response.eval_count or 0)
    answered_by = response.model or model
    text = (response.message.content or "").strip() if response.message else ""
    if response.done_reason == "length":
        raise ProviderFailure("ollama: reply cut off at the context/length limit, the decision is incomplete", usage=usage, model=answered_by)
    if not text:
        raise ProviderFailure(f"ollama: empty reply (done_reason {response.done_reason})", usage=usage, model=answered_by)
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderFailure(f"ollama: reply is not JSON ({exc.msg} at char {exc.pos}): {text[:120]!r}", usage=usage, model=answered_by) from exc
    return ModelReply(payload=payload, model=answered_by, usage=usage, stop_reason=response.done_reason)


class OllamaProvider:
    """A local model: one configured model for every tier, a client per call unless a factory supplies it."""

    name = "ollama"
    is_local = True
    is_model = True

    def __init__(self, settings: LLMSettings, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self.client_factory = client_factory

    def model_for(self, request: ModelRequest) -> str:
        return self.settings.ollama_model

    def complete(self, request: ModelRequest, limits: CallLimits | None) -> ModelReply:
        system, user, book = request.system, request.user, request.book
        settings = self.settings
        client = self.client_factory(self.name, settings) if self.client_factory else build_client(settings)
        try:
            return call(
                client,
                model=settings.ollama_model,
                system=f"{system}\n\n{book}" if book else system,
                user=user,
                decision_model=request.decision_model,
                max_retries=limits.max_retries if limits is not None else settings.max_retries,
                host=settings.ollama_host or "?",
                timeout_s=settings.timeout_s,
            )
        finally:
            if self.client_factory is None:  # ours to close; a supplied client belongs to the caller
                client.close()
