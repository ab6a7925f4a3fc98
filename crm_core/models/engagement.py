"""The timestamped event log and the records it points at: emails, meetings, tasks."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped


class Activity(Timestamped, Base):
    """One thing that happened, when it happened. Never updated after it is written."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_contact_at", "contact_id", "occurred_at"),
        Index("ix_activities_deal_at", "deal_id", "occurred_at"),
        Index("ix_activities_at", "occurred_at"),
        Index("ix_activities_type_at", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Type-specific detail: {"url": "/pricing"} for a page view, {"asset": ...} for a download.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str | None] = mapped_column(String(100))  # import, demo, agent, web, ...


class Email(Timestamped, Base):
    __tablename__ = "emails"
    __table_args__ = (
        Index("ix_emails_contact_at", "contact_id", "sent_at"),
        Index("ix_emails_thread", "thread_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(10))
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)  # untrusted text
    sent_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]


class Meeting(Timestamped, Base):
    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_starts", "starts_at"), Index("ix_meetings_contact", "contact_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(200), unique=True)  # iCalendar UID
    title: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    attendees: Mapped[list[Any]] = mapped_column(default=list)  # e-mail addresses
    agenda: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    transcript: Mapped[str | None] = mapped_column(Text)  # untrusted text
    brief: Mapped[str | None] = mapped_column(Text)
    brief_ready_at: Mapped[datetime | None]
    action_items_extracted_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))


class Task(Timestamped, Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="open")
    kind: Mapped[str] = mapped_column(String(30), default="task")  # task | action_item | follow_up
    created_by: Mapped[str | None] = mapped_column(String(200))  # user name or "agent:<name>"
