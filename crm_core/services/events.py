"""Events sent in from outside (the HTTP API, signed webhooks, the website snippet) into the activity log.

An event names its contact by email or external id; an unknown contact is created as a lead, so a
first page view from a new visitor who filled a form is not lost. Each event becomes one activity
row, which the scheduler's activity-log follower picks up within a second to rescore the contact.

Nothing here trusts the sender: every event is validated with the import's own `ActivityRow`
rules (the same vocabulary of types, the same email check), a whole batch is refused when one
event is bad (each problem named by its place, `events[3].type`), and text fields are stored as
data. An optional `event_id` dedupes single events across batches (unique `activities.external_id`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.errors import UserError
from crm_core.importing.normalize import email_key
from crm_core.importing.rows import ActivityRow
from crm_core.models import Activity, Contact, Deal
from crm_core.models.enums import ActivityType, LifecycleStage

# What an outside system may report; stage changes and sent emails are the CRM's own doing.
ACCEPTED_TYPES = (
    ActivityType.PAGE_VIEW, ActivityType.CONTENT_DOWNLOAD, ActivityType.FORM_SUBMIT,
    ActivityType.EMAIL_OPENED, ActivityType.EMAIL_CLICKED, ActivityType.EMAIL_REPLIED,
    ActivityType.CALL, ActivityType.MEETING, ActivityType.NOTE, ActivityType.LINKEDIN_MESSAGE,
)
# API names of the fields the import row calls otherwise, for error messages.
_API_NAME = {"contact_email": "email", "contact_external_id": "contact_external_id", "external_id": "event_id"}
EVENT_ID_PREFIX = "api:"


class FieldProblem(BaseModel):
    field: str
    reason: str


class EventsRejected(UserError):
    """One or more events are invalid; nothing of the batch was stored."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems[:5]))
        self.problems = problems


class EventIn(BaseModel):
    """One thing a contact did, as an outside system reports it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str = Field(description="page_view, content_download, form_submit, email_opened, email_clicked, "
                                  "email_replied, call, meeting, note (common spellings such as 'pageview' or 'reply' are read too)")
    occurred_at: datetime | None = Field(None, description="when it happened (ISO 8601; no zone = UTC); default now")
    email: str | None = Field(None, max_length=320, description="the contact's email address")
    contact_external_id: str | None = Field(None, max_length=200, description="the contact's id in your system")
    event_id: str | None = Field(None, max_length=150, description="your id for this event: the same id is stored once")
    deal_external_id: str | None = Field(None, max_length=200)
    first_name: str | None = Field(None, max_length=200, description="used when the contact is new")
    last_name: str | None = Field(None, max_length=200, description="used when the contact is new")
    company: str | None = Field(None, max_length=300, description="used when the contact is new")
    title: str | None = Field(None, max_length=300, description="used when the contact is new")
    url: str | None = Field(None, max_length=2000, description="the page viewed or the form's page")
    asset: str | None = Field(None, max_length=500, description="the content downloaded")
    subject: str | None = Field(None, max_length=500)
    body: str | None = Field(None, max_length=20000, description="a reply's or note's text (stored as data)")
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60, description="a call's or meeting's length")
    fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=100,
                                                               description="a form's fields")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)


class StoredEvent(BaseModel):
    index: int
    activity_id: int | None
    contact_id: int | None
    duplicate: bool = False


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    contacts_created: int
    events: list[StoredEvent]


def _problem_field(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [_API_NAME.get(str(p), str(p)) for p in loc if str(p) != "row"]
    return prefix + ("." + ".".join(parts) if parts else "")


def _validated(events: list[EventIn], source: str, now: datetime) -> tuple[list[ActivityRow], list[FieldProblem]]:
    rows: list[ActivityRow] = []
    problems: list[FieldProblem] = []
    for index, event in enumerate(events):
        place = f"events[{index}]"
        if not (event.email or event.contact_external_id):
            problems.append(FieldProblem(field=f"{place}.email", reason="an event needs the contact's email or contact_external_id"))
            continue
        try:
            row = ActivityRow.model_validate({
                "row": index, "type": event.type, "occurred_at": event.occurred_at or now,
                "contact_email": event.email, "contact_external_id": event.contact_external_id,
                "deal_external_id": event.deal_external_id, "subject": event.subject, "body": event.body,
                "url": event.url, "source": source[:100],
                "external_id": f"{EVENT_ID_PREFIX}{event.event_id}" if event.event_id else None,
            })
        except ValidationError as exc:
            for err in exc.errors():
                reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                problems.append(FieldProblem(field=_problem_field(place, tuple(err.get("loc", ()))), reason=reason))
            continue
        if row.type not in ACCEPTED_TYPES:
            problems.append(FieldProblem(field=f"{place}.type", reason=f"{row.type.value!r} is recorded by the CRM itself; "
                                         f"send one of {', '.join(t.value for t in ACCEPTED_TYPES)}"))
            continue
        row.occurred_at = clock.to_naive_utc(row.occurred_at)
        if row.occurred_at > now + timedelta(days=1):
            problems.append(FieldProblem(field=f"{place}.occurred_at", reason="is more than a day in the future"))
            continue
        rows.append(row)
    return rows, problems


def _payload(event: EventIn) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name in ("url", "asset", "subject", "body", "duration_minutes"):
        value = getattr(event, name)
        if value is not None:
            payload[name] = value
    if event.fields:
        payload["fields"] = dict(event.fields)
    return payload


class _Contacts:
    """Contacts named by a batch, found in one query per key kind, created as leads when new."""

    def __init__(self, session: Session, rows: list[ActivityRow]) -> None:
        self.session = session
        emails = sorted({email_key(r.contact_email) for r in rows if r.contact_email})
        externals = sorted({r.contact_external_id for r in rows if r.contact_external_id})
        self.by_email: dict[str, Contact] = {}
        self.by_external: dict[str, Contact] = {}
        if emails:
            for c in session.scalars(select(Contact).where(Contact.email_normalized.in_(emails))):
                self.by_email[c.email_normalized] = c
        if externals:
            for c in session.scalars(select(Contact).where(Contact.external_id.in_(externals))):
                self.by_external[c.external_id] = c
        self.created = 0

    def find(self, email: str | None, external_id: str | None) -> Contact | None:
        if external_id and external_id in self.by_external:
            return self.by_external[external_id]
        if email and email_key(email) in self.by_email:
            return self.by_email[email_key(email)]
        return None

    def get_or_create(self, row: ActivityRow, event: EventIn, source: str) -> Contact:
        found = self.find(row.contact_email, row.contact_external_id)
        if found is not None:
            return found
        contact = Contact(
            external_id=row.contact_external_id, email=row.contact_email, email_normalized=email_key(row.contact_email),
            first_name=event.first_name, last_name=event.last_name, title=event.title,
            source=source[:200], lifecycle_stage=LifecycleStage.LEAD.value,
            attributes={"company": event.company} if event.company else {},
        )
        try:
            # Another request may create the same visitor at the same moment: the unique email or
            # external id refuses the second insert, and this one then uses the stored contact.
            with self.session.begin_nested():
                self.session.add(contact)
                self.session.flush()
            self.created += 1
        except IntegrityError:
            contact = self._reread(row)
        self._remember(contact)
        return contact

    def _reread(self, row: ActivityRow) -> Contact:
        query = select(Contact)
        if row.contact_external_id:
            query = query.where(Contact.external_id == row.contact_external_id)
        else:
            query = query.where(Contact.email_normalized == email_key(row.contact_email))
        found = self.session.scalars(query).first()
        if found is None:  # the row that refused ours was rolled back meanwhile: a real conflict
            raise UserError("the contact could not be created because of a conflicting record; retry the request")
        return found

    def _remember(self, contact: Contact) -> None:
        if contact.external_id:
            self.by_external[contact.external_id] = contact
        if contact.email_normalized:
            self.by_email[contact.email_normalized] = contact


def ingest_events(session: Session, events: list[EventIn], *, source: str) -> IngestResult:
    """Store a batch of events as activities (all or none). Runs in the caller's transaction."""
    now = clock.now()
    rows, problems = _validated(events, source, now)
    deal_ids: dict[str, int] = {}
    wanted_deals = sorted({r.deal_external_id for r in rows if r.deal_external_id})
    if wanted_deals:
        deal_ids = dict(session.execute(select(Deal.external_id, Deal.id).where(Deal.external_id.in_(wanted_deals))).all())
        for row in rows:
            if row.deal_external_id and row.deal_external_id not in deal_ids:
                problems.append(FieldProblem(field=f"events[{row.row}].deal_external_id",
                                             reason=f"no deal has the external id {row.deal_external_id!r}"))
    if problems:
        raise EventsRejected(problems)

    event_ids = [r.external_id for r in rows if r.external_id]
    seen: set[str] = set()
    if event_ids:
        seen = set(session.scalars(select(Activity.external_id).where(Activity.external_id.in_(event_ids))))
    contacts = _Contacts(session, rows)
    stored: list[StoredEvent] = []
    activities: list[tuple[int, Activity]] = []
    newest: dict[int, datetime] = {}
    for row in rows:
        event = events[row.row]
        contact = contacts.get_or_create(row, event, source)
        if row.external_id and row.external_id in seen:
            stored.append(StoredEvent(index=row.row, activity_id=None, contact_id=contact.id, duplicate=True))
            continue
        if row.external_id:
            seen.add(row.external_id)
        activity = Activity(
            external_id=row.external_id, type=row.type.value, occurred_at=row.occurred_at, contact_id=contact.id,
            deal_id=deal_ids.get(row.deal_external_id) if row.deal_external_id else None,
            account_id=contact.account_id, payload=_payload(event), source=source[:100],
        )
        if row.external_id:
            try:
                # The same event id sent by two requests at once: the second is a duplicate, not an error.
                with session.begin_nested():
                    session.add(activity)
                    session.flush()
            except IntegrityError:
                stored.append(StoredEvent(index=row.row, activity_id=None, contact_id=contact.id, duplicate=True))
                continue
        else:
            session.add(activity)
        activities.append((row.row, activity))
        if newest.get(contact.id) is None or row.occurred_at > newest[contact.id]:
            newest[contact.id] = row.occurred_at
    session.flush()
    for contact_id, at in newest.items():
        contact = session.get(Contact, contact_id)
        if contact is not None and (contact.last_activity_at is None or at > contact.last_activity_at):
            contact.last_activity_at = at
    for index, activity in activities:
        stored.append(StoredEvent(index=index, activity_id=activity.id, contact_id=activity.contact_id))
    stored.sort(key=lambda s: s.index)
    duplicates = sum(1 for s in stored if s.duplicate)
    return IngestResult(accepted=len(stored) - duplicates, duplicates=duplicates, contacts_created=contacts.created, events=stored)
