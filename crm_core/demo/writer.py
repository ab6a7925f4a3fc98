"""Write a generated demo book into the store: bulk inserts, one transaction.

Rows go in parent-first (users, accounts, contacts, deals, ...). Parents come back with their
ids through `INSERT ... RETURNING` in input order, so the book's positional references become
foreign keys without a query per row, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from crm_core.demo.records import DemoBook
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting, StageHistory, Task, User

ACTIVITY_SOURCE = "demo"
# Without render_nulls the ORM drops None values from each row, so rows with a None in a
# different column get different column lists and are inserted in thousands of small batches.
_BATCHED = {"render_nulls": True}


def book_counts(session: Session) -> tuple[int, int]:
    """(contacts, deals) already in the store: a store with either is not empty."""
    contacts = session.scalar(select(func.count()).select_from(Contact)) or 0
    deals = session.scalar(select(func.count()).select_from(Deal)) or 0
    return contacts, deals


def lock_for_seeding(session: Session) -> None:
    """Two seeders at once must not both find the store empty. SQLite's BEGIN IMMEDIATE already
    serialises writers; PostgreSQL needs a transaction-scoped advisory lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('crm_core.demo.seed'))"))


def _insert_returning_ids(session: Session, model: type, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(stmt, rows, execution_options=_BATCHED))


def _insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), rows, execution_options=_BATCHED)


def write_book(session: Session, book: DemoBook) -> dict[str, int]:
    """Insert every record of the book; returns how many rows each table received."""
    user_ids = _write_users(session, book)
    account_ids = _insert_returning_ids(session, Account, [
        {**a.model_dump(exclude={"owner"}), "owner_id": user_ids[a.owner], "name_key": a.name.strip().lower(),
         "updated_at": a.created_at}
        for a in book.accounts])
    contact_ids = _insert_returning_ids(session, Contact, [
        {**c.model_dump(exclude={"account", "owner"}),
         "email_normalized": c.email.lower(),
         "account_id": account_ids[c.account] if c.account is not None else None,
         "owner_id": user_ids[c.owner] if c.owner is not None else None,
         "updated_at": c.updated_at or c.created_at}
        for c in book.contacts])
    deal_ids = _insert_returning_ids(session, Deal, [
        {**d.model_dump(exclude={"account", "primary_contact", "owner"}),
         "account_id": account_ids[d.account], "primary_contact_id": contact_ids[d.primary_contact],
         "owner_id": user_ids[d.owner], "created_at": d.opened_at, "updated_at": d.closed_at or d.stage_entered_at}
        for d in book.deals])
    _insert(session, StageHistory, [
        {**h.model_dump(exclude={"deal"}), "deal_id": deal_ids[h.deal]} for h in book.stage_history])
    email_ids = _insert_returning_ids(session, Email, [
        {**e.model_dump(exclude={"contact", "deal"}), "contact_id": contact_ids[e.contact],
         "deal_id": deal_ids[e.deal] if e.deal is not None else None,
         "created_at": e.sent_at, "updated_at": e.replied_at or e.opened_at or e.sent_at}
        for e in book.emails])
    meeting_ids = _insert_returning_ids(session, Meeting, [
        {**m.model_dump(exclude={"contact", "deal", "owner"}),
         "contact_id": contact_ids[m.contact] if m.contact is not None else None,
         "deal_id": deal_ids[m.deal] if m.deal is not None else None,
         "owner_id": user_ids[m.owner], "updated_at": m.created_at}
        for m in book.meetings])
    activity_rows = []
    for a in book.activities:
        payload = dict(a.payload)
        if a.email is not None:
            payload["email_id"] = email_ids[a.email]
        if a.meeting is not None:
            payload["meeting_id"] = meeting_ids[a.meeting]
        activity_rows.append({
            "type": a.type, "occurred_at": a.occurred_at, "payload": payload, "source": ACTIVITY_SOURCE,
            "contact_id": contact_ids[a.contact] if a.contact is not None else None,
            "deal_id": deal_ids[a.deal] if a.deal is not None else None,
            "account_id": account_ids[a.account] if a.account is not None else None,
            "user_id": user_ids[a.user] if a.user is not None else None,
            "created_at": a.occurred_at, "updated_at": a.occurred_at,
        })
    _insert(session, Activity, activity_rows)
    _insert(session, Task, [
        {**t.model_dump(exclude={"contact", "deal", "owner"}),
         "contact_id": contact_ids[t.contact] if t.contact is not None else None,
         "deal_id": deal_ids[t.deal] if t.deal is not None else None, "owner_id": user_ids[t.owner]}
        for t in book.tasks])
    return book.counts()


def _write_users(session: Session, book: DemoBook) -> list[int]:
    """The team's users; people already in the store under the same name are reused, not duplicated."""
    names = [u.name for u in book.users]
    existing = dict(session.execute(select(User.name, User.id).where(User.name.in_(names))).all())
    missing = [u for u in book.users if u.name not in existing]
    by_name = dict(existing)
    # The manager goes first so reps can point at her id.
    for user in sorted(missing, key=lambda u: u.manager is not None):
        row = {**user.model_dump(exclude={"manager"}), "updated_at": user.created_at,
               "manager_id": by_name.get(book.users[user.manager].name) if user.manager is not None else None}
        by_name[user.name] = _insert_returning_ids(session, User, [row])[0]
    return [by_name[name] for name in names]
