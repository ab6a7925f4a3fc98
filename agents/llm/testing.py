"""Providers for tests, in the manner of pydantic-ai's `TestModel` and `FunctionModel`.

Put one in place of a real provider, under the route name it stands in for, and `reason()` treats
its answer as a model's: the reply is validated against the agent's Decision, checked for
contradictions, compared with the offline reasoner and combined into a confidence. No socket, no key:

    reason(agent, ctx, provider="anthropic", providers={"anthropic": FixedProvider(decision)})
    reason(agent, ctx, provider="anthropic", providers={"anthropic": FunctionProvider(lambda request: {...})})

Both are local and free by default (`is_local=True`, so no price is looked up); pass
`is_local=False` to test what a remote model's decision costs. Each records the requests it was
given in `requests`. To fail like a model, a `FunctionProvider`'s function raises
`agents.llm.reply.ProviderFailure` (with `outage=True` for an endpoint that does not answer).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from agents.base import Usage
from agents.llm.provider import CallLimits, ModelRequest
from agents.llm.reply import ModelReply

__all__ = ["FixedProvider", "FunctionProvider"]

TEST_MODEL = "test-model"


def _as_reply(answer: Any, model: str, usage: Usage) -> ModelReply:
    """A ModelReply as is; a pydantic model as the JSON a model would send; anything else as the payload."""
    if isinstance(answer, ModelReply):
        return answer
    payload = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
    return ModelReply(payload=payload, model=model, usage=usage)


class FunctionProvider:
    """Answers each request with `function(request)`: a Decision, a dict of its JSON, or a ModelReply."""

    is_model = True

    def __init__(self, function: Callable[[ModelRequest], Any], *, name: str = "function", is_local: bool = True,
                 model: str = TEST_MODEL, usage: Usage | None = None) -> None:
        self.function = function
        self.name = name
        self.is_local = is_local
        self.model = model
        self.usage = usage or Usage()
        self.requests: list[ModelRequest] = []
        self.limits: list[CallLimits | None] = []

    def model_for(self, request: ModelRequest) -> str:
        return self.model

    def complete(self, request: ModelRequest, limits: CallLimits | None) -> ModelReply:
        self.requests.append(request)
        self.limits.append(limits)
        return _as_reply(self.function(request), self.model, self.usage)


class FixedProvider(FunctionProvider):
    """Answers every request with the same decision (a Decision or a dict of its JSON)."""

    def __init__(self, decision: BaseModel | dict[str, Any], *, name: str = "fixed", is_local: bool = True,
                 model: str = TEST_MODEL, usage: Usage | None = None) -> None:
        super().__init__(lambda _request: decision, name=name, is_local=is_local, model=model, usage=usage)
        self.decision = decision
