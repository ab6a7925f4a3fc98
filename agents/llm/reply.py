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
    """The call produced nothing usable. `usage` keeps tokens a bad reply still consumed."""

    def __init__(self, message: str, *, usage: Usage | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage or Usage()
        self.model = model
