"""The store -> meeting contexts of three kinds: invites, briefs, action items.

Subject ids: a meeting's id (positive) for a brief or its action items, and minus a contact's id
for an invite (`--id -42` invites contact 42). One id space keeps the runner's contract
(`subjects`/`build` take integers) while telling the two subjects apart without a lookup.

At `as_of`:
- brief: a scheduled meeting starting within the next hour with no brief yet, that the agent has
  not already decided on;
- action items: a meeting that ended in the last 30 days, has a transcript and no action items
  extracted, and no decision of the agent on it yet;
- invite: an open contact with an email address who is hot (lead score), was routed to a demo, asked
  for a demo in the last 14 days or read the pricing page twice in a week; with no meeting booked,
  none held in the last 2 days, no meeting coming up on their deal, no follow-up or invite waiting
  in the queue, and no invite proposed in the last 14 days (a rejected invite is not proposed again
  the next hour). One per owner per pass, most telling first, and none for an owner with three
  invites already waiting for review; an invite's busy time includes the invites still waiting.
  Invites are an hourly pass: a run within 55 minutes of the last invite proposes none (the
  scheduler wakes this agent every minute a brief or action items are due).
Nothing after `as_of` is read: emails, activities, scores and meetings are cut at `as_of`.

A context also says what already exists, so the agent never doubles it: a brief context whether
the meeting has a brief, an action-items context the items already created from it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.common.working_hours import Interval, histogram
from agents.meeting.invite import INVITE_HORIZON_DAYS
from agents.meeting.models import (
    AccountRef,
    ActionItemFacts,
    ActivityRef,
    BriefFacts,
    Context,
    InviteFacts,
    MeetingRef,
    Participant,
    PersonRef,
    TaskRef,
)
from crm_core import clock
from crm_core.contexts.book_meeting import meeting_block
from crm_core.contexts.follow_up import (
    OUTCOMES,
    PENDING,
    chunks,
    content_items,
    deal_refs,
    email_items,
    load_by_contact,
    meeting_items,
    open_deals,
    payload_text,
    pending_contacts,
    rep_hours,
    response_pattern,
    stage_at,
)
from crm_core.models import Account, Activity, Contact, Deal, Decision, Email, Meeting, ScoreHistory, Task, User
from crm_core.quality.placeholders import known_or_none

BRIEF_WINDOW_MINUTES = 60
ITEMS_LOOKBACK_DAYS = 30
INVITE_COOLDOWN_DAYS = 14
RECENT_MEETING_DAYS = 2
DEMO_REQUEST_DAYS = 14
PRICING_VIEWS_MIN = 2
INVITES_PER_OWNER = 1        # per run; the scheduler runs invites hourly
PENDING_INVITES_PER_OWNER = 3  # unreviewed invites a rep may have waiting before more are proposed
INVITE_PASS_MINUTES = 55      # invites are an hourly pass, however often the agent is woken
BRIEF_EMAILS = 6
BRIEF_ACTIVITY = 10
HISTORY_DAYS = 365
_DEMO = re.compile(r"demo|trial|contact[-_ ]?sales|talk[-_ ]?to[-_ ]?sales|book[-_ ]?a[-_ ]?(call|meeting)", re.IGNORECASE)
_PRICING = re.compile(r"pric|/plans?\b", re.IGNORECASE)


# == subjects ========================================================================================
def _decided(session: Session, meeting_ids: Sequence[int], as_of: datetime, kind: str) -> set[int]:
    """Meetings the agent already decided on for this kind (any outcome but failed)."""
    done: set[int] = set()
    for chunk in chunks(list(meeting_ids)):
        for subject_id, decision in session.execute(
            select(Decision.subject_id, Decision.decision).where(
                Decision.agent == "meeting", Decision.subject_type == "meeting", Decision.subject_id.in_(chunk),
                Decision.status != "failed", Decision.created_at <= as_of)
        ):
            if (decision or {}).get("kind") == kind:
                done.add(subject_id)
    return done


def brief_subjects(session: Session, as_of: datetime) -> list[int]:
    ids = session.scalars(select(Meeting.id).where(
        Meeting.status == "scheduled", Meeting.created_at <= as_of, Meeting.starts_at > as_of,
        Meeting.starts_at <= as_of + timedelta(minutes=BRIEF_WINDOW_MINUTES),
        or_(Meeting.brief.is_(None), Meeting.brief_ready_at > as_of),
    ).order_by(Meeting.starts_at, Meeting.id)).all()
    done = _decided(session, ids, as_of, "brief")
    return [i for i in ids if i not in done]


def action_item_subjects(session: Session, as_of: datetime) -> list[int]:
    ids = session.scalars(select(Meeting.id).where(
        Meeting.status != "cancelled", Meeting.created_at <= as_of, Meeting.ends_at <= as_of,
        Meeting.ends_at > as_of - timedelta(days=ITEMS_LOOKBACK_DAYS), Meeting.transcript.is_not(None),
        or_(Meeting.action_items_extracted_at.is_(None), Meeting.action_items_extracted_at > as_of),
    ).order_by(Meeting.ends_at, Meeting.id)).all()
    done = _decided(session, ids, as_of, "action_items")
    return [i for i in ids if i not in done]


def scores_at(session: Session, contacts: dict[int, Contact], as_of: datetime) -> dict[int, tuple[int | None, str | None, str | None]]:
    """contact id -> (score, tier, next action) as they stood at `as_of`."""
    latest: dict[int, ScoreHistory] = {}
    for chunk in chunks(list(contacts)):
        for point in session.scalars(select(ScoreHistory).where(ScoreHistory.contact_id.in_(chunk), ScoreHistory.scored_at <= as_of)
                                     .order_by(ScoreHistory.contact_id, ScoreHistory.scored_at, ScoreHistory.id)):
            latest[point.contact_id] = point
    out = {}
    for cid, c in contacts.items():
        current = c.score_updated_at is not None and c.score_updated_at <= as_of
        point = latest.get(cid)
        if point is not None:
            out[cid] = (point.score, point.tier, c.next_action if current else None)
        elif current or (c.score is not None and "score" in (c.manual_fields or [])):
            out[cid] = (c.score, c.tier, c.next_action if current else None)
        else:
            out[cid] = (None, None, None)
    return out


def _engaged(session: Session, ids: list[int], as_of: datetime) -> tuple[dict[int, datetime], dict[int, int]]:
    """Demo requests in the last 14 days and pricing views in the last 7, per contact."""
    demo: dict[int, datetime] = {}
    pricing: dict[int, int] = defaultdict(int)
    for chunk in chunks(ids):
        for cid, type_, at, payload in session.execute(
            select(Activity.contact_id, Activity.type, Activity.occurred_at, Activity.payload).where(
                Activity.contact_id.in_(chunk), Activity.type.in_(("form_submit", "page_view")), Activity.occurred_at <= as_of,
                Activity.occurred_at > as_of - timedelta(days=DEMO_REQUEST_DAYS))
        ):
            if type_ == "form_submit":
                form = payload_text(payload, "form", "name", "url", "title")
                if form and _DEMO.search(form) and (cid not in demo or at > demo[cid]):
                    demo[cid] = at
            elif at > as_of - timedelta(days=7):
                url = payload_text(payload, "url", "path", "page", "title")
                if url and _PRICING.search(url):
                    pricing[cid] += 1
    return demo, dict(pricing)


def _invite_priority(cid: int, scores: dict, demo: dict[int, datetime], pricing: dict[int, int]) -> tuple:
    """Most telling first: asked for a demo, then hot, then routed to a demo or a senior rep, then pricing reads."""
    score, tier, next_action = scores[cid]
    rank = 0 if cid in demo else 1 if tier == "hot" else 2 if next_action in ("schedule_demo", "route_to_senior_rep") else 3
    return rank, -(score or 0), -pricing.get(cid, 0), cid


def invite_subjects(session: Session, as_of: datetime) -> list[int]:
    """Engaged contacts with nothing booked, at most INVITES_PER_OWNER per owner in one run, and
    none for an owner who already has PENDING_INVITES_PER_OWNER invites waiting for review.

    The cap keeps one run from giving a rep several invites at once: contexts are built before any
    decision is made, so two invites for one rep in the same run could pick the same free slot.
    The next run sees the first invite (pending in the queue) as busy time and moves on.
    """
    if _invited_within(session, as_of, timedelta(minutes=INVITE_PASS_MINUTES)):
        return []
    contacts = {c.id: c for c in session.scalars(select(Contact).where(
        Contact.created_at <= as_of, Contact.email.is_not(None),
        or_(Contact.lifecycle_stage.not_in(OUTCOMES), Contact.outcome_at > as_of))).unique()}
    if not contacts:
        return []
    scores = scores_at(session, contacts, as_of)
    demo, pricing = _engaged(session, list(contacts), as_of)
    hot = [cid for cid in contacts if scores[cid][1] == "hot" or scores[cid][2] in ("schedule_demo", "route_to_senior_rep")
           or cid in demo or pricing.get(cid, 0) >= PRICING_VIEWS_MIN]
    if not hot:
        return []
    deals = open_deals(session, as_of, hot)
    booked: set[int] = set()
    for chunk in chunks(hot):
        booked.update(session.scalars(select(Meeting.contact_id).where(
            Meeting.contact_id.in_(chunk), Meeting.status != "cancelled", Meeting.created_at <= as_of,
            Meeting.starts_at > as_of - timedelta(days=RECENT_MEETING_DAYS))))
    # A deal with a meeting coming up (with anyone on it) needs no second one.
    deal_ids = [d.id for d in deals.values()]
    busy_deals: set[int] = set()
    for chunk in chunks(deal_ids):
        busy_deals.update(session.scalars(select(Meeting.deal_id).where(
            Meeting.deal_id.in_(chunk), Meeting.status != "cancelled", Meeting.created_at <= as_of, Meeting.starts_at > as_of)))
    pending = pending_contacts(session, hot, as_of, deals)
    cooling = _recent_invites(session, hot, deals, as_of)
    due = [cid for cid in hot if cid not in booked and cid not in pending and cid not in cooling
           and not (cid in deals and deals[cid].id in busy_deals)]
    waiting = {owner: len(slots) for owner, slots in pending_invites(session, as_of).items()}
    per_owner: dict[int | None, int] = defaultdict(int)
    chosen = []
    for cid in sorted(due, key=lambda c: _invite_priority(c, scores, demo, pricing)):
        deal = deals.get(cid)
        owner = (deal.owner_id if deal and deal.owner_id else None) or contacts[cid].owner_id
        if per_owner[owner] >= INVITES_PER_OWNER or waiting.get(owner, 0) >= PENDING_INVITES_PER_OWNER:
            continue
        per_owner[owner] += 1
        chosen.append(-cid)
    return chosen


def _invited_within(session: Session, as_of: datetime, window: timedelta) -> bool:
    """True when an invite pass already ran within `window` before `as_of`.

    The scheduler wakes this agent every minute a brief or action items are due; invites are an
    hourly pass, so a wake-up for a brief must not propose the next round of invites.
    """
    return session.scalar(select(Decision.id).where(
        Decision.agent == "meeting", Decision.subject_type.in_(("contact", "deal")),
        Decision.created_at <= as_of, Decision.created_at > as_of - window).limit(1)) is not None


def _recent_invites(session: Session, ids: list[int], deals: dict[int, Deal], as_of: datetime) -> set[int]:
    by_deal = {d.id: cid for cid, d in deals.items()}
    wanted = set(ids)
    found = set()
    for subject_type, subject_id in session.execute(
        select(Decision.subject_type, Decision.subject_id).where(
            Decision.agent == "meeting", Decision.subject_type.in_(("contact", "deal")), Decision.status != "failed",
            Decision.created_at <= as_of, Decision.created_at > as_of - timedelta(days=INVITE_COOLDOWN_DAYS))
    ):
        cid = subject_id if subject_type == "contact" else by_deal.get(subject_id)
        if cid in wanted:
            found.add(cid)
    return found


def prepare(session: Session, *, as_of: datetime) -> None:
    """Nothing is learned ahead of a meeting run: `build` reads all it needs."""
    return None


def subjects(session: Session, *, as_of: datetime) -> list[int]:
    """Meetings due a brief or action items (their ids), then contacts due an invite (minus their ids)."""
    return brief_subjects(session, as_of) + action_item_subjects(session, as_of) + invite_subjects(session, as_of)


# == building ========================================================================================
@dataclass
class Lookups:
    users: dict[int, User]
    as_of: datetime


def _person(contact: Contact | None) -> PersonRef:
    if contact is None:
        return PersonRef()
    return PersonRef(contact_id=contact.id, name=contact.full_name, first_name=known_or_none(contact.first_name),
                     title=known_or_none(contact.title),
                     company=contact.account.name if contact.account else None, email=contact.email)


def _sensitive(contact: Contact | None, deal: Deal | None, session: Session) -> bool:
    if contact is not None and (contact.sensitive or (contact.account is not None and contact.account.sensitive)):
        return True
    if deal is not None and deal.account_id is not None:
        account = session.get(Account, deal.account_id)
        return bool(account and account.sensitive)
    return False


def _meeting_ref(m: Meeting) -> MeetingRef:
    return MeetingRef(meeting_id=m.id, title=m.title, starts_at=m.starts_at, ends_at=m.ends_at, status=m.status,
                      agenda=m.agenda, attendees=[str(a) for a in (m.attendees or []) if a])


def _invite(session: Session, contact: Contact, look: Lookups) -> Context:
    as_of = look.as_of
    deal = open_deals(session, as_of, [contact.id]).get(contact.id)
    ref = deal_refs(session, [deal], as_of).get(deal.id) if deal else None
    owner_id = (deal.owner_id if deal and deal.owner_id else None) or contact.owner_id
    owner = rep_hours(look.users.get(owner_id)) if owner_id else None
    score, tier, next_action = scores_at(session, {contact.id: contact}, as_of)[contact.id]
    demo, pricing = _engaged(session, [contact.id], as_of)
    emails = load_by_contact(session, Email, [contact.id], Email.sent_at <= as_of)[contact.id]
    acts = load_by_contact(session, Activity, [contact.id], Activity.occurred_at <= as_of,
                           Activity.occurred_at > as_of - timedelta(days=HISTORY_DAYS))[contact.id]
    meetings = load_by_contact(session, Meeting, [contact.id], Meeting.created_at <= as_of)[contact.id]
    held = [m for m in meeting_items(meetings, acts, as_of, limit=1000) if m.starts_at <= as_of and m.status != "cancelled"]
    inbound = [e for e in email_items(emails, as_of, 50) if e.direction == "inbound" and e.sent_at > as_of - timedelta(days=30)]
    busy: list[Interval] = []
    if owner_id:
        horizon = as_of + timedelta(days=INVITE_HORIZON_DAYS + 1)
        for m in session.scalars(select(Meeting).where(
            Meeting.owner_id == owner_id, Meeting.status != "cancelled", Meeting.created_at <= as_of,
            Meeting.ends_at > as_of, Meeting.starts_at < horizon).order_by(Meeting.starts_at)):
            busy.append(Interval(starts_at=m.starts_at, ends_at=m.ends_at))
        busy = sorted(busy + pending_invites(session, as_of).get(owner_id, []), key=lambda b: (b.starts_at, b.ends_at))
    facts = InviteFacts(
        score=score, tier=tier, next_action=next_action,
        buying_stage=ref.stage if ref else stage_at(contact, as_of), deal=ref,
        demo_requested_at=demo.get(contact.id), pricing_views_7d=pricing.get(contact.id, 0),
        recent_content=content_items(acts, as_of, limit=8),
        last_inbound=inbound[-1] if inbound else None,
        preferred=histogram(m.starts_at for m in held),
        email_engagement=response_pattern(emails, acts, as_of).engagement,
        past_meetings=held[-5:], busy=busy,
    )
    return Context(kind="invite", as_of=as_of.replace(second=0, microsecond=0), contact_id=contact.id, contact=_person(contact),
                   owner=owner, sensitive=_sensitive(contact, deal, session), invite=facts)


def pending_invites(session: Session, as_of: datetime) -> dict[int, list[Interval]]:
    """owner id -> the times of invites still waiting for a human (or approved, not yet sent).

    They are not meetings yet, but approving one books the rep: a second invite must not take the
    same slot.
    """
    out: dict[int, list[Interval]] = defaultdict(list)
    rows = session.execute(select(Decision.subject_type, Decision.subject_id, Decision.actions).where(
        Decision.agent == "meeting", Decision.status.in_(PENDING), Decision.created_at <= as_of,
        Decision.created_at > as_of - timedelta(days=INVITE_COOLDOWN_DAYS + INVITE_HORIZON_DAYS),
        Decision.subject_type.in_(("contact", "deal")))).all()
    wanted: list[tuple[str, int, dict]] = []
    for subject_type, subject_id, actions in rows:
        for action in actions or []:
            if isinstance(action, dict) and action.get("type") == "schedule_meeting":
                wanted.append((subject_type, subject_id, action.get("params") or {}))
    if not wanted:
        return {}
    deal_owner = dict(session.execute(select(Deal.id, Deal.owner_id).where(
        Deal.id.in_({sid for st, sid, _ in wanted if st == "deal"}))).all())
    contact_owner = dict(session.execute(select(Contact.id, Contact.owner_id).where(
        Contact.id.in_({p.get("contact_id") for _, _, p in wanted if isinstance(p.get("contact_id"), int)}))).all())
    for subject_type, subject_id, params in wanted:
        owner = (deal_owner.get(subject_id) if subject_type == "deal" else None) or contact_owner.get(params.get("contact_id"))
        try:
            start = clock.to_naive_utc(datetime.fromisoformat(str(params["starts_at"])))
            minutes = int(params.get("duration_minutes") or 30)
        except (KeyError, TypeError, ValueError):
            continue  # a malformed proposal books nothing
        if owner is not None and start + timedelta(minutes=minutes) > as_of:
            out[owner].append(Interval(starts_at=start, ends_at=start + timedelta(minutes=minutes)))
    return dict(out)


def pending_actions(session: Session, meeting_id: int, action_type: str, as_of: datetime) -> list[dict[str, Any]]:
    """Params of `action_type` actions on this meeting in decisions still waiting for a human (or
    approved and not yet run): what an explicit second run must not propose again."""
    out = []
    for actions in session.scalars(select(Decision.actions).where(
            Decision.agent == "meeting", Decision.subject_type == "meeting", Decision.subject_id == meeting_id,
            Decision.status.in_(PENDING), Decision.created_at <= as_of)):
        out += [a.get("params") or {} for a in actions or [] if isinstance(a, dict) and a.get("type") == action_type]
    return out


def _activity_detail(a: Activity) -> str | None:
    if a.type == "page_view":
        return payload_text(a.payload, "title", "url", "path")
    if a.type == "content_download":
        return payload_text(a.payload, "asset", "title", "name")
    if a.type == "form_submit":
        return payload_text(a.payload, "form", "name", "url")
    return payload_text(a.payload, "subject", "summary", "title", "notes", "outcome")


def _brief(session: Session, meeting: Meeting, look: Lookups) -> Context:
    as_of = look.as_of
    contact = session.get(Contact, meeting.contact_id) if meeting.contact_id else None
    deal = session.get(Deal, meeting.deal_id) if meeting.deal_id else None
    if deal is None and contact is not None:
        deal = open_deals(session, as_of, [contact.id]).get(contact.id)
    ref = deal_refs(session, [deal], as_of).get(deal.id) if deal else None
    owner_id = meeting.owner_id or (deal.owner_id if deal else None) or (contact.owner_id if contact else None)
    account = contact.account if contact and contact.account else (session.get(Account, deal.account_id) if deal and deal.account_id else None)
    emails: list[Any] = []
    acts: list[Activity] = []
    meetings: list[Meeting] = []
    score = tier = None
    tasks: list[TaskRef] = []
    if contact is not None:
        emails = load_by_contact(session, Email, [contact.id], Email.sent_at <= as_of)[contact.id]
        acts = load_by_contact(session, Activity, [contact.id], Activity.occurred_at <= as_of,
                               Activity.occurred_at > as_of - timedelta(days=90))[contact.id]
        meetings = [m for m in load_by_contact(session, Meeting, [contact.id], Meeting.created_at <= as_of)[contact.id] if m.id != meeting.id]
        score, tier, _ = scores_at(session, {contact.id: contact}, as_of)[contact.id]
    conditions = [Task.status == "open", Task.created_at <= as_of]
    owners_of = [Task.contact_id == contact.id] if contact else []
    if deal is not None:
        owners_of.append(Task.deal_id == deal.id)
    if owners_of:
        for t in session.scalars(select(Task).where(or_(*owners_of), *conditions).order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(8)):
            user = look.users.get(t.owner_id) if t.owner_id else None
            tasks.append(TaskRef(title=t.title[:300], due_at=t.due_at, owner=user.name if user else None))
    activity = [ActivityRef(kind=a.type, at=a.occurred_at, detail=(_activity_detail(a) or "")[:200] or None)
                for a in sorted(acts, key=lambda a: (a.occurred_at, a.id), reverse=True) if a.type != "stage_change"][:BRIEF_ACTIVITY]
    previous = [m for m in meeting_items(meetings, acts, as_of) if m.starts_at < meeting.starts_at and m.status != "cancelled"]
    owner = look.users.get(owner_id) if owner_id else None
    facts = BriefFacts(
        meeting=_meeting_ref(meeting), participants=_participants(session, meeting, contact, owner),
        has_brief=(bool((meeting.brief or "").strip()) and (meeting.brief_ready_at is None or meeting.brief_ready_at <= as_of))
        or bool(pending_actions(session, meeting.id, "save_meeting_brief", as_of)),
        account=AccountRef(account_id=account.id, name=account.name, industry=account.industry,
                           employee_count=account.employee_count, country=account.country) if account else None,
        deal=ref, score=score, tier=tier, lifecycle_stage=stage_at(contact, as_of) if contact else None,
        emails=email_items(emails, as_of, BRIEF_EMAILS), activity=activity, previous_meetings=previous[-3:],
        open_tasks=tasks, notes=contact.notes[:2000] if contact and contact.notes else None,
    )
    return Context(kind="brief", meeting_id=meeting.id, contact=_person(contact),
                   owner=rep_hours(look.users.get(owner_id)) if owner_id else None,
                   sensitive=_sensitive(contact, deal, session), brief=facts)


def _participants(session: Session, meeting: Meeting, contact: Contact | None, owner: User | None) -> list[Participant]:
    people: list[Participant] = []
    seen: set[str] = set()
    if owner is not None:
        people.append(Participant(name=owner.name, side="rep", user_id=owner.id, email=owner.email))
        seen.add((owner.email or "").lower())
    if contact is not None:
        people.append(Participant(name=contact.full_name, side="contact", contact_id=contact.id, email=contact.email,
                                  title=contact.title))
        seen.add((contact.email or "").lower())
    others = [str(a).strip().lower() for a in (meeting.attendees or []) if a and str(a).strip().lower() not in seen]
    if others:
        users = {(u.email or "").lower(): u for u in session.scalars(select(User).where(func.lower(User.email).in_(others)))}
        contacts = {c.email_normalized: c for c in session.scalars(select(Contact).where(Contact.email_normalized.in_(others))).unique()}
        for address in others:
            if address in users:
                u = users[address]
                people.append(Participant(name=u.name, side="rep", user_id=u.id, email=u.email))
            elif address in contacts:
                c = contacts[address]
                people.append(Participant(name=c.full_name, side="attendee", contact_id=c.id, email=c.email, title=c.title))
    return people


def _action_items(session: Session, meeting: Meeting, look: Lookups) -> Context:
    contact = session.get(Contact, meeting.contact_id) if meeting.contact_id else None
    deal = session.get(Deal, meeting.deal_id) if meeting.deal_id else None
    owner_id = meeting.owner_id or (deal.owner_id if deal else None) or (contact.owner_id if contact else None)
    owner = look.users.get(owner_id) if owner_id else None
    extracted = meeting.action_items_extracted_at
    if extracted is not None and extracted > look.as_of:
        extracted = None
    existing = [TaskRef(title=t.title[:300], due_at=t.due_at, owner=look.users[t.owner_id].name if t.owner_id in look.users else None)
                for t in session.scalars(select(Task).where(Task.meeting_id == meeting.id, Task.kind == "action_item",
                                                            Task.created_at <= look.as_of).order_by(Task.id))]
    existing += [TaskRef(title=str(item.get("title", ""))[:300] or "(untitled)")
                 for params in pending_actions(session, meeting.id, "create_action_items", look.as_of)
                 for item in params.get("items") or [] if isinstance(item, dict)]
    facts = ActionItemFacts(meeting=_meeting_ref(meeting), participants=_participants(session, meeting, contact, owner),
                            transcript=meeting.transcript or "", extracted_at=extracted, existing_items=existing)
    return Context(kind="action_items", meeting_id=meeting.id, contact=_person(contact), owner=rep_hours(owner),
                   sensitive=_sensitive(contact, deal, session), action_items=facts)


def build(session: Session, subject_ids: Sequence[int], *, as_of: datetime, prepared: Any = None) -> list[Context]:
    """Contexts for the subjects (meeting ids, and minus contact ids for invites) that are due at `as_of`.

    A meeting id gives a brief if the meeting is still ahead at `as_of`, action items if it has
    ended and has a transcript; anything else (and a subject unknown at `as_of`) gives no context.
    """
    look = Lookups(users={u.id: u for u in session.scalars(select(User))}, as_of=as_of)
    contexts: list[Context] = []
    for sid in dict.fromkeys(subject_ids):
        if sid < 0:
            contact = session.get(Contact, -sid)
            if contact is not None and contact.created_at <= as_of:
                contexts.append(_invite(session, contact, look))
            continue
        meeting = session.get(Meeting, sid)
        if meeting is None or meeting.created_at > as_of or meeting.status == "cancelled":
            continue
        if meeting.starts_at > as_of:
            contexts.append(_brief(session, meeting, look))
        elif meeting.ends_at <= as_of and (meeting.transcript or "").strip():
            contexts.append(_action_items(session, meeting, look))
    if contexts:
        book = meeting_block(session, as_of=as_of)
        contexts = [c.model_copy(update={"book": book}) for c in contexts]
    return contexts


__all__ = ["build", "subjects"]
