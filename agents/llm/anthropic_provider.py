"""Claude through the official `anthropic` SDK, with the output schema enforced by the API.

The request is exactly what `client.messages.parse(output_format=Decision)` sends (the tests
compare the two): `output_config.format` = the SDK's `transform_schema(Decision)`. We call
`messages.create` with that config instead of `parse` because `parse` validates the text inside
the SDK before the caller can see `stop_reason`: a refusal would surface as a JSON error instead
of "the model refused". The reply is validated against the pydantic model afterwards by
`reason()` (structured outputs move numeric bounds into descriptions, so the API alone does not
enforce them).

The instructions and the context's book block (the learned model's summary, the policy, worked
examples) go as system blocks marked `cache_control: ephemeral` (`system_blocks`): every decision
of an agent on one book shares them, so after the first request of a run they are read from the
prompt cache once they reach the model's cacheable minimum (agents.llm.caching). Retries with backoff on
408/409/429/5xx/529 and the timeout are the SDK's own (`max_retries`, `timeout` from settings).

`AnthropicProvider` is this module behind the `agents.llm.provider.Provider` interface.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import anthropic
from pydantic import BaseModel

from agents.base import Usage
from agents.llm.caching import estimate_tokens, min_cacheable_tokens
from agents.llm.provider import DEFAULT_MAX_TOKENS, CallLimits, ClientFactory, ModelRequest
from agents.llm.reply import ModelReply, ProviderFailure
from agents.llm.routing import model_for
from agents.llm.settings import LLMSettings

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicProvider", "build_client", "call", "output_config", "system_blocks"]


@lru_cache(maxsize=8)
def _cached_client(api_key: str, base_url: str | None, timeout_s: float, max_retries: int) -> anthropic.Anthropic:
    # One client per configuration keeps its connection pool across the subjects of a run.
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)


def build_client(settings: LLMSettings) -> anthropic.Anthropic:
    if not settings.anthropic_api_key:
        raise ProviderFailure("anthropic: ANTHROPIC_API_KEY is not set")
    return _cached_client(
        settings.anthropic_api_key, settings.anthropic_base_url, settings.timeout_s, settings.max_retries
    )


def output_config(decision_model: type[BaseModel]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": anthropic.transform_schema(decision_model)}}


SCHEMA_LEAD = "\n\nThe reply is one JSON object that follows this JSON Schema:\n"


def system_blocks(
    system: str, decision_model: type[BaseModel], model: str, book: str | None = None
) -> list[dict[str, Any]]:
    """The stable part of every request of an agent on one book, marked for the prompt cache.

    First block: the instructions, with the output schema written out after them when that lifts
    the stable prefix to the model's cacheable minimum (a cached prefix is read at a tenth of the
    input price, while a prefix under the minimum is never cached, so the schema would only add
    full-price tokens). Second block, when the context carries one: the book block (the learned
    model's summary, the policy, worked examples; agents.llm.book), the same for every subject of
    the run. Both are marked: the last mark caches the whole prefix, the first lets a new book
    block still read the instructions when they reach the minimum alone. The per-subject part
    (the context) goes in the user message after them.
    """
    schema = json.dumps(output_config(decision_model)["format"]["schema"], sort_keys=True, separators=(",", ":"))
    with_schema = f"{system}{SCHEMA_LEAD}{schema}"
    stable_tokens = estimate_tokens(with_schema) + (estimate_tokens(book) if book else 0)
    first = with_schema if stable_tokens >= min_cacheable_tokens(model) else system
    blocks = [{"type": "text", "text": first, "cache_control": {"type": "ephemeral"}}]
    if book:
        blocks.append({"type": "text", "text": book, "cache_control": {"type": "ephemeral"}})
    return blocks


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(
        input_tokens=getattr(raw, "input_tokens", 0) or 0,
        output_tokens=getattr(raw, "output_tokens", 0) or 0,
        cache_read_tokens=getattr(raw, "cache_read_input_tokens", 0) or 0,
        cache_write_tokens=getattr(raw, "cache_creation_input_tokens", 0) or 0,
    )


def _describe_api_error(exc: anthropic.APIError, client: anthropic.Anthropic) -> str:
    retries = client.max_retries
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}"
    if isinstance(exc, anthropic.APITimeoutError):
        return f"anthropic: no reply within {client.timeout}s{after}"
    if isinstance(exc, anthropic.APIConnectionError):
        return f"anthropic: could not reach {client.base_url}{after} ({exc})"
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        kind = {429: "rate limited", 529: "overloaded", 401: "rejected the API key", 403: "refused access"}.get(
            status, "server error" if status >= 500 else "rejected the request"
        )
        retried = after if (status in (408, 409, 429) or status >= 500) else ""
        return f"anthropic: {kind} (HTTP {status}){retried}: {_api_message(exc)}"
    return f"anthropic: {type(exc).__name__}: {exc}"


def _attempts(exc: anthropic.APIError, client: anthropic.Anthropic) -> int:
    """How many attempts the SDK made: every retryable failure was retried max_retries times."""
    if isinstance(exc, anthropic.APIStatusError) and not (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
        return 1
    return client.max_retries + 1


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc)[:300]


def call(
    client: anthropic.Anthropic,
    *,
    model: str,
    system: str,
    user: str,
    decision_model: type[BaseModel],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    book: str | None = None,
) -> ModelReply:
    """One Messages API call; raises ProviderFailure with a clear message when nothing usable came back.

    `book`: the rendered book block (agents.llm.book), sent after the instructions in the system.
    """
    try:
        message = client.messages.create(
            model=model,
            max_tokens=max_tokens,
            system=system_blocks(system, decision_model, model, book),
            messages=[{"role": "user", "content": user}],
            output_config=output_config(decision_model),  # type: ignore[arg-type]
        )
    except anthropic.APIError as exc:
        raise ProviderFailure(_describe_api_error(exc, client), model=model, outage=True,
                              attempts=_attempts(exc, client)) from exc

    usage = _usage(message.usage)
    answered_by = message.model or model
    text = "".join(block.text for block in message.content if getattr(block, "type", None) == "text").strip()
    if message.stop_reason == "refusal":
        said = f": {text[:200]}" if text else ""
        raise ProviderFailure(f"anthropic: the model refused to decide (stop_reason refusal){said}", usage=usage, model=answered_by)
    if message.stop_reason == "max_tokens":
        raise ProviderFailure(
            f"anthropic: reply cut off at max_tokens={max_tokens}, the decision is incomplete", usage=usage, model=answered_by
        )
    if not text:
        raise ProviderFailure(
            f"anthropic: empty reply (stop_reason {message.stop_reason})", usage=usage, model=answered_by
        )
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderFailure(f"anthropic: reply is not JSON ({exc.msg} at char {exc.pos}): {text[:120]!r}", usage=usage, model=answered_by) from exc
    return ModelReply(payload=payload, model=answered_by, usage=usage, stop_reason=message.stop_reason)


class AnthropicProvider:
    """Claude, remote: the model of the request's tier, the client from settings unless a factory supplies it."""

    name = "anthropic"
    is_local = False
    is_model = True

    def __init__(self, settings: LLMSettings, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self.client_factory = client_factory

    def model_for(self, request: ModelRequest) -> str:
        return model_for(request.tier, self.settings)

    def complete(self, request: ModelRequest, limits: CallLimits | None) -> ModelReply:
        # The prompt first: an agent that cannot render its context fails before any client is made.
        system, user, book, max_tokens = request.system, request.user, request.book, request.max_tokens
        model = self.model_for(request)
        settings = self.settings
        client = self.client_factory(self.name, settings) if self.client_factory else build_client(settings)
        if limits is not None and (limits.timeout_s, limits.max_retries) != (settings.timeout_s, settings.max_retries):
            client = client.with_options(timeout=limits.timeout_s, max_retries=limits.max_retries)
        return call(client, model=model, system=system, user=user, decision_model=request.decision_model,
                    max_tokens=max_tokens, book=book)
