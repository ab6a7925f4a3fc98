"""One agent run: store -> contexts -> reasoning -> oversight. The glue between the layers.

The agent itself never sees a session: the runner builds its contexts through
`crm_core.contexts.<agent>` in one read, hands each context to `agents.llm.reason`, and passes
each resulting envelope to `crm_core.oversight.submit` in its own unit of work, so one failed
subject never rolls back another's decision.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from agents.base import DecisionEnvelope, context_hash
from agents.registry import get_agent
from crm_core import clock
from crm_core.budget import spend_today
from crm_core.contexts import builder
from crm_core.db import unit_of_work
from crm_core.models import Decision


class SubjectOutcome(BaseModel):
    subject_key: str
    decision_ids: list[int] = []
    skipped: str | None = None  # why no reasoning happened (unchanged context)
    failed: bool = False
    error: str | None = None
    provider: str | None = None


class RunResult(BaseModel):
    agent: str
    as_of: datetime
    provider: str | None
    outcomes: list[SubjectOutcome] = []

    @property
    def decision_ids(self) -> list[int]:
        return [i for o in self.outcomes for i in o.decision_ids]

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)


def _subject_key(agent_name: str, ctx: BaseModel, index: int) -> str:
    for attr in ("contact_id", "deal_id", "meeting_id", "account_id", "subject_id"):
        value = getattr(ctx, attr, None)
        if value is not None:
            return f"{agent_name}:{attr.removesuffix('_id')}:{value}"
    return f"{agent_name}:batch:{index}"


def _unchanged(session, agent_name: str, digest: str) -> bool:
    """True when a decision was already made on exactly this context (the hash covers the subject)."""
    hit = session.scalar(
        select(Decision.id)
        .where(Decision.agent == agent_name, Decision.context_hash == digest, Decision.status != "failed")
        .limit(1)
    )
    return hit is not None


def run_agent(
    agent_name: str,
    *,
    subject_ids: Sequence[int] | None = None,
    provider: str | None = None,
    as_of: datetime | None = None,
    idempotency_key: str | None = None,
    skip_unchanged: bool = False,
    client_factory: Callable[..., Any] | None = None,
    on_envelope: Callable[[DecisionEnvelope], None] | None = None,
) -> RunResult:
    """Run `agent_name` over `subject_ids` (default: every subject due at `as_of`)."""
    from agents.llm import reason
    from crm_core import oversight

    agent = get_agent(agent_name)
    contexts_module = builder(agent_name)
    as_of = clock.to_naive_utc(as_of) if as_of else clock.now()

    # prepare() may store a freshly learned model, so it runs in a writing unit of work.
    with unit_of_work() as session:
        prepared = contexts_module.prepare(session, as_of=as_of) if hasattr(contexts_module, "prepare") else None
    with unit_of_work(readonly=True) as session:
        ids = list(subject_ids) if subject_ids is not None else contexts_module.subjects(session, as_of=as_of)
        contexts = contexts_module.build(session, ids, as_of=as_of, prepared=prepared) if ids or subject_ids is None else []
        approval_stats = oversight.approval_stats(session, agent_name)
        budget_spent = spend_today(session, agent_name, at=as_of).exhausted

    result = RunResult(agent=agent_name, as_of=as_of, provider=provider)
    for index, ctx in enumerate(contexts):
        key = _subject_key(agent_name, ctx, index)
        outcome = SubjectOutcome(subject_key=key)
        result.outcomes.append(outcome)
        digest = context_hash(ctx)
        if skip_unchanged:
            with unit_of_work(readonly=True) as session:
                if _unchanged(session, agent_name, digest):
                    outcome.skipped = "context unchanged since the last decision"
                    continue
        envelope = reason(
            agent,
            ctx,
            provider=provider,
            approval_stats=approval_stats,
            budget_exhausted=budget_spent,
            client_factory=client_factory,
        )
        if on_envelope:
            on_envelope(envelope)
        outcome.provider = envelope.provider
        outcome.failed = envelope.failed
        outcome.error = envelope.error
        # The same context reasoned twice (a retried job) must not be executed twice.
        ikey = f"{idempotency_key}:{key}" if idempotency_key else f"{key}:{digest[:16]}:{as_of.isoformat()}"
        with unit_of_work() as session:
            outcome.decision_ids = oversight.submit(session, envelope, idempotency_key=ikey)
    return result
