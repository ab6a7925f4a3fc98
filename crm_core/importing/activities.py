"""Activities: an append-only event log. A row is new or already there, never updated.

A row without an external id gets a fingerprint of its content as external id ('fp:...'), so
importing the same log twice adds nothing. Contacts and deals must already exist; the
contact's `last_activity_at` moves forward to its newest imported activity.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.contracts import ImportSummary, RowError
from crm_core.importing.directories import AccountDirectory, ContactDirectory, DealDirectory, UserDirectory
from crm_core.importing.refs import CHUNK
from crm_core.importing.rows import ActivityRow
from crm_core.importing.upsert import Progress, Resolution, bulk_update, flush_related, load_rows, write_creates
from crm_core.models import Activity, Contact


def fingerprint(row: ActivityRow) -> str:
    content = [row.type.value, row.occurred_at.isoformat(), row.contact_external_id or "",
               (row.contact_email or "").lower(), row.deal_external_id or "", (row.account or "").lower(),
               row.subject or "", row.body or "", row.url or "", json.dumps(row.attributes, sort_keys=True, default=str)]
    return "fp:" + hashlib.sha256("\x1f".join(content).encode()).hexdigest()[:40]


def external_id(row: ActivityRow) -> str:
    return row.external_id or fingerprint(row)


def check_file(rows: list[ActivityRow], filename: str) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row in rows:
        key = external_id(row)
        first = seen.setdefault(key, row.row)
        if first != row.row:
            what = f"external id {row.external_id!r}" if row.external_id else "the same activity (every cell equal)"
            errors.append(RowError(file=filename, row=row.row, column=None, value=row.external_id,
                                   reason=f"duplicate row: {what} also on row {first}"))
    return errors


def resolve(session: Session, rows: list[ActivityRow], filename: str, now: datetime,
            headers: dict[str, str] | None = None) -> Resolution:
    headers = headers or {}
    res = Resolution()
    res.users = UserDirectory(session) if any(r.user for r in rows) else None
    res.accounts = AccountDirectory(session) if any(r.account for r in rows) else None
    contacts = ContactDirectory(session) if any(r.contact_email or r.contact_external_id for r in rows) else None
    deals = DealDirectory(session, (r.deal_external_id for r in rows if r.deal_external_id))
    ids = [external_id(r) for r in rows]
    existing: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        query = select(Activity.external_id).where(Activity.external_id.in_(ids[start:start + CHUNK]))
        existing.update(session.scalars(query))

    newest: dict[int, datetime] = {}
    for row, ext in zip(rows, ids, strict=True):
        contact_id = None
        if contacts is not None and (row.contact_external_id or row.contact_email):
            contact_id = contacts.find(row.contact_external_id, row.contact_email)
            if contact_id is None:
                field = "contact_external_id" if row.contact_external_id else "contact_email"
                value = row.contact_external_id or row.contact_email
                res.errors.append(RowError(file=filename, row=row.row, column=headers.get(field, field), value=value,
                                           reason=f"no contact with {'external id' if row.contact_external_id else 'email'} "
                                                  f"{value!r}; import the contacts first"))
                continue
        deal = None
        if row.deal_external_id:
            deal = deals.by_external.get(row.deal_external_id)
            if deal is None:
                res.errors.append(RowError(file=filename, row=row.row, column=headers.get("deal_external_id"),
                                           value=row.deal_external_id,
                                           reason=f"no deal with external id {row.deal_external_id!r}; import the deals first"))
                continue
        if ext in existing:
            res.unchanged_rows.append(row.row)
            continue
        if contact_id is None and deal is not None:
            contact_id = deal.primary_contact_id
        account = res.accounts.find_or_plan(row.account, None, now) if res.accounts and row.account else None
        if account is None and contact_id is not None and contacts is not None and contact_id in contacts.info:
            account = contacts.info[contact_id].account_id
        if account is None and deal is not None:
            account = deal.account_id
        payload: dict[str, Any] = {k: v for k, v in (("subject", row.subject), ("body", row.body), ("url", row.url))
                                   if v is not None}
        payload.update(row.attributes)
        res.creates.append({
            "external_id": ext, "type": row.type.value, "occurred_at": row.occurred_at, "contact_id": contact_id,
            "deal_id": deal.id if deal is not None else None, "account_id": account,
            "user_id": res.users.find_or_plan(row.user, now) if res.users else None,
            "payload": payload, "source": row.source or "import", "created_at": now, "updated_at": now,
        })
        res.create_rows.append(row.row)
        if contact_id is not None and (contact_id not in newest or row.occurred_at > newest[contact_id]):
            newest[contact_id] = row.occurred_at

    res.extra["last_activity"] = _last_activity_updates(session, contacts, newest, now)
    return res


def _last_activity_updates(session: Session, contacts: ContactDirectory | None, newest: dict[int, datetime],
                           now: datetime) -> list[dict[str, Any]]:

    known = contacts.info if contacts else {}
    loaded = load_rows(session, Contact, [c for c in newest if c not in known], [Contact.last_activity_at])
    updates = []
    for contact_id, at in newest.items():
        current = (known.get(contact_id) or loaded[contact_id]).last_activity_at
        if current is None or at > current:
            updates.append({"id": contact_id, "last_activity_at": at, "updated_at": now})
    return updates


def write(session: Session, res: Resolution, summary: ImportSummary, progress: Progress | None) -> None:
    flush_related(session, res, summary)
    write_creates(session, Activity, res, progress, "activities")
    bulk_update(session, Contact, res.extra["last_activity"])
    summary.created += len(res.creates)
    summary.unchanged += len(res.unchanged_rows)
