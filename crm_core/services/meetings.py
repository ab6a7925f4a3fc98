"""Meetings: upcoming ones with their briefs, past ones with their action items.

A rep sees the meetings they own; asking for someone else's is refused naming `view_all`."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import owner_scope
from crm_core.models import Contact, Deal, Meeting, Task, User


class ActionItemView(BaseModel):
    id: int
    title: str
    owner: str | None
    due_at: datetime | None
    status: str
    created_by: str | None


class MeetingView(BaseModel):
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    status: str
    contact_id: int | None
    contact: str | None
    deal_id: int | None
    deal: str | None
    owner: str | None
    attendees: list[str]
    agenda: str | None
    brief: str | None              # written by the meeting agent before the meeting
    brief_ready_at: datetime | None
    has_transcript: bool
    action_items: list[ActionItemView]


class MeetingsOverview(BaseModel):
    upcoming: list[MeetingView]
    upcoming_total: int
    upcoming_with_brief: int
    past: list[MeetingView]
    past_total: int


def _views(session: Session, rows) -> list[MeetingView]:
    ids = [m.id for m, *_ in rows]
    items: dict[int, list[ActionItemView]] = {}
    if ids:
        owner = aliased(User)
        for task, owner_name in session.execute(
            select(Task, owner.name).outerjoin(owner, owner.id == Task.owner_id)
            .where(Task.meeting_id.in_(ids)).order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        ):
            items.setdefault(task.meeting_id, []).append(ActionItemView(
                id=task.id, title=task.title, owner=owner_name, due_at=task.due_at, status=task.status, created_by=task.created_by))
    out = []
    for m, first, last, email, deal_name, owner_name in rows:
        contact = " ".join(p for p in (first, last) if p) or email
        out.append(MeetingView(
            id=m.id, title=m.title, starts_at=m.starts_at, ends_at=m.ends_at, status=m.status,
            contact_id=m.contact_id, contact=contact, deal_id=m.deal_id, deal=deal_name, owner=owner_name,
            attendees=[str(a) for a in (m.attendees or [])], agenda=m.agenda, brief=m.brief, brief_ready_at=m.brief_ready_at,
            has_transcript=bool(m.transcript), action_items=items.get(m.id, []),
        ))
    return out


def _query():
    return (
        select(Meeting, Contact.first_name, Contact.last_name, Contact.email, Deal.name, User.name)
        .outerjoin(Contact, Contact.id == Meeting.contact_id)
        .outerjoin(Deal, Deal.id == Meeting.deal_id)
        .outerjoin(User, User.id == Meeting.owner_id)
    )


def meetings_overview(session: Session, *, actor: Actor, owner_id: int | None = None, upcoming_limit: int = 20,
                      past_limit: int = 20, past_offset: int = 0) -> MeetingsOverview:
    """Scheduled meetings from now on (soonest first) and past meetings (latest first, paged)."""
    owner_id = owner_scope(actor, owner_id, doing="see the meetings")
    now = clock.now()
    owner = [Meeting.owner_id == owner_id] if owner_id is not None else []
    upcoming_where = [Meeting.starts_at >= now, Meeting.status != "cancelled", *owner]
    past_where = [Meeting.starts_at < now, *owner]
    upcoming_total, with_brief = session.execute(
        select(func.count(), func.count(Meeting.brief_ready_at)).select_from(Meeting).where(*upcoming_where)
    ).one()
    past_total = session.scalar(select(func.count()).select_from(Meeting).where(*past_where)) or 0
    upcoming = session.execute(_query().where(*upcoming_where).order_by(Meeting.starts_at, Meeting.id).limit(upcoming_limit)).all()
    past = session.execute(_query().where(*past_where).order_by(Meeting.starts_at.desc(), Meeting.id.desc())
                           .limit(past_limit).offset(past_offset)).all()
    return MeetingsOverview(
        upcoming=_views(session, upcoming), upcoming_total=int(upcoming_total or 0), upcoming_with_brief=int(with_brief or 0),
        past=_views(session, past), past_total=int(past_total),
    )
