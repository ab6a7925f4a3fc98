"""Users, accounts and contacts."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.models.base import Base, Timestamped


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), default="rep")
    is_senior: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Working hours in the user's own time zone, hour of day, [start, end).
    work_start_hour: Mapped[int] = mapped_column(default=9)
    work_end_hour: Mapped[int] = mapped_column(default=17)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team: Mapped[str | None] = mapped_column(String(100))


class Account(Timestamped, Base):
    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_domain", "domain"), Index("ix_accounts_name_lower", "name_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    # Lower-cased, trimmed name: the key accounts dedupe on when no domain is known.
    name_key: Mapped[str] = mapped_column(String(300))
    domain: Mapped[str | None] = mapped_column(String(255))
    industry: Mapped[str | None] = mapped_column(String(200))
    employee_count: Mapped[int | None]
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))  # in the account's currency, whole units
    country: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sensitive: Mapped[bool] = mapped_column(default=False)  # never sent to a remote model
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fields a human typed; no agent overwrites them without review.
    manual_fields: Mapped[list[Any]] = mapped_column(default=list)


class Contact(Timestamped, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_owner_score", "owner_id", "score"),
        Index("ix_contacts_stage", "lifecycle_stage"),
        Index("ix_contacts_tier_score", "tier", "score"),
        Index("ix_contacts_phone", "phone_normalized"),
        Index("ix_contacts_last_activity", "last_activity_at"),
        Index("ix_contacts_source", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # lower(email): emails are unique case-insensitively, on SQLite and PostgreSQL alike.
    email_normalized: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_normalized: Mapped[str | None] = mapped_column(String(32))  # E.164 where it can be read
    title: Mapped[str | None] = mapped_column(String(300))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str | None] = mapped_column(String(200))
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default="lead")
    # When the contact reached customer or disqualified: the outcome's date for learning.
    outcome_at: Mapped[datetime | None]
    score: Mapped[int | None]           # 0-100, calibrated conversion probability in percent
    tier: Mapped[str | None] = mapped_column(String(10))
    next_action: Mapped[str | None] = mapped_column(String(50))
    score_updated_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    sensitive: Mapped[bool] = mapped_column(default=False)  # never sent to a remote model
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manual_fields: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account | None] = relationship(lazy="joined")

    @property
    def full_name(self) -> str:
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) or (self.email or self.external_id or f"contact {self.id}")


class ScoreHistory(Base):
    """Every score a contact has had, with what moved it: the lead-score trend and chart."""

    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_contact_at", "contact_id", "scored_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    score: Mapped[int]
    tier: Mapped[str] = mapped_column(String(10))
    scored_at: Mapped[datetime]
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    reason: Mapped[str | None] = mapped_column(Text)
