"""The demo book as plain records, before it touches a database.

Records refer to one another by position in the book's lists (`account=3` is `book.accounts[3]`);
the writer turns positions into the ids the store assigns. Keeping generation free of a session
makes it testable on its own and lets the writer insert everything in one bulk transaction.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserRec(_Rec):
    name: str
    email: str
    role: str
    is_senior: bool
    timezone: str
    utc_offset: int = Field(exclude=True)  # used to place a rep's work in their office hours
    work_start_hour: int
    work_end_hour: int
    manager: int | None = None
    team: str | None = None
    created_at: datetime


class AccountRec(_Rec):
    name: str
    domain: str
    industry: str
    employee_count: int
    annual_revenue: Decimal
    country: str
    owner: int
    sensitive: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    # Generation-only facts (not stored): how well the account fits, its market.
    fit: float = Field(default=0.0, exclude=True)
    currency: str = Field(default="USD", exclude=True)
    utc_offset: int = Field(default=0, exclude=True)


class ContactRec(_Rec):
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    phone_normalized: str | None = None
    title: str | None = None
    account: int | None = None
    owner: int | None = None
    source: str
    lifecycle_stage: str = "lead"
    outcome_at: datetime | None = None
    sensitive: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    manual_fields: list[str] = Field(default_factory=list)
    notes: str | None = None
    created_at: datetime
    updated_at: datetime | None = None
    last_activity_at: datetime | None = None
    level: str = Field(default="ic", exclude=True)      # title seniority
    intent: float = Field(default=0.0, exclude=True)    # latent buying intent
    utc_offset: int = Field(default=0, exclude=True)

    @property
    def is_decision_maker(self) -> bool:
        return self.level in ("c_level", "vp", "head", "director")


class DealRec(_Rec):
    name: str
    account: int
    primary_contact: int
    owner: int
    product: str
    stage: str
    amount: Decimal
    currency: str
    status: str
    opened_at: datetime
    expected_close: date
    stage_entered_at: datetime
    closed_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Stage entry times, oldest first, including the closing stage for a closed deal.
    path: list[tuple[str, datetime]] = Field(default_factory=list, exclude=True)
    committee: list[int] = Field(default_factory=list, exclude=True)  # other contacts at the account
    quiet_from: datetime | None = Field(default=None, exclude=True)   # when the buyer went silent
    competitor: str | None = Field(default=None, exclude=True)


class StageRec(_Rec):
    deal: int
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    changed_by: str


class EmailRec(_Rec):
    thread_id: str
    contact: int
    deal: int | None = None
    direction: str
    from_address: str
    to_address: str
    subject: str
    body: str
    sent_at: datetime
    opened_at: datetime | None = None
    replied_at: datetime | None = None


class MeetingRec(_Rec):
    uid: str
    title: str
    contact: int | None
    deal: int | None
    owner: int
    starts_at: datetime
    ends_at: datetime
    attendees: list[str]
    agenda: str | None = None
    status: str
    transcript: str | None = None
    created_by: str
    created_at: datetime


class ActivityRec(_Rec):
    type: str
    occurred_at: datetime
    contact: int | None = None
    deal: int | None = None
    account: int | None = None
    user: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    email: int | None = None    # adds payload["email_id"] once the email has an id
    meeting: int | None = None  # adds payload["meeting_id"]


class TaskRec(_Rec):
    title: str
    description: str | None = None
    contact: int | None = None
    deal: int | None = None
    owner: int
    due_at: datetime
    status: str
    kind: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class DemoBook(_Rec):
    seed: int
    scale: float
    as_of: datetime
    users: list[UserRec] = Field(default_factory=list)
    accounts: list[AccountRec] = Field(default_factory=list)
    contacts: list[ContactRec] = Field(default_factory=list)
    deals: list[DealRec] = Field(default_factory=list)
    stage_history: list[StageRec] = Field(default_factory=list)
    emails: list[EmailRec] = Field(default_factory=list)
    meetings: list[MeetingRec] = Field(default_factory=list)
    activities: list[ActivityRec] = Field(default_factory=list)
    tasks: list[TaskRec] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in
                ("users", "accounts", "contacts", "deals", "stage_history", "activities", "emails", "meetings", "tasks")}
