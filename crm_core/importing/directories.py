"""In-memory indexes of the records an import links to, each loaded with one query.

Rows find their account, owner, contact or deal here instead of querying per row. Records an
import must create first (an account named by a contact row, a deal's owner) are `Pending`
until `flush` inserts them and fills in their ids.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.bulk import insert_rows
from crm_core.importing.normalize import domain_key, email_key, name_key
from crm_core.importing.refs import CHUNK, Pending, Ref
from crm_core.models import Account, Contact, Deal, User


class AccountDirectory:
    def __init__(self, session: Session) -> None:
        self.by_external: dict[str, int] = {}
        self.by_domain: dict[str, int] = {}
        self.by_name: dict[str, int] = {}
        self.domain_of: dict[int, str | None] = {}
        for row in session.execute(select(Account.id, Account.external_id, Account.domain, Account.name_key)
                                   .order_by(Account.id)):
            if row.external_id:
                self.by_external.setdefault(row.external_id, row.id)
            if row.domain:
                self.by_domain.setdefault(row.domain.lower(), row.id)
            if row.name_key:
                self.by_name.setdefault(row.name_key, row.id)
            self.domain_of[row.id] = row.domain
        self.pending: list[Pending] = []
        self._memo: dict[tuple[str | None, str | None], Ref] = {}
        self._pending_domain: dict[str, Pending] = {}
        self._pending_name: dict[str, Pending] = {}

    def find(self, *, external_id: str | None = None, name: str | None = None,
             domain: str | None = None) -> int | None:
        """Stored account by external id, then domain, then name (only when the domains do not disagree)."""
        if external_id and external_id in self.by_external:
            return self.by_external[external_id]
        if domain and domain in self.by_domain:
            return self.by_domain[domain]
        key = name_key(name)
        if key and key in self.by_name:
            found = self.by_name[key]
            if not domain or not self.domain_of.get(found):
                return found
        return None

    def find_or_plan(self, name: str | None, domain: str | None, now: datetime) -> Ref:
        # Thousands of rows name the same few hundred companies: answer each pair once.
        memo_key = (name, domain)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._find_or_plan(name, domain, now)
        return self._memo[memo_key]

    def _find_or_plan(self, name: str | None, domain: str | None, now: datetime) -> Ref:
        domain = domain_key(domain) if domain else None
        if not name and not domain:
            return None
        found = self.find(name=name, domain=domain)
        if found is not None:
            return found
        key = name_key(name)
        pending = (self._pending_domain.get(domain) if domain else None) or (self._pending_name.get(key) if key else None)
        if pending is None:
            display = name or domain or ""
            pending = Pending({"name": display, "name_key": name_key(display), "domain": domain,
                               "attributes": {}, "manual_fields": [], "sensitive": False,
                               "created_at": now, "updated_at": now})
            self.pending.append(pending)
        if domain:
            self._pending_domain.setdefault(domain, pending)
            if not pending.values["domain"]:
                pending.values["domain"] = domain
        if key:
            self._pending_name.setdefault(key, pending)
        return pending

    def flush(self, session: Session) -> int:
        todo = [p for p in self.pending if p.id is None]
        ids = insert_rows(session, Account, [p.values for p in todo])
        for pending, new_id in zip(todo, ids, strict=True):
            pending.id = new_id
        return len(todo)


class UserDirectory:
    """Users by name or email (case-insensitive); a name not found becomes a new rep."""

    def __init__(self, session: Session) -> None:
        self.by_name: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        for row in session.execute(select(User.id, User.name, User.email).order_by(User.id)):
            self.by_name.setdefault(row.name.strip().lower(), row.id)
            if row.email:
                self.by_email.setdefault(row.email.strip().lower(), row.id)
        self.pending: dict[str, Pending] = {}

    def find_or_plan(self, value: str | None, now: datetime) -> Ref:
        if not value:
            return None
        key = value.strip().lower()
        if key in self.by_name:
            return self.by_name[key]
        if "@" in key and key in self.by_email:
            return self.by_email[key]
        if key not in self.pending:
            self.pending[key] = Pending({"name": value.strip(), "email": value.strip() if "@" in key else None,
                                         "role": "rep", "created_at": now, "updated_at": now})
        return self.pending[key]

    def flush(self, session: Session) -> int:
        todo = [p for p in self.pending.values() if p.id is None]
        ids = insert_rows(session, User, [p.values for p in todo])
        for pending, new_id in zip(todo, ids, strict=True):
            pending.id = new_id
        return len(todo)


class ContactDirectory:
    """Contacts by external id and by email, with the fields deals and activities update."""

    def __init__(self, session: Session) -> None:
        self.by_external: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.info: dict[int, Any] = {}
        query = select(Contact.id, Contact.external_id, Contact.email_normalized, Contact.account_id,
                       Contact.lifecycle_stage, Contact.outcome_at, Contact.last_activity_at)
        for row in session.execute(query):
            if row.external_id:
                self.by_external[row.external_id] = row.id
            if row.email_normalized:
                self.by_email[row.email_normalized] = row.id
            self.info[row.id] = row

    def find(self, external_id: str | None, email: str | None) -> int | None:
        if external_id:
            return self.by_external.get(external_id)
        key = email_key(email)
        return self.by_email.get(key) if key else None


class DealDirectory:
    def __init__(self, session: Session, external_ids: Iterable[str]) -> None:
        wanted = sorted(set(external_ids))
        self.by_external: dict[str, Any] = {}
        for start in range(0, len(wanted), CHUNK):
            query = select(Deal.id, Deal.external_id, Deal.account_id, Deal.primary_contact_id).where(
                Deal.external_id.in_(wanted[start:start + CHUNK]))
            for row in session.execute(query):
                self.by_external[row.external_id] = row
