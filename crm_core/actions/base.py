"""The action registry: discrete, reversible actions. It executes; it never decides.

Each action type is an `ActionSpec`, declared once: typed parameters, `execute` (which returns
the before-image its revert needs), `revert`, and the policy the type starts with (stakes, the
confidence threshold, always ask), what a human may edit before approving and whether it can be
undone. Oversight derives its defaults from these declarations. Specs register themselves when
`crm_core.actions` imports their module; `REGISTRY` maps the names of `agents.base.ActionType`
to their spec (a test checks the two lists agree).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from crm_core.actions.sink import Sinks, sinks_for
from crm_core.models import Decision
from crm_core.models.enums import Stakes
from crm_core.settings import Settings


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    session: Session          # the unit of work the execution runs in
    decision: Decision        # the approved decision being executed
    actor: str                # who caused it: a user name or "agent:<name>" for auto-approval
    settings: Settings
    # Where its emails and notifications go; left out, the session's (see crm_core.actions.sink).
    sinks: Sinks | None = None

    def __post_init__(self) -> None:
        if self.sinks is None:
            self.sinks = sinks_for(self.session, self.settings)


@dataclass
class ExecResult:
    before_image: dict[str, Any] = field(default_factory=dict)  # exactly what revert restores
    result: dict[str, Any] = field(default_factory=dict)        # ids created, message ids, ...


class ActionSpec(ABC):
    type: ClassVar[str]
    Params: ClassVar[type[ActionParams]]
    # The policy the type starts with; a manager may change it later (it is stored, and audited).
    stakes: ClassVar[Stakes]
    default_threshold: ClassVar[float]  # the combined confidence at or above which it runs without a human
    always_ask: ClassVar[bool] = False
    # Why a person looks at every one of these whatever the stored policy says, in plain words.
    asks_because: ClassVar[str | None] = None
    # The text a human may change before approving, as (param, multi-line); the rest (recipient,
    # record ids, amounts) stays as the agent derived it from the store.
    editable_fields: ClassVar[tuple[tuple[str, bool], ...]] = ()
    reversible: ClassVar[bool] = True
    # Shown in the queue before anyone approves, e.g. "an email cannot be unsent".
    undo_note: ClassVar[str] = "can be reverted"

    @abstractmethod
    def execute(self, ctx: ActionContext, params: ActionParams) -> ExecResult: ...

    @abstractmethod
    def revert(self, ctx: ActionContext, params: ActionParams, done: ExecResult) -> str:
        """Undo `execute`; returns a note for the audit log (what was restored, or why nothing could be)."""


REGISTRY: dict[str, ActionSpec] = {}


_DECLARED = ("type", "Params", "stakes", "default_threshold")


def register(spec_cls: type[ActionSpec]) -> type[ActionSpec]:
    # Refused at import, not at the first decision: a type without a policy would otherwise fall
    # back to "always ask" silently.
    missing = [name for name in _DECLARED if not hasattr(spec_cls, name)]
    if missing:
        raise TypeError(f"action spec {spec_cls.__name__} does not declare {', '.join(missing)}")
    if not 0.0 <= spec_cls.default_threshold <= 1.0:
        raise TypeError(f"action spec {spec_cls.__name__}: default_threshold {spec_cls.default_threshold} is not between 0 and 1")
    if spec_cls.type in REGISTRY:
        raise TypeError(f"action type {spec_cls.type!r} is declared twice")
    REGISTRY[spec_cls.type] = spec_cls()
    return spec_cls


def get_spec(action_type: str) -> ActionSpec:
    try:
        return REGISTRY[action_type]
    except KeyError:
        raise KeyError(f"unknown action type {action_type!r}; allowed: {sorted(REGISTRY)}") from None
