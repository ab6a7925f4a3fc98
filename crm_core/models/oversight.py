"""Decisions, their executed actions, policies, the audit log and the outbox."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class Decision(Base):
    """One agent decision about one subject, from proposal to execution or revert."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_status_created", "status", "created_at"),
        Index("ix_decisions_agent_created", "agent", "created_at"),
        Index("ix_decisions_subject", "subject_type", "subject_id"),
        Index("ix_decisions_context_hash", "agent", "subject_type", "subject_id", "context_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))  # contact | deal | meeting | account | pipeline
    subject_id: Mapped[int | None]
    subject_label: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    # A retried job carries the same key: a decision is stored, and executed, once.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    confidence: Mapped[float | None]        # the combined figure the policy uses
    model_confidence: Mapped[float | None]  # what the reasoner said of itself
    confidence_factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reasoning: Mapped[str | None] = mapped_column(Text)
    escalation: Mapped[str | None] = mapped_column(Text)  # why a human must look, if so
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the typed decision, as JSON
    actions: Mapped[list[Any]] = mapped_column(default=list)  # proposed actions [{type, params, reason}]
    context_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context_hash: Mapped[str | None] = mapped_column(String(64))
    prompt_version: Mapped[str | None] = mapped_column(String(40))
    provider: Mapped[str | None] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(100))
    is_local: Mapped[bool] = mapped_column(default=True)  # False = the context left this machine
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    cache_read_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=0)
    latency_ms: Mapped[int | None]
    stakes: Mapped[str | None] = mapped_column(String(10))
    reversible: Mapped[bool] = mapped_column(default=True)
    policy_verdict: Mapped[str | None] = mapped_column(String(20))  # auto | queue
    policy_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_note: Mapped[str | None] = mapped_column(Text)  # the human's reason
    executed_at: Mapped[datetime | None]
    reverted_at: Mapped[datetime | None]
    reverted_by: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)


class ActionExecution(Base):
    """One executed action with the before-image its revert restores."""

    __tablename__ = "action_executions"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    action_type: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="executed")  # executed | failed | reverted
    before_image: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    executed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reverted_at: Mapped[datetime | None]
    revert_note: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only. Database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_decision", "decision_id"),
        Index("ix_audit_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    actor: Mapped[str] = mapped_column(String(200))  # user name, "agent:<name>", "system", "scheduler"
    event: Mapped[str] = mapped_column(String(60))   # decision.created, decision.approved, action.executed, ...
    decision_id: Mapped[int | None]
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Policy(Base):
    """How much an action type may do alone. Edited from the dashboard; every change audited."""

    __tablename__ = "policies"

    action_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    stakes: Mapped[str] = mapped_column(String(10))
    threshold: Mapped[float]  # combined confidence at or above which it runs by itself
    always_ask: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class AgentSetting(Base):
    __tablename__ = "agent_settings"

    agent: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Supervised mode: every decision is queued until this time, or for this many decisions.
    supervised_until: Mapped[datetime | None]
    supervised_remaining: Mapped[int | None]
    provider: Mapped[str | None] = mapped_column(String(20))  # None = the global default
    daily_token_budget: Mapped[int | None]
    daily_cost_budget_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    """Outgoing email or notification. With no sink configured it is held here, never sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # email | notification
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)  # [{filename, content_type, content}]
    status: Mapped[str] = mapped_column(String(20), default="held")
    send_after: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    sink: Mapped[str | None] = mapped_column(String(20))  # smtp | webhook | outbox
    error: Mapped[str | None] = mapped_column(Text)
