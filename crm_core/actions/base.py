"""The action registry: discrete, reversible actions. It executes; it never decides.

Each action type is an `ActionSpec` with typed parameters, `execute` (which returns the
before-image its revert needs) and `revert`. Specs register themselves on import; `REGISTRY`
maps the names of `agents.base.ActionType` to their spec.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from crm_core.models import Decision
from crm_core.settings import Settings


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    session: Session          # the unit of work the execution runs in
    decision: Decision        # the approved decision being executed
    actor: str                # who caused it: a user name or "agent:<name>" for auto-approval
    settings: Settings


@dataclass
class ExecResult:
    before_image: dict[str, Any] = field(default_factory=dict)  # exactly what revert restores
    result: dict[str, Any] = field(default_factory=dict)        # ids created, message ids, ...


class ActionSpec(ABC):
    type: ClassVar[str]
    Params: ClassVar[type[ActionParams]]
    reversible: ClassVar[bool] = True
    # Shown in the queue before anyone approves, e.g. "an email cannot be unsent".
    undo_note: ClassVar[str] = "can be reverted"

    @abstractmethod
    def execute(self, ctx: ActionContext, params: ActionParams) -> ExecResult: ...

    @abstractmethod
    def revert(self, ctx: ActionContext, params: ActionParams, done: ExecResult) -> str:
        """Undo `execute`; returns a note for the audit log (what was restored, or why nothing could be)."""


REGISTRY: dict[str, ActionSpec] = {}


def register(spec_cls: type[ActionSpec]) -> type[ActionSpec]:
    REGISTRY[spec_cls.type] = spec_cls()
    return spec_cls


def get_spec(action_type: str) -> ActionSpec:
    from crm_core import actions  # noqa: F401  (importing the package registers every spec)

    try:
        return REGISTRY[action_type]
    except KeyError:
        raise KeyError(f"unknown action type {action_type!r}; allowed: {sorted(REGISTRY)}") from None
