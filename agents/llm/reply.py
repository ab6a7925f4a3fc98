"""What a model provider hands back to `reason()`, and how it says it failed."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.base import Usage


class ModelReply(BaseModel):
    """A model's answer before schema validation: the parsed JSON plus what the call cost."""

    model_config = ConfigDict(frozen=True)

    payload: Any
    model: str
    usage: Usage = Usage()
    stop_reason: str | None = None


class ProviderFailure(Exception):
    """The call produced nothing usable. `usage` keeps tokens a bad reply still consumed.

    `outage`: the endpoint did not answer usefully at all (time-out, connection refused, HTTP
    429/5xx/529, a rejected key): what the circuit breaker counts, `attempts` times. A reply that
    came back but was empty, cut off, refused or not JSON is the model's failure, not an outage.
    """

    def __init__(self, message: str, *, usage: Usage | None = None, model: str | None = None,
                 outage: bool = False, attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage or Usage()
        self.model = model
        self.outage = outage
        self.attempts = attempts
