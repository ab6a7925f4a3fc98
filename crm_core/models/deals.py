"""Deals and their stage history."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped


class Deal(Timestamped, Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_status_stage", "status", "stage"),
        Index("ix_deals_owner_status", "owner_id", "status"),
        Index("ix_deals_risk", "status", "risk"),
        Index("ix_deals_closed_at", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    primary_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    product: Mapped[str | None] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[str] = mapped_column(String(10), default="open")
    opened_at: Mapped[datetime | None]        # when the deal was first engaged
    expected_close: Mapped[date | None]
    stage_entered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Set by the pipeline agent (through an action), snoozed by a manager.
    risk: Mapped[str | None] = mapped_column(String(10))
    risk_reason: Mapped[str | None] = mapped_column(Text)
    risk_action: Mapped[str | None] = mapped_column(Text)
    risk_updated_at: Mapped[datetime | None]
    risk_snoozed_until: Mapped[date | None]
    risk_snooze_reason: Mapped[str | None] = mapped_column(Text)
    risk_snoozed_by: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manual_fields: Mapped[list[Any]] = mapped_column(default=list)


class StageHistory(Base):
    __tablename__ = "deal_stage_history"
    __table_args__ = (Index("ix_stage_history_deal_at", "deal_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(100))
    to_stage: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str | None] = mapped_column(String(200))  # user name or "agent:<name>"
