"""Contacts, accounts and deals for the HTTP API: upsert by external id, read with what the agents concluded, list by cursor.

Input is validated with the import's own row models (`ContactRow`, `AccountRow`, `DealRow`), so a
record sent over HTTP meets exactly the rules of a CSV row. As in an import, a field left out
(or null) never erases a stored value, and a field a human typed (`manual_fields`) is what an API
write sets, so no agent overwrites it without review.

A rep's token sees and changes the rep's own records and unowned ones (new leads); the whole
team's needs `view_all`, as on the dashboard. Lists page by id (`after=<last id seen>` as an opaque cursor): stable while rows are added,
and each page is one indexed query whatever the table's size.
"""
from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import visible_owner
from crm_core.errors import NotFound, PermissionDenied, UserError
from crm_core.importing.normalize import email_key, phone_key
from crm_core.importing.rows import AccountRow, ContactRow, DealRow
from crm_core.models import Account, Contact, Deal, Decision, StageHistory, User
from crm_core.services.events import FieldProblem

Kind = Literal["contact", "account", "deal"]
MAX_PAGE = 200


class RecordRejected(UserError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    external_id: str | None = Field(None, max_length=200, description="your id: a second write with it updates")
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=400, description="full name, split when first/last are not given")
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=64)
    title: str | None = Field(None, max_length=300)
    account: str | None = Field(None, max_length=300, description="company name; created when new")
    account_domain: str | None = Field(None, max_length=255)
    owner: str | None = Field(None, max_length=200, description="the owning user's name")
    source: str | None = Field(None, max_length=200)
    lifecycle_stage: str | None = None
    notes: str | None = None
    sensitive: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    external_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=300)
    domain: str | None = Field(None, max_length=255)
    industry: str | None = Field(None, max_length=200)
    employee_count: int | None = Field(None, ge=0)
    annual_revenue: float | None = Field(None, ge=0)
    country: str | None = Field(None, max_length=100)
    owner: str | None = Field(None, max_length=200)
    sensitive: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class DealIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    external_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=300)
    account: str | None = Field(None, max_length=300)
    account_domain: str | None = Field(None, max_length=255)
    contact_email: str | None = Field(None, max_length=320)
    contact_external_id: str | None = Field(None, max_length=200)
    owner: str | None = Field(None, max_length=200)
    product: str | None = Field(None, max_length=200)
    stage: str | None = Field(None, max_length=100)
    status: str | None = None
    amount: float | None = Field(None, ge=0)
    currency: str | None = None
    expected_close: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class DecisionBrief(BaseModel):
    id: int
    agent: str
    status: str
    created_at: datetime
    confidence: float | None
    summary: str


class OpenDeal(BaseModel):
    id: int
    name: str
    stage: str
    risk: str | None
    risk_reason: str | None


class ContactOut(BaseModel):
    id: int
    external_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    title: str | None
    account_id: int | None
    account_name: str | None
    owner: str | None
    lifecycle_stage: str
    score: int | None
    tier: str | None
    next_action: str | None
    score_updated_at: datetime | None
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any]
    open_deals: list[OpenDeal] = []
    latest_decisions: list[DecisionBrief] = []


class AccountOut(BaseModel):
    id: int
    external_id: str | None
    name: str
    domain: str | None
    industry: str | None
    employee_count: int | None
    annual_revenue: float | None
    country: str | None
    owner: str | None
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any]
    latest_decisions: list[DecisionBrief] = []


class DealOut(BaseModel):
    id: int
    external_id: str | None
    name: str
    account_id: int | None
    primary_contact_id: int | None
    owner: str | None
    product: str | None
    stage: str
    status: str
    amount: float | None
    currency: str
    expected_close: date | None
    risk: str | None
    risk_reason: str | None
    risk_action: str | None
    risk_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any]
    latest_decisions: list[DecisionBrief] = []


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None


class Saved(BaseModel):
    id: int
    created: bool


# ---- helpers --------------------------------------------------------------------------------

VIEW_ALL = "view_all"


def _sees_all(actor: Actor | None) -> bool:
    return actor is None or visible_owner(actor) is None


def _check_visible(actor: Actor | None, owner_id: int | None, what: str) -> None:
    """A rep works on their own records and unowned ones (new leads); the rest needs view_all, as on the dashboard."""
    if _sees_all(actor) or owner_id is None or owner_id == actor.user_id:
        return
    raise PermissionDenied(f"{actor.name} may not open {what}: it belongs to another rep, and seeing the whole team's "
                           f"records needs the right \u201c{VIEW_ALL}\u201d (a manager or admin has it)", right=VIEW_ALL)


def _visible_only(query, model, actor: Actor | None):
    if _sees_all(actor):
        return query
    return query.where((model.owner_id == actor.user_id) | (model.owner_id.is_(None)))


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise RecordRejected([FieldProblem(field="cursor", reason="is not a cursor this API returned")]) from None


def _row(model: type, payload: dict[str, Any]) -> Any:
    try:
        return model.model_validate({"row": 0, **payload})
    except ValidationError as exc:
        problems = [FieldProblem(field=".".join(str(p) for p in e.get("loc", ()) if p != "row") or "body",
                                 reason=str(e.get("msg", "invalid")).removeprefix("Value error, ")) for e in exc.errors()]
        raise RecordRejected(problems) from None


def _owner_id(session: Session, owner: str | None) -> int | None:
    if owner is None:
        return None
    user_id = session.scalar(select(User.id).where(User.name == owner))
    if user_id is None:
        raise RecordRejected([FieldProblem(field="owner", reason=f"no user is named {owner!r}")])
    return user_id


def _owner_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(wanted))).all()) if wanted else {}


def _account_id(session: Session, name: str | None, domain: str | None) -> int | None:
    if not name and not domain:
        return None
    account = None
    if domain:
        account = session.scalars(select(Account).where(Account.domain == domain).order_by(Account.id)).first()
    if account is None and name:
        key = name.strip().lower()
        account = session.scalars(select(Account).where(Account.name_key == key).order_by(Account.id)).first()
    if account is None:
        account = Account(name=name or domain, name_key=(name or domain).strip().lower(), domain=domain,
                          manual_fields=[], attributes={})
        session.add(account)
        session.flush()
    return account.id


def _apply(record: Any, values: dict[str, Any]) -> None:
    """Set the given (non-null) values; the fields set become human-set (manual) fields."""
    manual = list(record.manual_fields or [])
    for column, value in values.items():
        if value is None:
            continue
        if getattr(record, column) != value:
            setattr(record, column, value)
        if column not in manual and column not in ("attributes",):
            manual.append(column)
    record.manual_fields = manual


def _decisions(session: Session, subject_type: str, subject_id: int, limit: int = 5) -> list[DecisionBrief]:
    rows = session.scalars(select(Decision).where(Decision.subject_type == subject_type, Decision.subject_id == subject_id)
                           .order_by(Decision.id.desc()).limit(limit))
    out = []
    for d in rows:
        reasons = [a.get("reason") or a.get("type") for a in (d.actions or []) if isinstance(a, dict)]
        out.append(DecisionBrief(id=d.id, agent=d.agent, status=d.status, created_at=d.created_at, confidence=d.confidence,
                                 summary="; ".join(r for r in reasons if r)[:500] or (d.reasoning or "")[:500]))
    return out


# ---- contacts -------------------------------------------------------------------------------

def upsert_contact(session: Session, data: ContactIn, *, contact_id: int | None = None, source: str = "api",
                   actor: Actor | None = None) -> Saved:
    payload = data.model_dump(exclude_none=True)
    attributes = payload.pop("attributes", {})
    row: ContactRow = _row(ContactRow, payload if contact_id is None else {"external_id": "-", **payload})
    contact = session.get(Contact, contact_id) if contact_id is not None else None
    if contact_id is not None and contact is None:
        raise NotFound(f"contact {contact_id} not found")
    if contact is None and data.external_id:
        contact = session.scalar(select(Contact).where(Contact.external_id == data.external_id))
    if contact is None and row.email_normalized:
        contact = session.scalar(select(Contact).where(Contact.email_normalized == row.email_normalized))
    created = contact is None
    if not created:
        _check_visible(actor, contact.owner_id, f"contact {contact.id}")
    if created:
        contact = Contact(lifecycle_stage="lead", source=data.source or source, attributes={}, manual_fields=[])
        session.add(contact)
    values = {
        "external_id": data.external_id, "first_name": row.first_name, "last_name": row.last_name,
        "email": row.email, "email_normalized": email_key(row.email), "phone": row.phone,
        "phone_normalized": phone_key(row.phone), "title": row.title, "owner_id": _owner_id(session, row.owner),
        "lifecycle_stage": row.lifecycle_stage.value if row.lifecycle_stage else None, "notes": row.notes,
        "sensitive": row.sensitive, "account_id": _account_id(session, row.account, row.account_domain),
    }
    if data.source and not created:
        values["source"] = data.source
    _apply(contact, values)
    if attributes:
        contact.attributes = {**(contact.attributes or {}), **attributes}
    session.flush()
    return Saved(id=contact.id, created=created)


def contact_out(session: Session, contact: Contact, *, decisions: bool = True, owners: dict[int, str] | None = None) -> ContactOut:
    owners = owners if owners is not None else _owner_names(session, {contact.owner_id})
    deals = [OpenDeal(id=d.id, name=d.name, stage=d.stage, risk=d.risk, risk_reason=d.risk_reason)
             for d in session.scalars(select(Deal).where(Deal.primary_contact_id == contact.id, Deal.status == "open")
                                      .order_by(Deal.id))] if decisions else []
    return ContactOut(
        id=contact.id, external_id=contact.external_id, first_name=contact.first_name, last_name=contact.last_name,
        email=contact.email, phone=contact.phone, title=contact.title, account_id=contact.account_id,
        account_name=contact.account.name if contact.account else None, owner=owners.get(contact.owner_id),
        lifecycle_stage=contact.lifecycle_stage, score=contact.score, tier=contact.tier, next_action=contact.next_action,
        score_updated_at=contact.score_updated_at, last_activity_at=contact.last_activity_at,
        created_at=contact.created_at, updated_at=contact.updated_at, attributes=contact.attributes or {},
        open_deals=deals, latest_decisions=_decisions(session, "contact", contact.id) if decisions else [],
    )


def get_contact(session: Session, contact_id: int, *, actor: Actor | None = None) -> ContactOut:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    _check_visible(actor, contact.owner_id, f"contact {contact_id}")
    return contact_out(session, contact)


def list_contacts(session: Session, *, cursor: str | None = None, limit: int = 50, tier: str | None = None,
                  lifecycle_stage: str | None = None, owner: str | None = None, min_score: int | None = None,
                  updated_since: datetime | None = None, email: str | None = None, actor: Actor | None = None) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    q = select(Contact).where(Contact.id > decode_cursor(cursor)).order_by(Contact.id).limit(limit + 1)
    q = _visible_only(q, Contact, actor)
    if tier:
        q = q.where(Contact.tier == tier)
    if lifecycle_stage:
        q = q.where(Contact.lifecycle_stage == lifecycle_stage)
    if owner:
        q = q.where(Contact.owner_id == _owner_id(session, owner))
    if min_score is not None:
        q = q.where(Contact.score >= min_score)
    if updated_since is not None:
        q = q.where(Contact.updated_at >= clock.to_naive_utc(updated_since))
    if email:
        q = q.where(Contact.email_normalized == email_key(email))
    rows = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    owners = _owner_names(session, {r.owner_id for r in rows})
    return Page(items=[contact_out(session, r, decisions=False, owners=owners) for r in rows],
                next_cursor=encode_cursor(rows[-1].id) if more else None)


# ---- accounts -------------------------------------------------------------------------------

def upsert_account(session: Session, data: AccountIn, *, account_id: int | None = None, actor: Actor | None = None) -> Saved:
    payload = data.model_dump(exclude_none=True)
    attributes = payload.pop("attributes", {})
    row: AccountRow = _row(AccountRow, payload if account_id is None else {"name": "-", **payload})
    account = session.get(Account, account_id) if account_id is not None else None
    if account_id is not None and account is None:
        raise NotFound(f"account {account_id} not found")
    if account is None and data.external_id:
        account = session.scalar(select(Account).where(Account.external_id == data.external_id))
    if account is None and row.domain:
        account = session.scalars(select(Account).where(Account.domain == row.domain).order_by(Account.id)).first()
    created = account is None
    if not created:
        _check_visible(actor, account.owner_id, f"account {account.id}")
    if created:
        account = Account(name=row.name, name_key=row.name_key, attributes={}, manual_fields=[])
        session.add(account)
    values = {"external_id": data.external_id, "name": data.name and row.name, "domain": row.domain,
              "industry": row.industry, "employee_count": row.employee_count, "annual_revenue": row.annual_revenue,
              "country": row.country, "owner_id": _owner_id(session, row.owner), "sensitive": row.sensitive}
    if data.name:
        values["name_key"] = row.name_key
    _apply(account, values)
    if attributes:
        account.attributes = {**(account.attributes or {}), **attributes}
    session.flush()
    return Saved(id=account.id, created=created)


def account_out(session: Session, a: Account, *, decisions: bool = True, owners: dict[int, str] | None = None) -> AccountOut:
    owners = owners if owners is not None else _owner_names(session, {a.owner_id})
    return AccountOut(id=a.id, external_id=a.external_id, name=a.name, domain=a.domain, industry=a.industry,
                      employee_count=a.employee_count, annual_revenue=float(a.annual_revenue) if a.annual_revenue is not None else None,
                      country=a.country, owner=owners.get(a.owner_id), created_at=a.created_at, updated_at=a.updated_at,
                      attributes=a.attributes or {}, latest_decisions=_decisions(session, "account", a.id) if decisions else [])


def get_account(session: Session, account_id: int, *, actor: Actor | None = None) -> AccountOut:
    a = session.get(Account, account_id)
    if a is None:
        raise NotFound(f"account {account_id} not found")
    _check_visible(actor, a.owner_id, f"account {account_id}")
    return account_out(session, a)


def list_accounts(session: Session, *, cursor: str | None = None, limit: int = 50, domain: str | None = None,
                  owner: str | None = None, updated_since: datetime | None = None, actor: Actor | None = None) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    q = select(Account).where(Account.id > decode_cursor(cursor)).order_by(Account.id).limit(limit + 1)
    q = _visible_only(q, Account, actor)
    if domain:
        q = q.where(Account.domain == domain.strip().lower())
    if owner:
        q = q.where(Account.owner_id == _owner_id(session, owner))
    if updated_since is not None:
        q = q.where(Account.updated_at >= clock.to_naive_utc(updated_since))
    rows = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    owners = _owner_names(session, {r.owner_id for r in rows})
    return Page(items=[account_out(session, r, decisions=False, owners=owners) for r in rows],
                next_cursor=encode_cursor(rows[-1].id) if more else None)


# ---- deals ----------------------------------------------------------------------------------

def upsert_deal(session: Session, data: DealIn, *, deal_id: int | None = None, actor: Actor | None = None) -> Saved:
    actor_name = actor.audit_name if actor is not None else "api"
    payload = data.model_dump(exclude_none=True)
    attributes = payload.pop("attributes", {})
    deal = session.get(Deal, deal_id) if deal_id is not None else None
    if deal_id is not None and deal is None:
        raise NotFound(f"deal {deal_id} not found")
    if deal is None and data.external_id:
        deal = session.scalar(select(Deal).where(Deal.external_id == data.external_id))
    if deal is not None:
        _check_visible(actor, deal.owner_id, f"deal {deal.id}")
    base = {} if deal is None else {"name": deal.name, "stage": payload.get("stage", deal.stage)}
    row: DealRow = _row(DealRow, {**base, **payload})
    created = deal is None
    now = clock.now()
    if created:
        deal = Deal(name=row.name, stage=row.stage, status=row.status.value, opened_at=now, stage_entered_at=now,
                    currency=row.currency or "USD", attributes={}, manual_fields=[])
        session.add(deal)
    contact_id = None
    if row.contact_external_id or row.contact_email:
        query = select(Contact.id).where(Contact.external_id == row.contact_external_id) if row.contact_external_id \
            else select(Contact.id).where(Contact.email_normalized == email_key(row.contact_email))
        contact_id = session.scalar(query)
        if contact_id is None:
            field = "contact_external_id" if row.contact_external_id else "contact_email"
            raise RecordRejected([FieldProblem(field=field, reason="no contact matches it; create the contact first")])
    from_stage = None if created else deal.stage
    values = {"external_id": data.external_id, "name": data.name and row.name, "product": row.product,
              "amount": row.amount, "currency": data.currency and row.currency, "expected_close": row.expected_close,
              "owner_id": _owner_id(session, row.owner), "primary_contact_id": contact_id,
              "account_id": _account_id(session, row.account, row.account_domain)}
    if data.stage or data.status:
        values |= {"stage": row.stage, "status": row.status.value}
    _apply(deal, values)
    if attributes:
        deal.attributes = {**(deal.attributes or {}), **attributes}
    session.flush()
    if not created and from_stage != deal.stage:
        deal.stage_entered_at = now
        deal.closed_at = now if deal.status != "open" else None
        session.add(StageHistory(deal_id=deal.id, from_stage=from_stage, to_stage=deal.stage, changed_at=now, changed_by=actor_name))
    elif created:
        if deal.status != "open":
            deal.closed_at = now
        session.add(StageHistory(deal_id=deal.id, from_stage=None, to_stage=deal.stage, changed_at=now, changed_by=actor_name))
    return Saved(id=deal.id, created=created)


def deal_out(session: Session, d: Deal, *, decisions: bool = True, owners: dict[int, str] | None = None) -> DealOut:
    owners = owners if owners is not None else _owner_names(session, {d.owner_id})
    return DealOut(id=d.id, external_id=d.external_id, name=d.name, account_id=d.account_id, primary_contact_id=d.primary_contact_id,
                   owner=owners.get(d.owner_id), product=d.product, stage=d.stage, status=d.status,
                   amount=float(d.amount) if d.amount is not None else None, currency=d.currency, expected_close=d.expected_close,
                   risk=d.risk, risk_reason=d.risk_reason, risk_action=d.risk_action, risk_updated_at=d.risk_updated_at,
                   created_at=d.created_at, updated_at=d.updated_at, attributes=d.attributes or {},
                   latest_decisions=_decisions(session, "deal", d.id) if decisions else [])


def get_deal(session: Session, deal_id: int, *, actor: Actor | None = None) -> DealOut:
    d = session.get(Deal, deal_id)
    if d is None:
        raise NotFound(f"deal {deal_id} not found")
    _check_visible(actor, d.owner_id, f"deal {deal_id}")
    return deal_out(session, d)


def list_deals(session: Session, *, cursor: str | None = None, limit: int = 50, status: str | None = None,
               stage: str | None = None, risk: str | None = None, owner: str | None = None,
               updated_since: datetime | None = None, actor: Actor | None = None) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    q = select(Deal).where(Deal.id > decode_cursor(cursor)).order_by(Deal.id).limit(limit + 1)
    q = _visible_only(q, Deal, actor)
    if status:
        q = q.where(Deal.status == status)
    if stage:
        q = q.where(Deal.stage == stage)
    if risk:
        q = q.where(Deal.risk == risk)
    if owner:
        q = q.where(Deal.owner_id == _owner_id(session, owner))
    if updated_since is not None:
        q = q.where(Deal.updated_at >= clock.to_naive_utc(updated_since))
    rows = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    owners = _owner_names(session, {r.owner_id for r in rows})
    return Page(items=[deal_out(session, r, decisions=False, owners=owners) for r in rows],
                next_cursor=encode_cursor(rows[-1].id) if more else None)
