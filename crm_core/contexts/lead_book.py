"""The store -> the learners' plain records: contacts as they stood at a moment, and known outcomes.

Shared by the lead-scoring context builder (which reads) and the learn step (which trains): both
see the book the same way. Nothing after `as_of` is read: activities, emails and meetings are cut
at `as_of`, outcomes and deals count only if closed by then. The contact's own columns (title,
attributes) have no history in the store; they are read as they are now. A value that is a
placeholder ("Select", "--", "N/A", or one the latest data-quality audit flagged for its field)
is read as missing, so a form's default option is never learned as a fact about a lead.

Only values a person or an import entered are read (`provenance`): a value the enrichment agent
wrote, and the account it linked a contact to, are missing here, and so is the store's own
bookkeeping (the agent's marks, merge history). The agent fills open leads only, so on a book it
ran on its values are present on the leads still open when it ran and absent on those already
disqualified: a proxy for the outcome, not a fact about the lead. The marks say when each value
was written, but timing is not what leaks (which leads got a value depends on whether they were
still open), so the values are left out at every snapshot, also those after they were written.
The lead score, its tier and the deals' risk are agents' values too; they are never read here.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.learning import records as ev
from agents.learning.records import ContactRecord, Event, Outcome
from crm_core.contexts.provenance import entered_attributes, written_by_agent
from crm_core.contexts.reading import chunks, payload_text
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting
from crm_core.models.enums import DealStatus, LifecycleStage, MeetingStatus
from crm_core.quality.placeholders import audited_placeholders, is_missing

_PRICING = re.compile(r"pric|/plans?\b|/buy\b|/checkout|/quote", re.I)
_DEMO = re.compile(r"demo|trial|contact[-_ ]?sales|talk[-_ ]?to[-_ ]?sales|book[-_ ]?a[-_ ]?(call|meeting)", re.I)


def _activity_event(type_: str, at: datetime, payload: dict[str, Any] | None) -> Event:
    if type_ == "page_view":
        url = payload_text(payload, "url", "path", "page", "title")
        return Event(at, ev.PRICING_VIEW if url and _PRICING.search(url) else ev.PAGE_VIEW, url)
    if type_ == "form_submit":
        form = payload_text(payload, "form", "name", "url", "title", "subject")
        return Event(at, ev.DEMO_REQUEST if form and _DEMO.search(form) else ev.FORM_SUBMIT, form)
    if type_ == "stage_change":
        return Event(at, ev.STAGE_CHANGE, payload_text(payload, "to", "to_stage", "stage", "lifecycle_stage"))
    if type_ == "content_download":
        return Event(at, ev.CONTENT_DOWNLOAD, payload_text(payload, "asset", "title", "url", "name"))
    return Event(at, type_, None)


def _events(session: Session, ids: list[int], as_of: datetime) -> dict[int, list[Event]]:
    """Every event of these contacts up to `as_of`, from activities, emails and meetings."""
    found: dict[int, list[Event]] = defaultdict(list)
    for chunk in chunks(ids):
        for cid, type_, at, payload in session.execute(
            select(Activity.contact_id, Activity.type, Activity.occurred_at, Activity.payload)
            .where(Activity.contact_id.in_(chunk), Activity.occurred_at <= as_of)
        ):
            found[cid].append(_activity_event(type_, at, payload))
        for cid, direction, sent, opened, replied in session.execute(
            select(Email.contact_id, Email.direction, Email.sent_at, Email.opened_at, Email.replied_at)
            .where(Email.contact_id.in_(chunk), Email.sent_at <= as_of)
        ):
            if direction == "inbound":
                found[cid].append(Event(sent, ev.EMAIL_REPLIED))
                continue
            found[cid].append(Event(sent, ev.EMAIL_SENT))
            if opened is not None and opened <= as_of:
                found[cid].append(Event(opened, ev.EMAIL_OPENED))
            if replied is not None and replied <= as_of:
                found[cid].append(Event(replied, ev.EMAIL_REPLIED))
        for cid, starts, created, status in session.execute(
            select(Meeting.contact_id, Meeting.starts_at, Meeting.created_at, Meeting.status)
            .where(Meeting.contact_id.in_(chunk), Meeting.created_at <= as_of, Meeting.status != MeetingStatus.CANCELLED.value)
        ):
            if starts <= as_of:
                found[cid].append(Event(starts, ev.MEETING))
            else:
                found[cid].append(Event(created, ev.MEETING_BOOKED))
    # The same open or meeting may be in the activity log and in its own table: count it once.
    deduped: dict[int, list[Event]] = {}
    for cid, events in found.items():
        seen: set[tuple[str, datetime]] = set()
        keep = []
        for e in sorted(events, key=lambda e: e.at):
            key = (e.kind, e.at.replace(second=0, microsecond=0))
            if e.kind in (ev.PAGE_VIEW, ev.PRICING_VIEW, ev.CONTENT_DOWNLOAD) or key not in seen:
                keep.append(e)
                seen.add(key)
        deduped[cid] = keep
    return deduped


def contacts_by_id(session: Session, ids: Sequence[int] | None) -> list[Contact]:
    if ids is None:
        return list(session.scalars(select(Contact)).unique())
    rows: list[Contact] = []
    for chunk in chunks(list(ids)):
        rows.extend(session.scalars(select(Contact).where(Contact.id.in_(chunk))).unique())
    return rows


def _first_activity(session: Session, ids: list[int], as_of: datetime) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for chunk in chunks(ids):
        out.update(session.execute(
            select(Activity.contact_id, func.min(Activity.occurred_at))
            .where(Activity.contact_id.in_(chunk), Activity.occurred_at <= as_of).group_by(Activity.contact_id)
        ).all())
    return out


def _entered(row: Contact | Account, field: str) -> Any:
    """The row's value of `field`, or None when the enrichment agent wrote it."""
    value = getattr(row, field)
    return None if written_by_agent(row.attributes, row.manual_fields, field, value) else value


def _record(contact: Contact, events: list[Event], first_activity: datetime | None,
            audited: dict[str, frozenset[str]]) -> ContactRecord:
    # An account the agent linked the contact to is the agent's guess: none of its values are read.
    account = contact.account if _entered(contact, "account_id") is not None else None

    def keep(value: Any, key: str) -> Any:
        return None if is_missing(value, key, audited) else value

    revenue = _entered(account, "annual_revenue") if account else None
    fields = {
        "source": keep(contact.source, "contacts.source"), "title": keep(_entered(contact, "title"), "contacts.title"),
        "email": contact.email, "phone": contact.phone,
        "industry": keep(_entered(account, "industry"), "accounts.industry") if account else None,
        "country": keep(_entered(account, "country"), "accounts.country") if account else None,
        "employee_count": _entered(account, "employee_count") if account else None,
        "annual_revenue": float(revenue) if revenue is not None else None,
    }
    attributes = {f"attr.{k}": keep(v, f"contacts.attributes.{k}")
                  for k, v in entered_attributes(contact.attributes, contact.manual_fields).items()}
    if account is not None:
        attributes.update({f"account.{k}": keep(v, f"accounts.attributes.{k}")
                           for k, v in entered_attributes(account.attributes, account.manual_fields).items()})
    # Entry: created, or first seen in the activity log if that was earlier (a contact imported
    # today with its history).
    entry = min(contact.created_at, first_activity) if first_activity is not None else contact.created_at
    return ContactRecord(contact.id, entry, fields, attributes, events)


def load_records(session: Session, *, as_of: datetime, contact_ids: Sequence[int] | None = None,
                 with_events: bool = True) -> dict[int, ContactRecord]:
    """The contacts present at `as_of` (entered by then), with their events up to `as_of`
    (`with_events=False`: fields only, for when only who they are and when they entered matters)."""
    contacts = contacts_by_id(session, contact_ids)
    ids = [c.id for c in contacts]
    events = _events(session, ids, as_of) if with_events else {}
    first = _first_activity(session, ids, as_of)
    audited = audited_placeholders(session)
    records = {}
    for contact in contacts:
        record = _record(contact, events.get(contact.id, []), first.get(contact.id), audited)
        if record.entry_at <= as_of:
            records[contact.id] = record
    return records


def segments(record: ContactRecord) -> tuple[tuple[str, str | None], ...]:
    f = record.fields
    return tuple((k, str(f[k]).strip().lower() if f.get(k) not in (None, "") else None) for k in ("source", "industry"))


def raw_outcomes(session: Session, as_of: datetime) -> dict[int, tuple[bool, datetime]]:
    """contact id -> (converted, when it became known), for every outcome known at `as_of`."""
    won: dict[int, datetime] = {}
    lost: dict[int, datetime] = {}
    for cid, stage, at in session.execute(
        select(Contact.id, Contact.lifecycle_stage, Contact.outcome_at)
        .where(Contact.lifecycle_stage.in_([LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value]),
               Contact.outcome_at.is_not(None), Contact.outcome_at <= as_of)
    ):
        (won if stage == LifecycleStage.CUSTOMER.value else lost)[cid] = at
    # Deals: a won deal makes its contact a converter; a contact whose every deal was lost by
    # `as_of` (none still open then) did not convert.
    open_at: set[int] = set()
    lost_deals: dict[int, datetime] = {}
    for cid, status, opened, created, closed in session.execute(
        select(Deal.primary_contact_id, Deal.status, Deal.opened_at, Deal.created_at, Deal.closed_at)
        .where(Deal.primary_contact_id.is_not(None))
    ):
        # An imported deal is created today with its history in opened_at/closed_at.
        began = min(t for t in (opened, created, closed) if t is not None)
        if began > as_of:
            continue
        if status == DealStatus.WON.value and closed is not None and closed <= as_of:
            won[cid] = min(won.get(cid, closed), closed)
        elif status == DealStatus.LOST.value and closed is not None and closed <= as_of:
            lost_deals[cid] = max(lost_deals.get(cid, closed), closed)
        else:
            open_at.add(cid)
    for cid, at in lost_deals.items():
        if cid not in open_at and cid not in lost:
            lost[cid] = at
    out = {cid: (True, at) for cid, at in won.items()}
    for cid, at in lost.items():
        out.setdefault(cid, (False, at))
    return out


def load_book(
    session: Session, *, as_of: datetime, outcomes_only: bool = False, with_events: bool = True
) -> tuple[dict[int, ContactRecord], list[Outcome]]:
    """Records of the contacts present at `as_of` and the outcomes known then (the back-test's input)."""
    raw = raw_outcomes(session, as_of)
    records = load_records(session, as_of=as_of, contact_ids=sorted(raw) if outcomes_only else None,
                           with_events=with_events)
    outcomes = [
        Outcome(cid, won, at, records[cid].entry_at, segments(records[cid]))
        for cid, (won, at) in sorted(raw.items()) if cid in records
    ]
    return records, outcomes
