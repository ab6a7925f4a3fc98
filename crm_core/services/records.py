"""Contact and deal detail: finding a record, its header, and its timeline.

A timeline merges activities, emails, meetings, tasks, scores, stage changes and agent
decisions, newest first. Each source is read with its own indexed, limited query and the
results are merged, so a contact with 10,000 page views costs one page of each, not all.

Rights: a rep finds and opens only the contacts and deals they own; opening anyone else's is
refused naming `view_all`.

Email bodies, notes and transcripts are untrusted text: they are returned as plain strings and
the pages show them as text, never as markdown.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import authorize_view, visible_owner
from crm_core.errors import NotFound
from crm_core.models import (
    Account,
    Activity,
    Contact,
    Deal,
    Decision,
    Email,
    Meeting,
    ScoreHistory,
    StageHistory,
    Task,
    User,
)
from crm_core.oversight import wording
from crm_core.oversight.audit_words import who

TimelineKind = Literal["activity", "email", "meeting", "task", "score", "stage", "decision"]
EXCERPT = 280


class RecordHit(BaseModel):
    kind: Literal["contact", "deal"]
    id: int
    label: str
    detail: str


class TimelineEvent(BaseModel):
    at: datetime
    kind: TimelineKind
    title: str
    detail: str = ""
    ref_id: int | None = None


class DealBrief(BaseModel):
    id: int
    name: str
    stage: str
    status: str
    amount: float | None
    currency: str
    risk: str | None


class ContactDetail(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    title: str | None
    account: str | None
    owner: str | None
    source: str | None
    lifecycle_stage: str
    score: int | None
    tier: str | None
    next_action: str | None
    last_activity_at: datetime | None
    sensitive: bool
    deals: list[DealBrief]


class DealDetail(BaseModel):
    id: int
    name: str
    stage: str
    status: str
    amount: float | None
    currency: str
    product: str | None
    account: str | None
    owner: str | None
    primary_contact_id: int | None
    primary_contact: str | None
    opened_at: datetime | None
    expected_close: date | None
    stage_entered_at: datetime | None
    closed_at: datetime | None
    risk: str | None
    risk_reason: str | None
    risk_action: str | None
    risk_snoozed_until: date | None
    risk_snooze_reason: str | None
    snoozed: bool                  # the flag is hidden until risk_snoozed_until


def _excerpt(text: str | None, n: int = EXCERPT) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _payload_text(payload: dict[str, Any] | None) -> str:
    if not payload:
        return ""
    return _excerpt(", ".join(f"{k}: {v}" for k, v in payload.items() if v not in (None, "", [], {})))


def search_records(session: Session, text: str, *, actor: Actor, limit: int = 20) -> list[RecordHit]:
    """Contacts by name, email or company and deals by name; case-insensitive substring.
    A rep finds their own records only."""
    needle = (text or "").strip().lower()
    if not needle:
        return []
    own = visible_owner(actor)
    if needle.isdigit():
        hits: list[RecordHit] = []
        contact = session.get(Contact, int(needle))
        if contact and (own is None or contact.owner_id == own):
            hits.append(RecordHit(kind="contact", id=contact.id, label=contact.full_name, detail=contact.email or ""))
        deal = session.get(Deal, int(needle))
        if deal and (own is None or deal.owner_id == own):
            hits.append(RecordHit(kind="deal", id=deal.id, label=deal.name, detail=f"{deal.stage} · {deal.status}"))
        return hits
    like = f"%{needle}%"
    name = func.lower(func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, ""))
    contacts = session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Account.name)
        .outerjoin(Account, Account.id == Contact.account_id)
        .where(or_(name.like(like), Contact.email_normalized.like(like), func.lower(Account.name).like(like)),
               *([Contact.owner_id == own] if own is not None else []))
        .order_by(Contact.score.is_(None), Contact.score.desc(), Contact.id).limit(limit)
    ).all()
    deals = session.execute(
        select(Deal.id, Deal.name, Deal.stage, Deal.status)
        .where(func.lower(Deal.name).like(like), *([Deal.owner_id == own] if own is not None else []))
        .order_by(Deal.status != "open", Deal.id.desc()).limit(limit)
    ).all()
    out = [RecordHit(kind="contact", id=cid, label=" ".join(p for p in (f, l) if p) or (e or f"contact {cid}"),
                     detail=" · ".join(p for p in (e, acct) if p)) for cid, f, l, e, acct in contacts]
    out += [RecordHit(kind="deal", id=did, label=n, detail=f"{stage} · {status}") for did, n, stage, status in deals]
    return out


def _contact(session: Session, contact_id: int, actor: Actor) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    authorize_view(actor, contact.owner_id, doing="open this contact")
    return contact


def _deal(session: Session, deal_id: int, actor: Actor) -> Deal:
    deal = session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    authorize_view(actor, deal.owner_id, doing="open this deal")
    return deal


def contact_detail(session: Session, contact_id: int, *, actor: Actor) -> ContactDetail:
    contact = _contact(session, contact_id, actor)
    owner = session.get(User, contact.owner_id) if contact.owner_id else None
    deals = session.scalars(
        select(Deal).where(Deal.primary_contact_id == contact_id).order_by(Deal.status != "open", Deal.id.desc()).limit(50)
    )
    return ContactDetail(
        id=contact.id, name=contact.full_name, email=contact.email, phone=contact.phone, title=contact.title,
        account=contact.account.name if contact.account else None, owner=owner.name if owner else None,
        source=contact.source, lifecycle_stage=contact.lifecycle_stage, score=contact.score, tier=contact.tier,
        next_action=contact.next_action, last_activity_at=contact.last_activity_at, sensitive=contact.sensitive,
        deals=[DealBrief(id=d.id, name=d.name, stage=d.stage, status=d.status, amount=float(d.amount) if d.amount is not None else None,
                         currency=d.currency, risk=d.risk) for d in deals],
    )


def deal_detail(session: Session, deal_id: int, *, actor: Actor) -> DealDetail:
    _deal(session, deal_id, actor)
    row = session.execute(
        select(Deal, Account.name, User.name).outerjoin(Account, Account.id == Deal.account_id)
        .outerjoin(User, User.id == Deal.owner_id).where(Deal.id == deal_id)
    ).first()
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    deal, account, owner = row
    contact = session.get(Contact, deal.primary_contact_id) if deal.primary_contact_id else None
    return DealDetail(
        id=deal.id, name=deal.name, stage=deal.stage, status=deal.status,
        amount=float(deal.amount) if deal.amount is not None else None, currency=deal.currency, product=deal.product,
        account=account, owner=owner, primary_contact_id=deal.primary_contact_id,
        primary_contact=contact.full_name if contact else None, opened_at=deal.opened_at, expected_close=deal.expected_close,
        stage_entered_at=deal.stage_entered_at, closed_at=deal.closed_at, risk=deal.risk, risk_reason=deal.risk_reason,
        risk_action=deal.risk_action, risk_snoozed_until=deal.risk_snoozed_until, risk_snooze_reason=deal.risk_snooze_reason,
        snoozed=deal.risk_snoozed_until is not None and deal.risk_snoozed_until > clock.now().date(),
    )


# ---- timelines ------------------------------------------------------------------------------------

def _activities(session: Session, column, record_id: int, limit: int) -> list[TimelineEvent]:
    rows = session.scalars(select(Activity).where(column == record_id).order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit))
    return [TimelineEvent(at=a.occurred_at, kind="activity", title=a.type.replace("_", " "), detail=_payload_text(a.payload), ref_id=a.id)
            for a in rows]


def _emails(session: Session, column, record_id: int, limit: int) -> list[TimelineEvent]:
    rows = session.scalars(select(Email).where(column == record_id).order_by(Email.sent_at.desc(), Email.id.desc()).limit(limit))
    out = []
    for e in rows:
        arrow = "received" if e.direction == "inbound" else "sent"
        state = "replied" if e.replied_at else ("opened" if e.opened_at else "")
        title = f"email {arrow}: {e.subject or '(no subject)'}" + (f" ({state})" if state else "")
        out.append(TimelineEvent(at=e.sent_at, kind="email", title=_excerpt(title, 200), detail=_excerpt(e.body), ref_id=e.id))
    return out


def _meetings(session: Session, column, record_id: int, limit: int) -> list[TimelineEvent]:
    rows = session.scalars(select(Meeting).where(column == record_id).order_by(Meeting.starts_at.desc(), Meeting.id.desc()).limit(limit))
    return [TimelineEvent(at=m.starts_at, kind="meeting", title=f"meeting ({m.status}): {m.title}",
                          detail=_excerpt(m.brief or m.agenda), ref_id=m.id) for m in rows]


def _tasks(session: Session, column, record_id: int, limit: int) -> list[TimelineEvent]:
    rows = session.scalars(select(Task).where(column == record_id).order_by(Task.created_at.desc(), Task.id.desc()).limit(limit))
    return [TimelineEvent(at=t.created_at, kind="task", title=f"{t.kind.replace('_', ' ')} ({t.status}): {t.title}",
                          detail=" · ".join(p for p in (f"due {t.due_at:%Y-%m-%d}" if t.due_at else "",
                                                         f"by {who(t.created_by)}" if t.created_by else "") if p), ref_id=t.id)
            for t in rows]


def _decisions(session: Session, subject_type: str, record_id: int, limit: int) -> list[TimelineEvent]:
    rows = session.scalars(
        select(Decision).where(Decision.subject_type == subject_type, Decision.subject_id == record_id)
        .order_by(Decision.created_at.desc(), Decision.id.desc()).limit(limit)
    )
    out = []
    for d in rows:
        kinds = ", ".join(wording.action_plural(a.get("type"), 1) for a in (d.actions or [])) or "no action"
        by = f" by {who(d.decided_by)}" if d.decided_by else ""
        out.append(TimelineEvent(at=d.created_at, kind="decision", title=f"{wording.agent_label(d.agent)} agent proposed {kinds}: "
                                 f"{d.status.replace('_', ' ')}{by}", detail=_excerpt(wording.plain(d.reasoning)), ref_id=d.id))
    return out


def _merge(groups: list[list[TimelineEvent]], limit: int) -> list[TimelineEvent]:
    events = [e for group in groups for e in group]
    events.sort(key=lambda e: e.at, reverse=True)
    return events[:limit]


def contact_timeline(session: Session, contact_id: int, *, actor: Actor, limit: int = 100) -> list[TimelineEvent]:
    """Activities, emails, meetings, tasks, scores and decisions about one contact, newest first."""
    _contact(session, contact_id, actor)
    scores = session.scalars(
        select(ScoreHistory).where(ScoreHistory.contact_id == contact_id)
        .order_by(ScoreHistory.scored_at.desc(), ScoreHistory.id.desc()).limit(limit)
    )
    return _merge([
        _activities(session, Activity.contact_id, contact_id, limit),
        _emails(session, Email.contact_id, contact_id, limit),
        _meetings(session, Meeting.contact_id, contact_id, limit),
        _tasks(session, Task.contact_id, contact_id, limit),
        [TimelineEvent(at=s.scored_at, kind="score", title=f"score {s.score} ({s.tier})", detail=_excerpt(s.reason), ref_id=s.id) for s in scores],
        _decisions(session, "contact", contact_id, limit),
    ], limit)


def deal_timeline(session: Session, deal_id: int, *, actor: Actor, limit: int = 100) -> list[TimelineEvent]:
    """Activities, emails, meetings, tasks, stage changes and decisions about one deal, newest first."""
    _deal(session, deal_id, actor)
    stages = session.scalars(
        select(StageHistory).where(StageHistory.deal_id == deal_id)
        .order_by(StageHistory.changed_at.desc(), StageHistory.id.desc()).limit(limit)
    )
    return _merge([
        _activities(session, Activity.deal_id, deal_id, limit),
        _emails(session, Email.deal_id, deal_id, limit),
        _meetings(session, Meeting.deal_id, deal_id, limit),
        _tasks(session, Task.deal_id, deal_id, limit),
        [TimelineEvent(at=h.changed_at, kind="stage", title=f"stage {h.from_stage or '(new)'} → {h.to_stage}",
                       detail=f"by {who(h.changed_by)}" if h.changed_by else "", ref_id=h.id) for h in stages],
        _decisions(session, "deal", deal_id, limit),
    ], limit)
