"""Agent name -> everything a run needs about that agent, written out once and typed.

An entry holds the agent (the reasoning, `agents.registry`), its context builder module
(`crm_core.contexts.<agent>`), the decision model a reasoner must return and the action types its
proposals may carry. Every name is imported at the top: an agent without a builder, or a builder
without `prepare`, `subjects` or `build`, fails when this module loads (and in tests/test_registry.py),
not in the middle of a run.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from sqlalchemy.orm import Session

from agents.base import ActionType, Agent
from agents.registry import AGENTS
from crm_core.contexts import enrichment, follow_up, lead_scoring, meeting, pipeline


@runtime_checkable
class ContextBuilder(Protocol):
    """What the runner calls on `crm_core.contexts.<agent>` (a module satisfies it by its functions)."""

    def prepare(self, session: Session, *, as_of: datetime) -> Any:
        """What a run learns once before building (a scorer, a playbook), or None."""

    def subjects(self, session: Session, *, as_of: datetime) -> list[int]:
        """The subject ids a full run covers at `as_of`."""

    def build(self, session: Session, subject_ids: Sequence[int], *, as_of: datetime,
              prepared: Any = None) -> Sequence[BaseModel]:
        """The contexts of those subjects as the store stood at `as_of`."""


@dataclass(frozen=True)
class AgentEntry:
    agent: Agent
    contexts: ContextBuilder
    decision: type[BaseModel]
    actions: frozenset[ActionType]


def _entry(name: str, contexts: ContextBuilder, actions: frozenset[ActionType]) -> AgentEntry:
    agent = AGENTS[name]
    return AgentEntry(agent=agent, contexts=contexts, decision=agent.Decision, actions=actions)


REGISTRY: dict[str, AgentEntry] = {
    "lead_scoring": _entry("lead_scoring", lead_scoring, frozenset({"update_lead_score", "create_task"})),
    "follow_up": _entry("follow_up", follow_up, frozenset({"send_email", "create_task"})),
    "enrichment": _entry("enrichment", enrichment, frozenset({"write_enrichment", "merge_contacts"})),
    "pipeline": _entry("pipeline", pipeline, frozenset({"set_deal_risk", "create_task"})),
    "meeting": _entry("meeting", meeting, frozenset({"schedule_meeting", "save_meeting_brief", "create_action_items"})),
}


def entry(agent_name: str) -> AgentEntry:
    found = REGISTRY.get(agent_name)
    if found is None:
        raise KeyError(f"unknown agent {agent_name!r}; one of: {', '.join(REGISTRY)}")
    return found


def builder(agent_name: str) -> ContextBuilder:
    """The context builder module of `agent_name`."""
    return entry(agent_name).contexts
