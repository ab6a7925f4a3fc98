"""The built-in reasoner: the agent's own `offline_decide(ctx)`, no model, nothing leaves the machine."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

OFFLINE_MODEL = "offline-v1"


def decide(agent: Any, ctx: BaseModel) -> BaseModel:
    """The agent's offline decision, checked to be an instance of its Decision model."""
    decision = agent.offline_decide(ctx)
    if isinstance(decision, agent.Decision):
        return decision
    # An agent may return a dict or another model; it must still fit its own schema.
    data = decision.model_dump(mode="json") if isinstance(decision, BaseModel) else decision
    return agent.Decision.model_validate(data)
