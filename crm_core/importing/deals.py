"""Deals: upsert on external id (else on name at the same account), with outcomes and stage history.

A stage that means won or lost sets the status and `closed_at` (the file's close date, else
the import time). Every new deal and every stage change writes a `deal_stage_history` row and
sets `stage_entered_at`. A won deal makes its primary contact a customer (with `outcome_at` =
the close date): the label the lead-scoring agent learns from.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.bulk import insert_rows
from crm_core.importing.contracts import ImportSummary, RowError
from crm_core.importing.directories import AccountDirectory, ContactDirectory, UserDirectory
from crm_core.importing.normalize import name_key
from crm_core.importing.refs import Pending
from crm_core.importing.rows import DealRow
from crm_core.importing.upsert import (
    Progress,
    Resolution,
    bulk_update,
    changed,
    flush_related,
    load_rows,
    merged_attributes,
    write_creates,
)
from crm_core.models import Contact, Deal, StageHistory
from crm_core.models.enums import DealStatus, LifecycleStage

_PLAIN_COLUMNS = ("external_id", "name", "account_id", "primary_contact_id", "owner_id", "product", "amount",
                  "currency", "opened_at", "expected_close")
_STORED = [getattr(Deal, c) for c in (*_PLAIN_COLUMNS, "stage", "status", "closed_at", "stage_entered_at",
                                       "attributes")]
CHANGED_BY = "import"


def check_file(rows: list[DealRow], filename: str) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[Any, int] = {}
    for row in rows:
        key = ("ext", row.external_id) if row.external_id else ("name", name_key(row.name), (row.account or "").lower())
        first = seen.setdefault(key, row.row)
        if first != row.row:
            what = f"external id {row.external_id!r}" if row.external_id else f"deal name {row.name!r} and account"
            errors.append(RowError(file=filename, row=row.row, column=None, value=row.external_id or row.name,
                                   reason=f"duplicate row: {what} also on row {first}"))
    return errors


def resolve(session: Session, rows: list[DealRow], filename: str, now: datetime,
            headers: dict[str, str] | None = None) -> Resolution:
    headers = headers or {}
    res = Resolution()
    res.users = UserDirectory(session) if any(r.owner for r in rows) else None
    res.accounts = AccountDirectory(session) if any(r.account or r.account_domain for r in rows) else None
    contacts = ContactDirectory(session) if any(r.contact_email or r.contact_external_id for r in rows) else None

    by_ext: dict[str, int] = {}
    by_name: dict[tuple[str | None, int | None], int] = {}
    for d in session.execute(select(Deal.id, Deal.external_id, Deal.name, Deal.account_id)):
        if d.external_id:
            by_ext[d.external_id] = d.id
        else:
            by_name.setdefault((name_key(d.name), d.account_id), d.id)

    matches: list[tuple[DealRow, int | None, dict[str, Any]]] = []
    for row in rows:
        contact_id = None
        if contacts is not None and (row.contact_external_id or row.contact_email):
            contact_id = contacts.find(row.contact_external_id, row.contact_email)
            if contact_id is None:
                field = "contact_external_id" if row.contact_external_id else "contact_email"
                what = (f"external id {row.contact_external_id!r}" if row.contact_external_id
                        else f"email {row.contact_email!r}")
                res.errors.append(RowError(file=filename, row=row.row, column=headers.get(field, field),
                                           value=row.contact_external_id or row.contact_email,
                                           reason=f"no contact with {what}; import the contacts first"))
                continue
        account = res.accounts.find_or_plan(row.account, row.account_domain, now) if res.accounts else None
        if account is None and contact_id is not None:
            account = contacts.info[contact_id].account_id if contacts else None
        values = {
            "external_id": row.external_id, "name": row.name, "account_id": account,
            "primary_contact_id": contact_id, "product": row.product, "amount": row.amount,
            "currency": row.currency, "opened_at": row.opened_at, "expected_close": row.expected_close,
            "owner_id": res.users.find_or_plan(row.owner, now) if res.users else None,
        }
        did = by_ext.get(row.external_id) if row.external_id else None
        if did is None and not row.external_id and not isinstance(account, Pending):
            did = by_name.get((name_key(row.name), account))
        matches.append((row, did, values))

    stored = load_rows(session, Deal, [did for _, did, _ in matches if did is not None], _STORED)
    history: list[dict[str, Any]] = []       # for updated deals; new deals get theirs at write time
    new_history: list[tuple[int, dict[str, Any]]] = []  # (index into creates, history values)
    won_contacts: dict[int, datetime] = {}
    for row, did, values in matches:
        status = row.status.value if row.status else DealStatus.OPEN.value
        closed = status != DealStatus.OPEN.value
        if did is None:
            closed_at = (row.closed_at or now) if closed else None
            entered = row.stage_entered_at or closed_at or row.opened_at or now
            res.creates.append({
                **values,
                "currency": row.currency or "USD", "stage": row.stage, "status": status, "closed_at": closed_at,
                "stage_entered_at": entered, "attributes": row.attributes, "manual_fields": [],
                "created_at": now, "updated_at": now,
            })
            res.create_rows.append(row.row)
            new_history.append((len(res.creates) - 1, {"from_stage": None, "to_stage": row.stage,
                                                       "changed_at": entered, "changed_by": CHANGED_BY}))
            if status == DealStatus.WON.value and values["primary_contact_id"]:
                _note_won(won_contacts, values["primary_contact_id"], closed_at)
            continue
        current = stored[did]
        changes = changed(current, values, _PLAIN_COLUMNS)
        if row.stage != current.stage:
            entered = row.stage_entered_at or (row.closed_at if closed else None) or now
            changes.update(stage=row.stage, stage_entered_at=entered)
            history.append({"deal_id": did, "from_stage": current.stage, "to_stage": row.stage,
                            "changed_at": entered, "changed_by": CHANGED_BY})
        elif row.stage_entered_at and row.stage_entered_at != current.stage_entered_at:
            changes["stage_entered_at"] = row.stage_entered_at
        if status != current.status:
            changes["status"] = status
            changes["closed_at"] = (row.closed_at or current.closed_at or now) if closed else None
        elif closed and row.closed_at and row.closed_at != current.closed_at:
            changes["closed_at"] = row.closed_at
        attributes = merged_attributes(current.attributes, row.attributes)
        if attributes is not None:
            changes["attributes"] = attributes
        if status == DealStatus.WON.value:
            contact = values["primary_contact_id"] or current.primary_contact_id
            if contact:
                _note_won(won_contacts, contact, changes.get("closed_at") or current.closed_at or now)
        if changes:
            res.updates.append({"id": did, **changes, "updated_at": now})
            res.update_rows.append(row.row)
        else:
            res.unchanged_rows.append(row.row)

    res.extra["history"] = history
    res.extra["new_history"] = new_history
    res.extra["customers"] = _customer_updates(session, contacts, won_contacts, now)
    return res


def _note_won(won: dict[int, datetime], contact_id: int, closed_at: datetime) -> None:
    if contact_id not in won or closed_at < won[contact_id]:
        won[contact_id] = closed_at


def _customer_updates(session: Session, contacts: ContactDirectory | None, won: dict[int, datetime],
                      now: datetime) -> list[dict[str, Any]]:
    """Contacts a won deal makes customers (the earliest won close date is their outcome date)."""
    updates: list[dict[str, Any]] = []
    known = contacts.info if contacts else {}
    missing = [cid for cid in won if cid not in known]
    loaded = load_rows(session, Contact, missing, [Contact.lifecycle_stage, Contact.outcome_at])
    for contact_id, closed_at in won.items():
        info = known.get(contact_id) or loaded[contact_id]
        if info.lifecycle_stage == LifecycleStage.CUSTOMER.value and info.outcome_at is not None:
            continue
        updates.append({"id": contact_id, "lifecycle_stage": LifecycleStage.CUSTOMER.value,
                        "outcome_at": closed_at, "updated_at": now})
    return updates


def write(session: Session, res: Resolution, summary: ImportSummary, progress: Progress | None) -> None:
    flush_related(session, res, summary)
    write_creates(session, Deal, res, progress, "deals")
    history = list(res.extra["history"])
    for index, values in res.extra["new_history"]:
        history.append({"deal_id": res.created_ids[index], **values})
    if history:
        insert_rows(session, StageHistory, history)
    customers = res.extra["customers"]
    bulk_update(session, Contact, customers)
    summary.created += len(res.creates)
    summary.updated += len(res.updates)
    summary.unchanged += len(res.unchanged_rows)
    summary.stage_changes += len(res.extra["history"])
    summary.contacts_made_customers += len(customers)
