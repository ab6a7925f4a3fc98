"""Which sensitive records a built context carries, whatever agent built it.

A context is private when anything in it belongs to, or is linked to, a record marked sensitive:
- a contact marked sensitive, or whose account is;
- an account marked sensitive;
- a deal of a sensitive account or contact: its primary contact, or anyone whose email, activity or
  meeting is logged on the deal (its notes and inbound emails are theirs);
- a meeting with a sensitive contact, on a sensitive deal, or with a sensitive attendee;
- an email row of a sensitive contact;
- any text that names a sensitive contact (full name or address) or a sensitive account.

How it is found, in three layers, so no builder can forget it:
1. a walker over the built pydantic context collects every id it holds (`contact_id`, `deal_id`,
   `account_id`, `meeting_id`, `email_id`, `record_type`+`record_id`, at any depth, in lists too);
2. a builder may declare more with `declared_records(ctx) -> dict[kind, set[int]]` (for text that
   mentions people without carrying their ids);
3. the whole context's text is scanned for the names and addresses of sensitive records.
The ids are resolved against the store in a few set queries per run (nothing at all when no
record is marked sensitive).

A batch context without a subject of its own (the whole-pipeline review) has its sensitive list
items taken out instead (`redacted`), so one sensitive deal does not keep the whole review off the
model; a context that still carries anything sensitive afterwards stays local (`withheld`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from agents.llm.privacy import CLEAR, PrivacyScreen, WithheldRecord
from crm_core.contexts.reading import chunks
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting

KINDS = ("contact", "account", "deal", "meeting", "email")
ID_FIELDS: dict[str, str] = {
    "contact_id": "contact", "primary_contact_id": "contact", "account_id": "account", "deal_id": "deal",
    "meeting_id": "meeting", "email_id": "email",
}
_SUBJECT_FIELDS = ("contact_id", "deal_id", "meeting_id", "account_id")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_MIN_NAME = 4  # shorter account names ("HP", "3M") would match too much ordinary text


@dataclass
class Refs:
    ids: dict[str, set[int]] = field(default_factory=lambda: {k: set() for k in KINDS})

    def add(self, kind: str, value: Any) -> None:
        if kind in self.ids and isinstance(value, int) and not isinstance(value, bool):
            self.ids[kind].add(value)

    def update(self, other: Refs) -> None:
        for kind, values in other.ids.items():
            self.ids[kind] |= values


def collect(ctx: Any) -> Refs:
    """Every record id the context holds, at any depth."""
    refs = Refs()
    _walk(ctx, refs)
    return refs


def _walk(value: Any, refs: Refs) -> None:
    if isinstance(value, BaseModel):
        record_type = getattr(value, "record_type", None)
        if isinstance(record_type, str) and record_type in KINDS:
            refs.add(record_type, getattr(value, "record_id", None))
        for name in type(value).model_fields:
            item = getattr(value, name, None)
            if name in ID_FIELDS:
                refs.add(ID_FIELDS[name], item)
            elif item is not None and not isinstance(item, str | int | float | bool):
                _walk(item, refs)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, BaseModel | dict | list | tuple):
                _walk(item, refs)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _walk(item, refs)


@dataclass
class SensitiveIndex:
    """The store's sensitive records and what links to them, resolved once per run."""

    contacts: dict[int, WithheldRecord] = field(default_factory=dict)
    accounts: dict[int, WithheldRecord] = field(default_factory=dict)
    deals: dict[int, WithheldRecord] = field(default_factory=dict)
    meetings: dict[int, WithheldRecord] = field(default_factory=dict)
    emails: dict[int, WithheldRecord] = field(default_factory=dict)
    by_address: dict[str, WithheldRecord] = field(default_factory=dict)
    mention_re: re.Pattern[str] | None = None
    by_mention: dict[str, WithheldRecord] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.contacts or self.accounts)

    def hits(self, refs: Refs) -> list[WithheldRecord]:
        found: list[WithheldRecord] = []
        for kind, table in (("contact", self.contacts), ("account", self.accounts), ("deal", self.deals),
                            ("meeting", self.meetings), ("email", self.emails)):
            found.extend(table[i] for i in sorted(refs.ids[kind]) if i in table)
        return found

    def mentions(self, text: str) -> list[WithheldRecord]:
        found: list[WithheldRecord] = []
        for address in {a.lower() for a in _EMAIL_RE.findall(text)}:
            if address in self.by_address:
                found.append(self.by_address[address])
        if self.mention_re is not None:
            for m in self.mention_re.finditer(text):
                record = self.by_mention.get(_norm(m.group(0)))
                if record is not None:
                    found.append(record)
        return found


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _contact_label(c: Contact) -> str:
    return c.full_name


def load_index(session: Session, refs: Refs) -> SensitiveIndex:
    """Sensitive records, and the deals, meetings and emails among `refs` linked to them."""
    index = SensitiveIndex()
    sensitive_accounts = {a.id: a for a in session.scalars(select(Account).where(Account.sensitive.is_(True)))}
    contact_rows = session.scalars(select(Contact).where(or_(
        Contact.sensitive.is_(True), Contact.account_id.in_(select(Account.id).where(Account.sensitive.is_(True))))))
    for a in sensitive_accounts.values():
        index.accounts[a.id] = WithheldRecord(kind="account", record_id=a.id, label=a.name, why="marked sensitive")
    mention_keys: dict[str, WithheldRecord] = {}
    for c in contact_rows:
        why = "marked sensitive" if c.sensitive else "its account is marked sensitive"
        record = WithheldRecord(kind="contact", record_id=c.id, label=_contact_label(c), why=why)
        index.contacts[c.id] = record
        for address in (c.email, c.email_normalized, *((c.attributes or {}).get("other_emails") or [])):
            if isinstance(address, str) and "@" in address:
                index.by_address[address.lower()] = record
        if c.first_name and c.last_name:  # a first name alone is too common to mean her
            mention_keys[_norm(f"{c.first_name} {c.last_name}")] = record
    for a in sensitive_accounts.values():
        if a.name and len(a.name.strip()) >= _MIN_NAME:
            mention_keys.setdefault(_norm(a.name), index.accounts[a.id])
    if mention_keys:
        alternatives = sorted(mention_keys, key=len, reverse=True)
        pattern = "|".join(r"\s+".join(re.escape(part) for part in key.split()) for key in alternatives)
        index.mention_re = re.compile(rf"(?<![\w@.])(?:{pattern})(?![\w@])", re.IGNORECASE)
        index.by_mention = mention_keys
    if index.empty:
        return index
    _link_deals(session, index, refs)
    _link_meetings(session, index, refs)
    _link_emails(session, index, refs)
    return index


def _link_deals(session: Session, index: SensitiveIndex, refs: Refs) -> None:
    """Deals among `refs` (and of referenced meetings) that belong to, or log, a sensitive record."""
    deal_ids = set(refs.ids["deal"])
    for chunk in chunks(sorted(refs.ids["meeting"])):
        deal_ids.update(d for d in session.scalars(select(Meeting.deal_id).where(Meeting.id.in_(chunk))) if d)
    if not deal_ids:
        return
    contacts, accounts = set(index.contacts), set(index.accounts)
    whys: dict[int, tuple[str, str]] = {}
    ordered = sorted(deal_ids)
    for chunk in chunks(ordered):
        for deal in session.scalars(select(Deal).where(Deal.id.in_(chunk))):
            if deal.account_id in accounts:
                whys[deal.id] = (deal.name, f"its account {index.accounts[deal.account_id].label} is marked sensitive")
            elif deal.primary_contact_id in contacts:
                whys[deal.id] = (deal.name, f"its contact {index.contacts[deal.primary_contact_id].label} is sensitive")
        # Whoever wrote or was logged on the deal: their emails and notes travel with it.
        for model in (Email, Activity, Meeting):
            rows = session.execute(
                select(model.deal_id, model.contact_id, Deal.name).join(Deal, Deal.id == model.deal_id)
                .where(model.deal_id.in_(chunk), model.contact_id.is_not(None))
            )
            for deal_id, contact_id, name in rows:
                if contact_id in contacts and deal_id not in whys:
                    whys[deal_id] = (name, f"it holds records of {index.contacts[contact_id].label}, who is sensitive")
        for deal_id, name, attendees in session.execute(
            select(Meeting.deal_id, Deal.name, Meeting.attendees).join(Deal, Deal.id == Meeting.deal_id)
            .where(Meeting.deal_id.in_(chunk))
        ):
            person = _sensitive_attendee(index, attendees)
            if person is not None and deal_id not in whys:
                whys[deal_id] = (name, f"{person.label}, who is sensitive, attends its meetings")
    for deal_id, (name, why) in whys.items():
        index.deals[deal_id] = WithheldRecord(kind="deal", record_id=deal_id, label=name, why=why)


def _sensitive_attendee(index: SensitiveIndex, attendees: Any) -> WithheldRecord | None:
    for address in attendees or []:
        if isinstance(address, str) and address.lower() in index.by_address:
            return index.by_address[address.lower()]
    return None


def _link_meetings(session: Session, index: SensitiveIndex, refs: Refs) -> None:
    ids = sorted(refs.ids["meeting"])
    for chunk in chunks(ids):
        for m in session.scalars(select(Meeting).where(Meeting.id.in_(chunk))):
            why = None
            if m.contact_id in index.contacts:
                why = f"it is with {index.contacts[m.contact_id].label}, who is sensitive"
            elif (person := _sensitive_attendee(index, m.attendees)) is not None:
                why = f"{person.label}, who is sensitive, attends"
            elif m.deal_id in index.deals:
                why = f"it is on the deal {index.deals[m.deal_id].label}, which is private"
            if why:
                index.meetings[m.id] = WithheldRecord(kind="meeting", record_id=m.id, label=m.title, why=why)


def _link_emails(session: Session, index: SensitiveIndex, refs: Refs) -> None:
    ids = sorted(refs.ids["email"])
    for chunk in chunks(ids):
        for email_id, contact_id, subject in session.execute(
            select(Email.id, Email.contact_id, Email.subject).where(Email.id.in_(chunk))
        ):
            if contact_id in index.contacts:
                index.emails[email_id] = WithheldRecord(
                    kind="email", record_id=email_id, label=f"\u201c{(subject or 'no subject')[:60]}\u201d",
                    why=f"written with {index.contacts[contact_id].label}, who is sensitive")


def _declared(builder: ModuleType | None, ctx: Any) -> Refs:
    refs = Refs()
    hook = getattr(builder, "declared_records", None) if builder is not None else None
    if callable(hook):
        for kind, ids in (hook(ctx) or {}).items():
            for i in ids:
                refs.add(kind, i)
    return refs


def _has_subject(ctx: Any) -> bool:
    return any(isinstance(getattr(ctx, f, None), int) for f in _SUBJECT_FIELDS)


def _redact(ctx: BaseModel, index: SensitiveIndex) -> tuple[BaseModel, list[WithheldRecord]]:
    """A subject-less batch context without its list items that carry sensitive records."""
    updates: dict[str, list[Any]] = {}
    removed: list[WithheldRecord] = []
    for name in type(ctx).model_fields:
        items = getattr(ctx, name, None)
        if not isinstance(items, list | tuple) or not items or not all(isinstance(i, BaseModel) for i in items):
            continue
        kept = []
        for item in items:
            found = index.hits(collect(item)) + index.mentions(item.model_dump_json())
            if found:
                removed.extend(found)
            else:
                kept.append(item)
        if len(kept) != len(items):
            updates[name] = type(items)(kept) if isinstance(items, tuple) else kept
    if not updates:
        return ctx, []
    return ctx.model_copy(update=updates), _unique(removed)


def _unique(records: Iterable[WithheldRecord]) -> list[WithheldRecord]:
    return list(dict.fromkeys(records))


def screen(
    session: Session, contexts: Sequence[BaseModel], *, builder: ModuleType | None = None
) -> list[tuple[BaseModel, PrivacyScreen]]:
    """Each context (redacted where it is a batch) with the sensitive records it carries."""
    per_ctx = [collect(ctx) for ctx in contexts]
    for refs, ctx in zip(per_ctx, contexts, strict=True):
        refs.update(_declared(builder, ctx))
    union = Refs()
    for refs in per_ctx:
        union.update(refs)
    index = load_index(session, union)
    if index.empty:
        return [(ctx, CLEAR) for ctx in contexts]
    out: list[tuple[BaseModel, PrivacyScreen]] = []
    for ctx, refs in zip(contexts, per_ctx, strict=True):
        redacted: list[WithheldRecord] = []
        if not _has_subject(ctx):
            ctx, redacted = _redact(ctx, index)
            refs = collect(ctx)
            refs.update(_declared(builder, ctx))
        found = _unique(index.hits(refs) + index.mentions(ctx.model_dump_json()))
        out.append((ctx, PrivacyScreen(withheld=tuple(found), redacted=tuple(redacted))))
    return out


__all__ = ["Refs", "SensitiveIndex", "collect", "load_index", "screen"]
