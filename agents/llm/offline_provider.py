"""The built-in reasoner: the agent's own `offline_decide(ctx)`, no model, nothing leaves the machine.

`OfflineProvider` puts it behind the `agents.llm.provider.Provider` interface: local, free, and not
a model (no breaker, no reply checks, no comparison with itself). It is also where `reason()`
turns when a model may not or cannot answer (privacy, budget, an open breaker, a passed deadline).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agents.llm.provider import CallLimits, ModelRequest
from agents.llm.reply import ModelReply

OFFLINE_MODEL = "offline-v1"


def decide(agent: Any, ctx: BaseModel) -> BaseModel:
    """The agent's offline decision, checked to be an instance of its Decision model."""
    decision = agent.offline_decide(ctx)
    if isinstance(decision, agent.Decision):
        return decision
    # An agent may return a dict or another model; it must still fit its own schema.
    data = decision.model_dump(mode="json") if isinstance(decision, BaseModel) else decision
    return agent.Decision.model_validate(data)


class OfflineProvider:
    """The agent's own reasoner as a provider; its reply carries the Decision itself, already checked."""

    name = "offline"
    is_local = True
    is_model = False

    def model_for(self, request: ModelRequest) -> str:
        return OFFLINE_MODEL

    def complete(self, request: ModelRequest, limits: CallLimits | None) -> ModelReply:
        return ModelReply(payload=decide(request.agent, request.ctx), model=OFFLINE_MODEL)
