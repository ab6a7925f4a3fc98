"""Contacts: upsert on external id, else email (case-insensitive), else name at the same company.

Lifecycle stages only move forward on import (lead -> mql -> sql -> opportunity), and an
outcome (customer, disqualified) from the file always applies and stamps `outcome_at`; a
stored outcome is never taken back by a file that says 'lead'. That keeps re-importing an
old lead list from undoing the won deals imported since.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.contracts import ImportSummary, RowError
from crm_core.importing.directories import AccountDirectory, UserDirectory
from crm_core.importing.normalize import fold
from crm_core.importing.refs import Pending
from crm_core.importing.rows import ContactRow
from crm_core.importing.upsert import (
    Progress,
    Resolution,
    changed,
    flush_related,
    load_rows,
    merged_attributes,
    write_creates,
)
from crm_core.models import Contact
from crm_core.models.enums import OUTCOME_STAGES, LifecycleStage

# StrEnum members hash and compare as their values, so stored strings look up directly.
_FORWARD: dict[str, int] = {LifecycleStage.LEAD: 0, LifecycleStage.MQL: 1, LifecycleStage.SQL: 2,
                            LifecycleStage.OPPORTUNITY: 3}
_PLAIN_COLUMNS = ("external_id", "first_name", "last_name", "phone", "phone_normalized", "title", "source",
                  "notes", "sensitive", "account_id", "owner_id")
_STORED = [getattr(Contact, c) for c in (*_PLAIN_COLUMNS, "email", "email_normalized", "lifecycle_stage",
                                          "outcome_at", "last_activity_at", "attributes")]


def next_stage(stored: str, incoming: LifecycleStage | None) -> str:
    """The stage after an import: outcomes always apply, other stages only move forward."""
    if incoming is None:
        return stored
    if incoming in OUTCOME_STAGES:
        return incoming.value
    if stored in OUTCOME_STAGES:
        return stored
    return incoming.value if _FORWARD[incoming] >= _FORWARD.get(stored, 0) else stored


def _person_key(first: str | None, last: str | None, account: Any) -> tuple[str, Any] | None:
    name = fold(" ".join(p for p in (first, last) if p))
    return (name, account) if name else None


def check_file(rows: list[ContactRow], filename: str) -> list[RowError]:
    """The same person twice in one file is an error: which row should win is the user's call."""
    errors: list[RowError] = []
    seen_ext: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    seen_name: dict[tuple[str, Any], int] = {}
    for row in rows:
        if row.external_id:
            first = seen_ext.setdefault(row.external_id, row.row)
            if first != row.row:
                errors.append(RowError(file=filename, row=row.row, column=None, value=row.external_id,
                                       reason=f"duplicate row: external id {row.external_id!r} is also on row {first}"))
                continue
        email = row.email_normalized
        if email:
            first = seen_email.setdefault(email, row.row)
            if first != row.row:
                errors.append(RowError(file=filename, row=row.row, column=None, value=row.email,
                                       reason=f"duplicate row: email {row.email!r} is also on row {first}"))
                continue
        if not row.external_id and not email:
            key = _person_key(row.first_name, row.last_name, (row.account or "").lower())
            if key:
                first = seen_name.setdefault(key, row.row)
                if first != row.row:
                    errors.append(RowError(file=filename, row=row.row, column=None,
                                           reason=f"duplicate row: same name and company as row {first}, "
                                                  "and neither has an email or external id"))
    return errors


def resolve(session: Session, rows: list[ContactRow], filename: str, now: datetime,
            headers: dict[str, str] | None = None) -> Resolution:
    res = Resolution()
    res.users = UserDirectory(session) if any(r.owner for r in rows) else None
    res.accounts = AccountDirectory(session) if any(r.account or r.account_domain for r in rows) else None

    by_ext: dict[str, int] = {}
    by_email: dict[str, int] = {}
    ext_of: dict[int, str | None] = {}
    by_person: dict[tuple[str, Any], int] = {}
    keys = select(Contact.id, Contact.external_id, Contact.email_normalized, Contact.first_name,
                  Contact.last_name, Contact.account_id)
    for c in session.execute(keys):
        ext_of[c.id] = c.external_id
        if c.external_id:
            by_ext[c.external_id] = c.id
        if c.email_normalized:
            by_email[c.email_normalized] = c.id
        if not c.external_id and not c.email_normalized:
            key = _person_key(c.first_name, c.last_name, c.account_id)
            if key:
                by_person.setdefault(key, c.id)

    matches: list[tuple[ContactRow, int | None, Any, Any]] = []
    for row in rows:
        email = row.email_normalized
        cid = by_ext.get(row.external_id) if row.external_id else None
        email_owner = by_email.get(email) if email else None
        if cid is None and email_owner is not None:
            other_ext = ext_of.get(email_owner)
            if row.external_id and other_ext and other_ext != row.external_id:
                res.errors.append(RowError(file=filename, row=row.row, column=None, value=row.email,
                                           reason=f"email {row.email!r} belongs to contact #{email_owner} whose "
                                                  f"external id is {other_ext!r}, not {row.external_id!r}"))
                continue
            cid = email_owner
        elif cid is not None and email_owner is not None and email_owner != cid:
            res.errors.append(RowError(file=filename, row=row.row, column=None, value=row.email,
                                       reason=f"email {row.email!r} belongs to another contact (#{email_owner}) "
                                              f"than external id {row.external_id!r} (#{cid})"))
            continue
        account = res.accounts.find_or_plan(row.account, row.account_domain, now) if res.accounts else None
        owner = res.users.find_or_plan(row.owner, now) if res.users else None
        if cid is None and not row.external_id and not email:
            key = _person_key(row.first_name, row.last_name, account if not isinstance(account, Pending) else None)
            if key and not isinstance(account, Pending):
                cid = by_person.get(key)
        matches.append((row, cid, account, owner))

    stored = load_rows(session, Contact, [cid for _, cid, _, _ in matches if cid is not None], _STORED)
    for row, cid, account, owner in matches:
        values: dict[str, Any] = {
            "external_id": row.external_id, "first_name": row.first_name, "last_name": row.last_name,
            "phone": row.phone, "phone_normalized": row.phone_normalized, "title": row.title,
            "source": row.source, "notes": row.notes, "sensitive": row.sensitive,
            "account_id": account, "owner_id": owner,
        }
        if cid is None:
            stage = row.lifecycle_stage.value if row.lifecycle_stage else LifecycleStage.LEAD.value
            values.update(
                sensitive=bool(row.sensitive), email=row.email, email_normalized=row.email_normalized,
                lifecycle_stage=stage, outcome_at=(row.outcome_at or now) if stage in OUTCOME_STAGES else None,
                last_activity_at=row.last_activity_at, attributes=row.attributes, manual_fields=[],
                created_at=row.created_at or now, updated_at=now)
            res.creates.append(values)
            res.create_rows.append(row.row)
            continue
        current = stored[cid]
        changes = changed(current, values, _PLAIN_COLUMNS)
        if row.email and current.email_normalized != row.email_normalized:
            changes["email"], changes["email_normalized"] = row.email, row.email_normalized
        stage = next_stage(current.lifecycle_stage, row.lifecycle_stage)
        if stage != current.lifecycle_stage:
            changes["lifecycle_stage"] = stage
        if stage in OUTCOME_STAGES:
            outcome_at = row.outcome_at or current.outcome_at or now
            if outcome_at != current.outcome_at:
                changes["outcome_at"] = outcome_at
        if row.last_activity_at and (current.last_activity_at is None or row.last_activity_at > current.last_activity_at):
            changes["last_activity_at"] = row.last_activity_at
        attributes = merged_attributes(current.attributes, row.attributes)
        if attributes is not None:
            changes["attributes"] = attributes
        if changes:
            res.updates.append({"id": cid, **changes, "updated_at": now})
            res.update_rows.append(row.row)
        else:
            res.unchanged_rows.append(row.row)
    res.extra["stored"] = stored  # the duplicate check reads the updated contacts' other fields here
    return res


def write(session: Session, res: Resolution, summary: ImportSummary, progress: Progress | None) -> None:
    flush_related(session, res, summary)
    write_creates(session, Contact, res, progress, "contacts")
    summary.created += len(res.creates)
    summary.updated += len(res.updates)
    summary.unchanged += len(res.unchanged_rows)
