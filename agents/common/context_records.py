"""Records from the CRM that more than one agent's context carries: emails, web activity, meetings, deals.

The context builders in `crm_core.contexts` fill them from the store; the follow-up and meeting
agents read them. Text fields hold imported or typed text and are untrusted.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from agents.base import Frozen


class EmailItem(Frozen):
    email_id: int
    direction: Literal["inbound", "outbound"]
    sent_at: datetime
    subject: str | None = None     # untrusted
    body: str | None = None        # untrusted
    opened_at: datetime | None = None
    replied_at: datetime | None = None


class ContentItem(Frozen):
    kind: Literal["page_view", "content_download", "form_submit", "email_clicked"]
    at: datetime
    url: str | None = None         # untrusted (as logged)
    title: str | None = None       # page title or asset name, untrusted


class MeetingItem(Frozen):
    meeting_id: int | None = None  # None: a meeting known only from the activity log
    title: str | None = None
    starts_at: datetime
    status: str = "completed"


class DealRef(Frozen):
    deal_id: int
    name: str
    stage: str
    amount: float | None = None
    currency: str = "USD"
    days_in_stage: float | None = None
    expected_close: date | None = None
