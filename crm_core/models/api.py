"""What the HTTP API, webhooks and the mailbox poller keep in the store.

Every guarantee against doing a thing twice is a unique key here, not memory in one process, so
it holds across API workers, scheduler workers and restarts:
- a retried POST finds its `Idempotency-Key` (per caller) and gets the first answer back;
- an outbound event is delivered at most once per subscription (subscription, event id);
- a mail message is recorded once (its Message-ID).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class IdempotencyRecord(Base):
    """One POST with an Idempotency-Key: the body's hash and the answer it got."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"), Index("ix_api_idempotency_keys_created", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))  # who sent it: "user:<id>" or "source:<name>"
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(default=200)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookSource(Base):
    """A system allowed to post events to /v1/webhooks/<name>, proving it with an HMAC of this secret."""

    __tablename__ = "webhook_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # signed: a server signs each request with the secret (HMAC). browser: the website snippet;
    # its key is public, so it may send only page views, downloads and form fills, and only from
    # the allowed origins (CRM_API_CORS_ORIGINS).
    kind: Mapped[str] = mapped_column(String(20), default="signed")
    # Kept in clear: verifying an HMAC needs the secret itself (a hash would not do).
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None]


class WebhookSubscription(Base):
    """An outside URL that hears what the agents decided, signed with its own secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(default=list)  # decision.queued, deal.risk_changed, ...
    secret: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(Base):
    """One event for one subscription, from queued to delivered (or given up), with its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(100))  # "audit:<id>": the audit entry it reports
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    lease_expires_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    delivered_at: Mapped[datetime | None]


class MailMessage(Base):
    """A mail message the CRM has seen (read from the shared inbox), keyed by its Message-ID."""

    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(500), unique=True)
    email_id: Mapped[int | None] = mapped_column(ForeignKey("emails.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    mailbox: Mapped[str | None] = mapped_column(String(300))
    matched_by: Mapped[str | None] = mapped_column(String(20))  # thread | sender | none
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
