"""One pydantic model per import kind: the rules a row must meet before it touches the store.

Cells arrive already typed column by column (`parsing.py`); these models check what each row
needs (a contact needs a name, an email or an external id), read the closed vocabularies
(lifecycle stages, deal outcomes, activity types) with their common spellings, and derive the
keys the upsert matches on.
"""
from __future__ import annotations

import functools
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_core.importing.normalize import domain_key, email_key, fold, name_key
from crm_core.models.enums import ActivityType, DealStatus, LifecycleStage

_EMAIL = re.compile(r"^(?!\.)[^\s@\"(),:;<>\[\]\\]+(?<!\.)@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}$")
_ANGLE = re.compile(r"<([^<>]+)>\s*$")


@functools.lru_cache(maxsize=4096)  # a stage column repeats a handful of values 100,000 times
def _compact(value: str) -> str:
    return fold(value).replace(" ", "")


def read_email(value: str | None) -> str | None:
    """The address in 'x@y.com', 'mailto:x@y.com' or 'Jane <x@y.com>'; ValueError when there is none."""
    if value is None:
        return None
    text = value.strip()
    found = _ANGLE.search(text)
    if found:
        text = found.group(1).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not _EMAIL.match(text) or ".." in text:
        raise ValueError(f"{value!r} is not an email address")
    return text


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    row: int
    attributes: dict[str, Any] = Field(default_factory=dict)


def _vocabulary(enum_values: dict[str, Any], value: Any, what: str) -> Any:
    if value is None:
        return None
    key = _compact(str(value))
    if key in enum_values:
        return enum_values[key]
    allowed = sorted({str(v) for v in enum_values.values()})
    raise ValueError(f"{value!r} is not a known {what}; use one of {', '.join(allowed)}")


_LIFECYCLE: dict[str, LifecycleStage] = {
    **{s.value: s for s in LifecycleStage},
    "new": LifecycleStage.LEAD, "subscriber": LifecycleStage.LEAD, "prospect": LifecycleStage.LEAD,
    "open": LifecycleStage.LEAD, "contacted": LifecycleStage.LEAD, "working": LifecycleStage.LEAD,
    "marketingqualifiedlead": LifecycleStage.MQL, "marketingqualified": LifecycleStage.MQL,
    "salesqualifiedlead": LifecycleStage.SQL, "salesqualified": LifecycleStage.SQL,
    "opp": LifecycleStage.OPPORTUNITY,
    "closedwon": LifecycleStage.CUSTOMER, "won": LifecycleStage.CUSTOMER, "client": LifecycleStage.CUSTOMER,
    "evangelist": LifecycleStage.CUSTOMER, "converted": LifecycleStage.CUSTOMER,
    "closedconverted": LifecycleStage.CUSTOMER,
    "unqualified": LifecycleStage.DISQUALIFIED, "closedlost": LifecycleStage.DISQUALIFIED,
    "lost": LifecycleStage.DISQUALIFIED, "closednotconverted": LifecycleStage.DISQUALIFIED,
    "junk": LifecycleStage.DISQUALIFIED, "notqualified": LifecycleStage.DISQUALIFIED,
}

# Stage names that say how a deal ended, compared on letters and digits only.
WON_STAGES = {"won", "closedwon", "dealwon", "win", "closedwin", "wonclosed"}
LOST_STAGES = {"lost", "closedlost", "deallost", "lose", "lostclosed", "closedlostdisqualified"}
_STATUS: dict[str, DealStatus] = {
    **{s.value: s for s in DealStatus},
    **{k: DealStatus.WON for k in WON_STAGES}, **{k: DealStatus.LOST for k in LOST_STAGES},
    "active": DealStatus.OPEN, "inprogress": DealStatus.OPEN, "pending": DealStatus.OPEN,
}
_ACTIVITY: dict[str, ActivityType] = {
    **{_compact(t.value): t for t in ActivityType},
    "pageview": ActivityType.PAGE_VIEW, "visit": ActivityType.PAGE_VIEW, "webvisit": ActivityType.PAGE_VIEW,
    "websitevisit": ActivityType.PAGE_VIEW,
    "download": ActivityType.CONTENT_DOWNLOAD, "contentdownload": ActivityType.CONTENT_DOWNLOAD,
    "email": ActivityType.EMAIL_SENT, "emailsent": ActivityType.EMAIL_SENT, "sentemail": ActivityType.EMAIL_SENT,
    "emailopen": ActivityType.EMAIL_OPENED, "open": ActivityType.EMAIL_OPENED, "opened": ActivityType.EMAIL_OPENED,
    "emailclick": ActivityType.EMAIL_CLICKED, "click": ActivityType.EMAIL_CLICKED, "clicked": ActivityType.EMAIL_CLICKED,
    "emailreply": ActivityType.EMAIL_REPLIED, "reply": ActivityType.EMAIL_REPLIED, "replied": ActivityType.EMAIL_REPLIED,
    "phonecall": ActivityType.CALL, "loggedcall": ActivityType.CALL, "calllogged": ActivityType.CALL,
    "meetinglogged": ActivityType.MEETING, "loggedmeeting": ActivityType.MEETING,
    "comment": ActivityType.NOTE, "form": ActivityType.FORM_SUBMIT, "formsubmission": ActivityType.FORM_SUBMIT,
    "stagechanged": ActivityType.STAGE_CHANGE, "linkedin": ActivityType.LINKEDIN_MESSAGE,
    "inmail": ActivityType.LINKEDIN_MESSAGE,
}


def deal_status_of_stage(stage: str | None) -> DealStatus | None:
    if not stage:
        return None
    key = _compact(stage)
    if key in WON_STAGES:
        return DealStatus.WON
    if key in LOST_STAGES:
        return DealStatus.LOST
    return None


def _split_name(full: str) -> tuple[str | None, str | None]:
    if "," in full:  # 'Doe, Jane'
        last, _, first = full.partition(",")
        return first.strip() or None, last.strip() or None
    parts = full.split()
    if len(parts) == 1:
        return parts[0], None
    return " ".join(parts[:-1]), parts[-1]


class ContactRow(_Row):
    external_id: str | None = Field(None, max_length=200)
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=400)
    email: str | None = Field(None, max_length=320)
    email_normalized: str | None = None    # derived: lower(email)
    phone: str | None = Field(None, max_length=64)
    phone_normalized: str | None = None    # derived: E.164 where readable (parsing.normalise_phones)
    title: str | None = Field(None, max_length=300)
    account: str | None = Field(None, max_length=300)
    account_domain: str | None = Field(None, max_length=255)
    owner: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=200)
    lifecycle_stage: LifecycleStage | None = None
    created_at: datetime | None = None
    outcome_at: datetime | None = None
    last_activity_at: datetime | None = None
    notes: str | None = None
    sensitive: bool | None = None

    @field_validator("email", mode="before")
    @classmethod
    def check_email(cls, value: str | None) -> str | None:
        return read_email(value)

    @field_validator("lifecycle_stage", mode="before")
    @classmethod
    def read_stage(cls, value: Any) -> Any:
        return _vocabulary(_LIFECYCLE, value, "lifecycle stage")

    @field_validator("account_domain", mode="before")
    @classmethod
    def check_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = domain_key(value)
        if key is None:
            raise ValueError(f"{value!r} is not a domain or website")
        return key

    @model_validator(mode="after")
    def check_identity(self) -> ContactRow:
        if self.name and not (self.first_name or self.last_name):
            self.first_name, self.last_name = _split_name(self.name)
        if not (self.first_name or self.last_name or self.email or self.external_id):
            raise ValueError("a contact needs a name, an email or an external id; this row has none")
        self.email_normalized = email_key(self.email)
        return self


class AccountRow(_Row):
    external_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=300)
    domain: str | None = Field(None, max_length=255)
    industry: str | None = Field(None, max_length=200)
    employee_count: int | None = Field(None, ge=0)
    annual_revenue: Decimal | None = Field(None, ge=0)
    country: str | None = Field(None, max_length=100)
    owner: str | None = Field(None, max_length=200)
    sensitive: bool | None = None

    @field_validator("domain", mode="before")
    @classmethod
    def check_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = domain_key(value)
        if key is None:
            raise ValueError(f"{value!r} is not a domain or website")
        return key

    @model_validator(mode="after")
    def check_identity(self) -> AccountRow:
        if not self.name:
            if not self.domain:
                raise ValueError("an account needs a name or a domain; this row has neither")
            self.name = self.domain
        return self

    @property
    def name_key(self) -> str:
        return name_key(self.name) or ""


class DealRow(_Row):
    external_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=300)
    account: str | None = Field(None, max_length=300)
    account_domain: str | None = Field(None, max_length=255)
    contact_email: str | None = Field(None, max_length=320)
    contact_external_id: str | None = Field(None, max_length=200)
    owner: str | None = Field(None, max_length=200)
    product: str | None = Field(None, max_length=200)
    stage: str | None = Field(None, max_length=100)
    status: DealStatus | None = None
    amount: Decimal | None = Field(None, ge=0)
    currency: str | None = None
    opened_at: datetime | None = None
    close_date: datetime | None = None
    expected_close: date | None = None
    closed_at: datetime | None = None
    stage_entered_at: datetime | None = None

    @field_validator("contact_email", mode="before")
    @classmethod
    def check_email(cls, value: str | None) -> str | None:
        return read_email(value)

    @field_validator("status", mode="before")
    @classmethod
    def read_status(cls, value: Any) -> Any:
        return _vocabulary(_STATUS, value, "deal status")

    @field_validator("currency", mode="before")
    @classmethod
    def check_currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = str(value).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError(f"{value!r} is not a three-letter currency code (USD, EUR, ...)")
        return code

    @field_validator("account_domain", mode="before")
    @classmethod
    def check_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = domain_key(value)
        if key is None:
            raise ValueError(f"{value!r} is not a domain or website")
        return key

    @model_validator(mode="after")
    def read_outcome(self) -> DealRow:
        from_stage = deal_status_of_stage(self.stage)
        if self.status is None:
            self.status = from_stage or DealStatus.OPEN
        elif from_stage is not None and from_stage != self.status:
            raise ValueError(f"stage {self.stage!r} says {from_stage.value} but status says {self.status.value}")
        if self.stage is None:
            if self.status == DealStatus.OPEN:
                raise ValueError("an open deal needs a stage")
            self.stage = "Closed Won" if self.status == DealStatus.WON else "Closed Lost"
        if self.close_date is not None:
            # 'Close Date' means when it closed for a closed deal, when it should close for an open one.
            if self.status == DealStatus.OPEN:
                self.expected_close = self.expected_close or self.close_date.date()
            else:
                self.closed_at = self.closed_at or self.close_date
            self.close_date = None
        if not self.name:
            left = self.account or self.external_id or self.contact_external_id or self.contact_email
            if not left and not self.product:
                raise ValueError("a deal needs a name, an account, a product or an external id")
            self.name = " – ".join(p for p in (left, self.product) if p)[:300]
        return self


class ActivityRow(_Row):
    external_id: str | None = Field(None, max_length=200)
    type: ActivityType
    occurred_at: datetime
    contact_email: str | None = Field(None, max_length=320)
    contact_external_id: str | None = Field(None, max_length=200)
    deal_external_id: str | None = Field(None, max_length=200)
    account: str | None = Field(None, max_length=300)
    user: str | None = Field(None, max_length=200)
    subject: str | None = None
    body: str | None = None
    url: str | None = None
    source: str | None = Field(None, max_length=100)

    @field_validator("contact_email", mode="before")
    @classmethod
    def check_email(cls, value: str | None) -> str | None:
        return read_email(value)

    @field_validator("type", mode="before")
    @classmethod
    def read_type(cls, value: Any) -> Any:
        return _vocabulary(_ACTIVITY, value, "activity type")

    @model_validator(mode="after")
    def check_linked(self) -> ActivityRow:
        if not (self.contact_email or self.contact_external_id or self.deal_external_id or self.account):
            raise ValueError("an activity needs a contact (email or external id), a deal or an account")
        return self


ROW_MODELS: dict[str, type[_Row]] = {
    "contacts": ContactRow, "accounts": AccountRow, "deals": DealRow, "activities": ActivityRow,
}
