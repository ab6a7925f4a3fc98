"""The store -> follow-up contexts: who has gone quiet, what is already on its way, what history taught.

`subjects()` picks the contacts a follow-up run covers at `as_of`: leads not disqualified (and
customers with an open deal) that are active (engaged in the last 60 days, in an open deal, or in
a run of our personal touches in the last 60 days) and quiet (no touch either way for 5 days, or
their email waiting a day for our answer); a lead never touched personally only once qualified
(MQL, SQL, opportunity) or after raising a hand (a form, a download, an email); minus those with a next step on its way (a meeting
booked, an email scheduled, an open follow-up task, a follow-up or invite decision waiting in the
queue) and those an earlier follow-up decision put on hold (a wait whose revisit time has not
come, or a stop, both until something new happens). Marketing sends (activities carrying a
`campaign`) are never a personal touch.

`prepare()` learns once per run, from the store's own history up to `as_of`, how often the team's
emails, calls and LinkedIn messages got a response within a week (`agents.follow_up.response_playbook.Playbook`),
when each owner's contacts answer, and which resources people use.

`build()` reads, for each contact, the emails (bodies as untrusted text), their replies and our
touches since, the pages and downloads, meetings held and booked, calls and notes, the open deal
and its stage at `as_of`, what is pending, and the owner's working hours. Nothing after `as_of`
is read. Some of these readers are shared with the meeting builder (`crm_core.contexts.meeting`).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.common.context_records import ContentItem, DealRef, EmailItem, MeetingItem
from agents.common.working_hours import RepHours, TimeHistogram, histogram
from agents.follow_up import Context, PendingItem, Resource, ResponsePattern, TouchItem
from agents.follow_up.response_playbook import PLAYBOOK_DAYS, RESPONSE_DAYS, Playbook, TouchEvent, learn_playbook, run_state
from crm_core.contexts.book_follow_up import follow_up_block
from crm_core.contexts.reading import chunks, payload_text
from crm_core.models import (
    Account,
    Activity,
    Contact,
    Deal,
    Decision,
    Email,
    Meeting,
    OutboxMessage,
    StageHistory,
    Task,
    User,
)
from crm_core.models.enums import LifecycleStage
from crm_core.quality.placeholders import known_or_none

QUIET_DAYS = 5
REPLY_WAIT_HOURS = 24        # their email unanswered this long: the owner hears about it
# Follow-ups a rep is handed per day: a first run on a full book would otherwise draft hundreds of
# emails for one morning's approval queue. The rest wait for the next day, most urgent first.
PER_OWNER_PER_DAY = 12
# Follow-ups of one rep that may wait for a person at once. A draft approved days after it was
# written answers a moment that has passed, so the agent drafts the next ones as these are decided
# (most urgent first) instead of filling a queue nobody is clearing. Follow-ups that run alone
# (an agent people have come to trust) never wait, so this limit then does not bite.
WAITING_PER_OWNER = 5
ACTIVE_DAYS = 60
HISTORY_EMAILS = 8
BODY_LIMIT = 1500
CONTENT_ITEMS = 12
CONTENT_DAYS = 45
TOUCH_ITEMS = 5
MEETING_ITEMS = 6
PATTERN_DAYS = 365
RESOURCE_DAYS = 365
RESOURCES = 15
HOLD_DAYS = 180              # decisions older than this put nobody on hold
OUTCOMES = (LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value)
PENDING = ("proposed", "queued", "approved", "edited")
HOLDING = ("proposed", "queued", "approved", "edited", "auto_approved", "executed")
ENGAGED_TYPES = ("page_view", "content_download", "form_submit", "email_clicked", "email_replied")
TOUCH_TYPES = ("call", "meeting", "linkedin_message", "email_replied")
HAND_RAISES = ("form_submit", "content_download", "email_replied")
QUALIFIED_STAGES = (LifecycleStage.MQL.value, LifecycleStage.SQL.value, LifecycleStage.OPPORTUNITY.value)
RESPONSE_TYPES = ("email_opened", "email_clicked", "email_replied")
TIMELINE_TYPES = ("email_sent", "email_replied", "call", "linkedin_message", "meeting")
NO_CONVERSATION = ("no_answer", "no answer", "voicemail", "left voicemail", "busy", "missed", "failed", "unreachable")
UNSUBSCRIBE_FLAGS = ("unsubscribed", "email_opt_out", "opt_out", "opted_out", "do_not_contact", "do_not_email")




def is_campaign(payload: dict[str, Any] | None) -> bool:
    """A marketing send (newsletter, nurture): not a personal touch, however many people it reached."""
    return bool(payload) and payload.get("campaign") not in (None, "")


def open_at(contact: Contact, as_of: datetime) -> bool:
    """Not a customer or disqualified at `as_of` (an outcome reached later does not count yet)."""
    if contact.lifecycle_stage not in OUTCOMES:
        return True
    return contact.outcome_at is not None and contact.outcome_at > as_of


def stage_at(contact: Contact, as_of: datetime) -> str | None:
    if contact.lifecycle_stage in OUTCOMES and contact.outcome_at is not None and contact.outcome_at > as_of:
        return None  # the outcome came later; the stage before it is not recorded
    return contact.lifecycle_stage


def unsubscribed_flag(attributes: dict[str, Any] | None) -> str | None:
    """The attribute that says the contact opted out, if one does (imported CRMs name it differently)."""
    for key, value in (attributes or {}).items():
        name = str(key).lower().removeprefix("attr.").replace("-", "_").replace(" ", "_")
        if name in UNSUBSCRIBE_FLAGS and str(value).strip().lower() in ("true", "1", "yes", "y"):
            return str(key)
    return None


def rep_hours(user: User | None) -> RepHours | None:
    if user is None:
        return None
    start = user.work_start_hour if user.work_start_hour is not None else 9
    end = user.work_end_hour if user.work_end_hour is not None else 17
    return RepHours(user_id=user.id, name=user.name, timezone=user.timezone or "UTC",
                    work_start_hour=min(max(start, 0), 23), work_end_hour=min(max(end, 1), 24))


# == open deals ======================================================================================
def open_deals(session: Session, as_of: datetime, contact_ids: Sequence[int] | None = None) -> dict[int, Deal]:
    """contact id -> its open deal at `as_of` (the most recently opened one if several)."""
    q = select(Deal).where(Deal.primary_contact_id.is_not(None))
    found: dict[int, Deal] = {}
    rows: list[Deal] = []
    if contact_ids is None:
        rows = list(session.scalars(q))
    else:
        for chunk in chunks(list(contact_ids)):
            rows.extend(session.scalars(q.where(Deal.primary_contact_id.in_(chunk))))
    for deal in rows:
        began = min(t for t in (deal.opened_at, deal.created_at) if t is not None)
        if began > as_of:
            continue
        still_open = deal.status == "open" or (deal.closed_at is not None and deal.closed_at > as_of)
        if not still_open:
            continue
        current = found.get(deal.primary_contact_id)
        if current is None or (deal.opened_at or deal.created_at) > (current.opened_at or current.created_at):
            found[deal.primary_contact_id] = deal
    return found


def deal_refs(session: Session, deals: Iterable[Deal], as_of: datetime) -> dict[int, DealRef]:
    """deal id -> its stage as it stood at `as_of`, with time in that stage."""
    deals = list(deals)
    history: dict[int, list[StageHistory]] = defaultdict(list)
    for chunk in chunks([d.id for d in deals]):
        for h in session.scalars(select(StageHistory).where(StageHistory.deal_id.in_(chunk), StageHistory.changed_at <= as_of)
                                 .order_by(StageHistory.changed_at, StageHistory.id)):
            history[h.deal_id].append(h)
    out = {}
    for d in deals:
        changes = history.get(d.id)
        if changes:
            stage, entered = changes[-1].to_stage, changes[-1].changed_at
        else:
            stage = d.stage
            entered = d.stage_entered_at if d.stage_entered_at and d.stage_entered_at <= as_of else (d.opened_at or d.created_at)
        days = round((as_of - entered).total_seconds() / 86400, 1) if entered and entered <= as_of else None
        out[d.id] = DealRef(deal_id=d.id, name=d.name, stage=stage, amount=float(d.amount) if d.amount is not None else None,
                            currency=d.currency or "USD", days_in_stage=days, expected_close=d.expected_close)
    return out


# == subjects ========================================================================================
def last_touches(session: Session, ids: Sequence[int], as_of: datetime) -> dict[int, tuple[datetime, str]]:
    """contact id -> (when, what) of the last personal touch either way up to `as_of`."""
    best: dict[int, tuple[datetime, str]] = {}

    def offer(cid: int | None, at: datetime | None, what: str) -> None:
        if cid is None or at is None or at > as_of:
            return
        if cid not in best or at > best[cid][0]:
            best[cid] = (at, what)

    for chunk in chunks(list(ids)):
        for cid, direction, at in session.execute(
            select(Email.contact_id, Email.direction, func.max(Email.sent_at))
            .where(Email.contact_id.in_(chunk), Email.sent_at <= as_of).group_by(Email.contact_id, Email.direction)
        ):
            offer(cid, at, f"{direction} email")
        for cid, type_, at in session.execute(
            select(Activity.contact_id, Activity.type, func.max(Activity.occurred_at))
            .where(Activity.contact_id.in_(chunk), Activity.type.in_(TOUCH_TYPES), Activity.occurred_at <= as_of)
            .group_by(Activity.contact_id, Activity.type)
        ):
            offer(cid, at, {"email_replied": "inbound email"}.get(type_, type_.replace("_", " ")))
        # email_sent rows one by one: the newsletter a contact got is no personal touch.
        for cid, at, payload in session.execute(
            select(Activity.contact_id, Activity.occurred_at, Activity.payload)
            .where(Activity.contact_id.in_(chunk), Activity.type == "email_sent", Activity.occurred_at <= as_of)
        ):
            if not is_campaign(payload):
                offer(cid, at, "outbound email")
        for cid, at in session.execute(
            select(Meeting.contact_id, func.max(Meeting.starts_at))
            .where(Meeting.contact_id.in_(chunk), Meeting.starts_at <= as_of, Meeting.status != "cancelled")
            .group_by(Meeting.contact_id)
        ):
            offer(cid, at, "meeting")
    return best


def _recently_active(session: Session, ids: Sequence[int], as_of: datetime) -> set[int]:
    """Engaged in the last 60 days, or in a run of our personal emails, calls or messages."""
    since = as_of - timedelta(days=ACTIVE_DAYS)
    found: set[int] = set()
    for chunk in chunks(list(ids)):
        found.update(session.scalars(
            select(Activity.contact_id).where(Activity.contact_id.in_(chunk), Activity.type.in_(ENGAGED_TYPES),
                                              Activity.occurred_at > since, Activity.occurred_at <= as_of).distinct()))
        found.update(session.scalars(
            select(Email.contact_id).where(Email.contact_id.in_(chunk), Email.sent_at > since, Email.sent_at <= as_of).distinct()))
        found.update(session.scalars(
            select(Activity.contact_id).where(Activity.contact_id.in_(chunk), Activity.type.in_(("call", "linkedin_message")),
                                              Activity.occurred_at > since, Activity.occurred_at <= as_of).distinct()))
        for cid, payload in session.execute(
            select(Activity.contact_id, Activity.payload).where(
                Activity.contact_id.in_(chunk), Activity.type == "email_sent", Activity.occurred_at > since,
                Activity.occurred_at <= as_of)
        ):
            if not is_campaign(payload):
                found.add(cid)
    return found


def _raised_hands(session: Session, ids: Sequence[int], as_of: datetime) -> set[int]:
    since = as_of - timedelta(days=ACTIVE_DAYS)
    found: set[int] = set()
    for chunk in chunks(list(ids)):
        found.update(session.scalars(
            select(Activity.contact_id).where(Activity.contact_id.in_(chunk), Activity.type.in_(HAND_RAISES),
                                              Activity.occurred_at > since, Activity.occurred_at <= as_of).distinct()))
    return found


def pending_items(session: Session, ids: Sequence[int], as_of: datetime, deal_of: dict[int, Deal],
                  agents: tuple[str, ...] = ("follow_up", "meeting")) -> dict[int, list[PendingItem]]:
    """contact id -> the follow-ups already on their way at `as_of` (scheduled, open or awaiting approval)."""
    found: dict[int, list[PendingItem]] = defaultdict(list)
    for chunk in chunks(list(ids)):
        for cid, at, subject in session.execute(select(Email.contact_id, Email.sent_at, Email.subject).where(
                Email.contact_id.in_(chunk), Email.direction == "outbound", Email.sent_at > as_of, Email.created_at <= as_of)):
            found[cid].append(PendingItem(kind="scheduled_email", at=at, label=(subject or "")[:200] or None))
        for cid, at, subject in session.execute(select(OutboxMessage.contact_id, OutboxMessage.send_after, OutboxMessage.subject).where(
                OutboxMessage.contact_id.in_(chunk), OutboxMessage.kind == "email", OutboxMessage.status == "pending",
                OutboxMessage.created_at <= as_of, OutboxMessage.send_after > as_of)):
            if not any(p.kind == "scheduled_email" and p.at == at for p in found[cid]):
                found[cid].append(PendingItem(kind="outbox_email", at=at, label=(subject or "")[:200] or None))
        for cid, at, title in session.execute(select(Task.contact_id, Task.due_at, Task.title).where(
                Task.contact_id.in_(chunk), Task.kind == "follow_up", Task.status == "open", Task.created_at <= as_of)):
            found[cid].append(PendingItem(kind="open_task", at=at, label=(title or "")[:200] or None))
    by_deal = {d.id: cid for cid, d in deal_of.items()}
    wanted = set(ids)
    for decision_id, agent, subject_type, subject_id, label in session.execute(
        select(Decision.id, Decision.agent, Decision.subject_type, Decision.subject_id, Decision.subject_label).where(
            Decision.agent.in_(agents), Decision.status.in_(PENDING), Decision.created_at <= as_of,
            Decision.subject_type.in_(("contact", "deal")))
    ):
        cid = subject_id if subject_type == "contact" else by_deal.get(subject_id)
        if cid in wanted:
            found[cid].append(PendingItem(kind="queued_decision", label=f"{agent} decision {decision_id} on {label or subject_type}"[:200]))
    return dict(found)


def pending_contacts(session: Session, ids: Sequence[int], as_of: datetime, deal_of: dict[int, Deal],
                     agents: tuple[str, ...] = ("follow_up", "meeting")) -> set[int]:
    """Contacts with a next step already on its way at `as_of`: a meeting booked, or a pending follow-up."""
    pending = set(pending_items(session, ids, as_of, deal_of, agents))
    for chunk in chunks(list(ids)):
        pending.update(session.scalars(select(Meeting.contact_id).where(
            Meeting.contact_id.in_(chunk), Meeting.starts_at > as_of, Meeting.created_at <= as_of, Meeting.status == "scheduled")))
    return pending


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        return None


def held_contacts(session: Session, ids: Sequence[int], as_of: datetime, deal_of: dict[int, Deal],
                  touches: dict[int, tuple[datetime, str]]) -> set[int]:
    """Contacts whose latest follow-up decision said wait (until its revisit time) or stop, with nothing new since.

    This is what keeps an hourly schedule from deciding the same wait or stop again every hour.
    """
    by_deal = {d.id: cid for cid, d in deal_of.items()}
    wanted = set(ids)
    latest: dict[int, tuple[datetime, int, dict[str, Any]]] = {}
    for did, subject_type, subject_id, created, record in session.execute(
        select(Decision.id, Decision.subject_type, Decision.subject_id, Decision.created_at, Decision.decision).where(
            Decision.agent == "follow_up", Decision.status.in_(HOLDING), Decision.created_at <= as_of,
            Decision.created_at > as_of - timedelta(days=HOLD_DAYS), Decision.subject_type.in_(("contact", "deal")))
    ):
        cid = subject_id if subject_type == "contact" else by_deal.get(subject_id)
        if cid in wanted and (cid not in latest or (created, did) > latest[cid][:2]):
            latest[cid] = (created, did, record or {})
    held = set()
    for cid, (created, _, record) in latest.items():
        if record.get("plan") not in ("wait", "stop"):
            continue
        touched = touches.get(cid)
        if touched is not None and touched[0] > created:
            continue  # something happened since: look again
        revisit = _moment(record.get("revisit_at"))
        if revisit is None or revisit > as_of:
            held.add(cid)
    return held


def subjects(session: Session, *, as_of: datetime) -> list[int]:
    """Active leads and open-deal contacts gone quiet at `as_of`, with nothing pending and nothing on hold."""
    rows = session.execute(
        select(Contact.id, Contact.lifecycle_stage, Contact.outcome_at, Contact.attributes).where(
            Contact.created_at <= as_of, or_(Contact.email.is_not(None), Contact.phone.is_not(None)),
            or_(Contact.lifecycle_stage != LifecycleStage.DISQUALIFIED.value, Contact.outcome_at > as_of),
        )
    ).all()
    if not rows:
        return []
    deals = open_deals(session, as_of)
    ids, qualified = [], set()
    for cid, stage, outcome_at, attributes in rows:
        customer = stage == LifecycleStage.CUSTOMER.value and (outcome_at is None or outcome_at <= as_of)
        if (customer and cid not in deals) or unsubscribed_flag(attributes):
            continue
        ids.append(cid)
        if stage in QUALIFIED_STAGES:
            qualified.add(cid)
    wanted = set(ids)
    deals = {cid: d for cid, d in deals.items() if cid in wanted}
    active = sorted(_recently_active(session, ids, as_of) | set(deals))
    touches = last_touches(session, active, as_of)
    # Someone we never wrote to is ours only once they raised a hand or sales qualified them;
    # page views alone are marketing's to nurture.
    untouched = [cid for cid in active if cid not in touches and cid not in qualified and cid not in deals]
    cold = set(untouched) - _raised_hands(session, untouched, as_of)
    quiet_line = as_of - timedelta(days=QUIET_DAYS)
    reply_line = as_of - timedelta(hours=REPLY_WAIT_HOURS)
    quiet = [cid for cid in active if cid not in cold and (
        cid not in touches or touches[cid][0] <= quiet_line
        or (touches[cid][1] == "inbound email" and touches[cid][0] <= reply_line))]
    pending = pending_contacts(session, quiet, as_of, deals)
    held = held_contacts(session, quiet, as_of, deals, touches)
    due = [cid for cid in quiet if cid not in pending and cid not in held]
    return _within_daily_capacity(session, due, as_of, deals, qualified, touches)


def _contacts_per_owner(session: Session, *conditions: Any) -> defaultdict[int | None, int]:
    """Per owner, how many of their contacts have a follow-up decision matching `conditions`."""
    counts: defaultdict[int | None, int] = defaultdict(int)
    for owner_id, n in session.execute(
        select(Contact.owner_id, func.count(func.distinct(Decision.subject_id)))
        .join(Contact, Contact.id == Decision.subject_id)
        .where(Decision.agent == "follow_up", Decision.subject_type == "contact", *conditions)
        .group_by(Contact.owner_id)
    ):
        counts[owner_id] = n
    return counts


def _within_daily_capacity(session: Session, due: list[int], as_of: datetime, deals: dict, qualified: set[int],
                           touches: dict) -> list[int]:
    """At most PER_OWNER_PER_DAY follow-up decisions per owner per day, and never more than
    WAITING_PER_OWNER of an owner's waiting for a person: replies waiting first, then open deals,
    then qualified leads, then the longest quiet."""
    if not due:
        return []
    owners = dict(session.execute(select(Contact.id, Contact.owner_id).where(Contact.id.in_(due))).all())
    day_start = datetime.combine(as_of.date(), datetime.min.time())
    used = _contacts_per_owner(session, Decision.created_at >= day_start, Decision.created_at <= as_of)
    waiting = _contacts_per_owner(session, Decision.status == "queued", Decision.created_at <= as_of)

    def urgency(cid: int) -> tuple:
        at, kind = touches.get(cid, (None, None))
        return (kind != "inbound email", cid not in deals, cid not in qualified, at or datetime.min, cid)

    chosen = []
    for cid in sorted(due, key=urgency):
        owner = owners.get(cid)
        if used[owner] < PER_OWNER_PER_DAY and waiting[owner] < WAITING_PER_OWNER:
            used[owner] += 1
            waiting[owner] += 1
            chosen.append(cid)
    return sorted(chosen)


# == what the team's history taught ==================================================================
EmailRow = tuple[str, datetime, datetime | None]                 # direction, sent_at, opened_at
ActivityRow = tuple[str, datetime, dict[str, Any] | None]        # type, occurred_at, payload
MeetingRow = tuple[datetime, str]                                # starts_at, status


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def touch_events(emails: Iterable[EmailRow], activities: Iterable[ActivityRow], meetings: Iterable[MeetingRow],
                 as_of: datetime) -> list[TouchEvent]:
    """One contact's personal touches and responses, each once (an email row and its logged activity are one)."""
    events: list[TouchEvent] = []
    seen: set[tuple[str, datetime]] = set()

    def add(at: datetime, kind: str, connected: bool = False) -> None:
        key = (kind, _minute(at))
        if at <= as_of and key not in seen:
            seen.add(key)
            events.append(TouchEvent(at, kind, connected))  # type: ignore[arg-type]

    for direction, sent_at, _ in emails:
        add(sent_at, "reply" if direction == "inbound" else "email")
    for type_, at, payload in activities:
        if type_ == "email_sent" and not is_campaign(payload) and not (payload or {}).get("email_id"):
            add(at, "email")
        elif type_ == "email_replied" and not (payload or {}).get("email_id"):
            add(at, "reply")
        elif type_ == "call":
            outcome = str((payload or {}).get("outcome") or "").strip().lower().replace("-", "_")
            add(at, "call", outcome not in NO_CONVERSATION)
        elif type_ == "linkedin_message":
            add(at, "linkedin_message")
        elif type_ == "meeting":
            add(at, "meeting")
    for starts_at, status in meetings:
        if status != "cancelled":
            add(starts_at, "meeting")
    return sorted(events, key=lambda e: e.at)


@dataclass
class PreparedFollowUp:
    resources: list[Resource] = field(default_factory=list)
    playbook: Playbook | None = None
    owner_patterns: dict[int, TimeHistogram] = field(default_factory=dict)


def learn(session: Session, as_of: datetime, window_days: int = PLAYBOOK_DAYS) -> tuple[Playbook, dict[int, TimeHistogram]]:
    """The playbook from every contact's touches in the window, and when each owner's contacts answer."""
    since = as_of - timedelta(days=window_days)
    emails: dict[int, list[EmailRow]] = defaultdict(list)
    for cid, direction, sent_at, opened_at in session.execute(
        select(Email.contact_id, Email.direction, Email.sent_at, Email.opened_at).where(
            Email.contact_id.is_not(None), Email.sent_at > since, Email.sent_at <= as_of)
    ):
        emails[cid].append((direction, sent_at, opened_at))
    activities: dict[int, list[ActivityRow]] = defaultdict(list)
    for cid, type_, at, payload in session.execute(
        select(Activity.contact_id, Activity.type, Activity.occurred_at, Activity.payload).where(
            Activity.contact_id.is_not(None), Activity.type.in_(TIMELINE_TYPES), Activity.occurred_at > since,
            Activity.occurred_at <= as_of)
    ):
        activities[cid].append((type_, at, payload))
    meetings: dict[int, list[MeetingRow]] = defaultdict(list)
    for cid, starts_at, status in session.execute(
        select(Meeting.contact_id, Meeting.starts_at, Meeting.status).where(
            Meeting.contact_id.is_not(None), Meeting.starts_at > since, Meeting.starts_at <= as_of, Meeting.created_at <= as_of)
    ):
        meetings[cid].append((starts_at, status))
    contacts = set(emails) | set(activities) | set(meetings)
    timelines = [touch_events(emails[c], activities[c], meetings[c], as_of) for c in contacts]
    playbook = learn_playbook(timelines, as_of, window_days)

    owners: dict[int, int] = {}
    for chunk in chunks(sorted(contacts)):
        owners.update((cid, oid) for cid, oid in session.execute(
            select(Contact.id, Contact.owner_id).where(Contact.id.in_(chunk), Contact.owner_id.is_not(None))))
    moments: dict[int, list[datetime]] = defaultdict(list)
    for cid in contacts:
        owner = owners.get(cid)
        if owner is None:
            continue
        moments[owner] += [e.at for e in touch_events(emails[cid], activities[cid], (), as_of) if e.kind == "reply"]
        moments[owner] += [o for d, _, o in emails[cid] if d == "outbound" and o is not None and o <= as_of]
    return playbook, {owner: histogram(ms) for owner, ms in moments.items()}


def prepare(session: Session, *, as_of: datetime) -> PreparedFollowUp:
    playbook, owner_patterns = learn(session, as_of)
    return PreparedFollowUp(resources=resources(session, as_of), playbook=playbook, owner_patterns=owner_patterns)


def resources(session: Session, as_of: datetime) -> list[Resource]:
    """Assets the company's contacts downloaded in the last year, most used first, with a link when logged."""
    used: dict[str, set[int]] = defaultdict(set)
    links: dict[str, str] = {}
    titles: dict[str, str] = {}
    for cid, payload in session.execute(
        select(Activity.contact_id, Activity.payload).where(
            Activity.type == "content_download", Activity.occurred_at <= as_of,
            Activity.occurred_at > as_of - timedelta(days=RESOURCE_DAYS))
    ):
        title = payload_text(payload, "asset", "title", "name")
        if not title:
            continue
        key = " ".join(title.lower().split())
        titles.setdefault(key, " ".join(title.split())[:200])
        used[key].add(cid)
        url = payload_text(payload, "url", "link")
        if url and url.lower().startswith(("http://", "https://")):
            links.setdefault(key, url[:500])
    ranked = sorted(used, key=lambda k: (-len(used[k]), k))[:RESOURCES]
    return [Resource(title=titles[k], url=links.get(k), kind="download", uses=len(used[k])) for k in ranked]


# == building ========================================================================================
def email_items(rows: Iterable[Email], as_of: datetime, limit: int) -> list[EmailItem]:
    kept = sorted((e for e in rows if e.sent_at <= as_of), key=lambda e: (e.sent_at, e.id))[-limit:]
    return [EmailItem(email_id=e.id, direction="inbound" if e.direction == "inbound" else "outbound", sent_at=e.sent_at,
                      subject=(e.subject or None) and e.subject[:300], body=(e.body or None) and e.body[:BODY_LIMIT],
                      opened_at=e.opened_at if e.opened_at and e.opened_at <= as_of else None,
                      replied_at=e.replied_at if e.replied_at and e.replied_at <= as_of else None)
            for e in kept]


def response_pattern(emails: Sequence[Email], activities: Sequence[Activity], as_of: datetime) -> ResponsePattern:
    since = as_of - timedelta(days=PATTERN_DAYS)
    emails = sorted((e for e in emails if since < e.sent_at <= as_of), key=lambda e: (e.sent_at, e.id))
    outbound = [e for e in emails if e.direction == "outbound"]
    inbound_by_thread: dict[str, list[datetime]] = defaultdict(list)
    for e in emails:
        if e.direction == "inbound":
            inbound_by_thread[e.thread_id].append(e.sent_at)
    opened = [e for e in outbound if e.opened_at and e.opened_at <= as_of]
    reply_hours = []
    replied = 0
    for e in outbound:
        answer = e.replied_at if e.replied_at and e.replied_at <= as_of else min(
            (t for t in inbound_by_thread.get(e.thread_id, []) if t > e.sent_at), default=None)
        if answer is not None:
            replied += 1
            reply_hours.append((answer - e.sent_at).total_seconds() / 3600)
    moments: dict[datetime, None] = {}
    for e in outbound:
        if e.opened_at and e.opened_at <= as_of:
            moments[e.opened_at.replace(second=0, microsecond=0)] = None
        if e.replied_at and e.replied_at <= as_of:
            moments[e.replied_at.replace(second=0, microsecond=0)] = None
    for e in emails:
        if e.direction == "inbound":
            moments[e.sent_at.replace(second=0, microsecond=0)] = None
    for a in activities:
        if a.type in RESPONSE_TYPES and since < a.occurred_at <= as_of:
            moments[a.occurred_at.replace(second=0, microsecond=0)] = None
    last_inbound = max((e.sent_at for e in emails if e.direction == "inbound"), default=None)
    last_reply = max((e.replied_at for e in outbound if e.replied_at and e.replied_at <= as_of), default=None)
    heard = max((t for t in (last_inbound, last_reply) if t is not None), default=None)
    since_heard = [e for e in outbound if heard is None or e.sent_at > heard]
    n = len(outbound)
    return ResponsePattern(
        emails_sent=n, emails_opened=len(opened), emails_replied=replied,
        open_rate=round(len(opened) / n, 3) if n else None, reply_rate=round(replied / n, 3) if n else None,
        unanswered_in_a_row=len(since_heard), opened_in_a_row=sum(1 for e in since_heard if e.opened_at and e.opened_at <= as_of),
        engagement=histogram(moments), median_reply_hours=round(median(reply_hours), 1) if reply_hours else None,
    )


def content_items(activities: Sequence[Activity], as_of: datetime, limit: int = CONTENT_ITEMS) -> list[ContentItem]:
    since = as_of - timedelta(days=CONTENT_DAYS)
    rows = sorted((a for a in activities if a.type in ("page_view", "content_download", "form_submit") and since < a.occurred_at <= as_of),
                  key=lambda a: (a.occurred_at, a.id), reverse=True)[:limit]
    out = []
    for a in rows:
        if a.type == "page_view":
            out.append(ContentItem(kind="page_view", at=a.occurred_at, url=payload_text(a.payload, "url", "path", "page"),
                                   title=payload_text(a.payload, "title")))
        elif a.type == "content_download":
            out.append(ContentItem(kind="content_download", at=a.occurred_at, url=payload_text(a.payload, "url", "link"),
                                   title=payload_text(a.payload, "asset", "title", "name")))
        else:
            out.append(ContentItem(kind="form_submit", at=a.occurred_at, url=payload_text(a.payload, "url"),
                                   title=payload_text(a.payload, "form", "name", "title")))
    return out


def meeting_items(meetings: Sequence[Meeting], activities: Sequence[Activity], as_of: datetime, limit: int = MEETING_ITEMS) -> list[MeetingItem]:
    """Meetings known at `as_of`: rows of the meetings table, and meetings only the activity log has."""
    items: dict[datetime, MeetingItem] = {}
    for m in meetings:
        if m.created_at > as_of:
            continue
        status = m.status if m.starts_at > as_of or m.status == "cancelled" else "completed"
        items[m.starts_at.replace(second=0, microsecond=0)] = MeetingItem(meeting_id=m.id, title=m.title, starts_at=m.starts_at, status=status)
    for a in activities:
        if a.type == "meeting" and a.occurred_at <= as_of:
            key = a.occurred_at.replace(second=0, microsecond=0)
            items.setdefault(key, MeetingItem(title=payload_text(a.payload, "title", "subject"), starts_at=a.occurred_at, status="completed"))
    ordered = sorted(items.values(), key=lambda m: m.starts_at)
    return ordered[-limit:]


def touch_items(activities: Sequence[Activity], as_of: datetime, limit: int = TOUCH_ITEMS) -> list[TouchItem]:
    rows = sorted((a for a in activities if a.type in ("call", "linkedin_message", "note") and a.occurred_at <= as_of),
                  key=lambda a: (a.occurred_at, a.id))[-limit:]
    return [TouchItem(kind=a.type, at=a.occurred_at,  # type: ignore[arg-type]
                      summary=(payload_text(a.payload, "summary", "notes", "note", "text", "body", "outcome", "subject") or "")[:500] or None)
            for a in rows]


def load_by_contact(session: Session, model: type, ids: Sequence[int], *conditions: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for chunk in chunks(list(ids)):
        for row in session.scalars(select(model).where(model.contact_id.in_(chunk), *conditions)):
            out[row.contact_id].append(row)
    return out


def _sensitive_accounts(session: Session, deals: Iterable[Deal]) -> set[int]:
    ids = sorted({d.account_id for d in deals if d.account_id is not None})
    found: set[int] = set()
    for chunk in chunks(ids):
        found.update(session.scalars(select(Account.id).where(Account.id.in_(chunk), Account.sensitive.is_(True))))
    return found


def build(session: Session, subject_ids: Sequence[int], *, as_of: datetime,
          prepared: PreparedFollowUp | None = None) -> list[Context]:
    """One context per contact that existed at `as_of` (others are skipped)."""
    prepared = prepared or prepare(session, as_of=as_of)
    ids = list(dict.fromkeys(subject_ids))
    contacts: dict[int, Contact] = {}
    for chunk in chunks(ids):
        contacts.update((c.id, c) for c in session.scalars(select(Contact).where(Contact.id.in_(chunk), Contact.created_at <= as_of)).unique())
    known = list(contacts)
    emails = load_by_contact(session, Email, known, Email.sent_at <= as_of)
    activities = load_by_contact(session, Activity, known, Activity.occurred_at <= as_of,
                                 Activity.occurred_at > as_of - timedelta(days=PATTERN_DAYS))
    meetings = load_by_contact(session, Meeting, known, Meeting.created_at <= as_of)
    deals = open_deals(session, as_of, known)
    refs = deal_refs(session, deals.values(), as_of)
    sensitive_accounts = _sensitive_accounts(session, deals.values())
    owners = {u.id: u for u in session.scalars(select(User))}
    touches = last_touches(session, known, as_of)
    pending = pending_items(session, known, as_of, deals)
    book = follow_up_block(session, prepared, as_of=as_of) if contacts else None
    contexts = []
    for cid in ids:
        contact = contacts.get(cid)
        if contact is None:
            continue
        deal = deals.get(cid)
        owner_id = (deal.owner_id if deal is not None and deal.owner_id else None) or contact.owner_id
        last = touches.get(cid)
        acts = activities.get(cid, [])
        mine = emails.get(cid, [])
        events = touch_events([(e.direction, e.sent_at, e.opened_at) for e in mine],
                              [(a.type, a.occurred_at, a.payload) for a in acts],
                              [(m.starts_at, m.status) for m in meetings.get(cid, []) if m.starts_at <= as_of], as_of)
        unanswered, _ = run_state(events)
        attributes = contact.attributes or {}
        contexts.append(Context(
            contact_id=cid,
            as_of=as_of.replace(second=0, microsecond=0),
            name=contact.full_name,
            first_name=known_or_none(contact.first_name),
            title=known_or_none(contact.title),
            company=contact.account.name if contact.account else None,
            lifecycle_stage=stage_at(contact, as_of),
            has_email=bool(contact.email),
            has_phone=bool(contact.phone or contact.phone_normalized),
            has_linkedin=bool(attributes.get("linkedin_url")),
            unsubscribed=unsubscribed_flag(attributes),
            owner=rep_hours(owners.get(owner_id)) if owner_id else None,
            deal=refs.get(deal.id) if deal is not None else None,
            days_since_last_contact=round((as_of - last[0]).total_seconds() / 86400, 1) if last else None,
            last_touch=last[1] if last else None,
            last_reply_at=max((e.at for e in events if e.kind == "reply"), default=None),
            last_outbound_at=max((e.at for e in events if e.kind in ("email", "call", "linkedin_message")), default=None),
            unanswered_touches=unanswered,
            emails=email_items(mine, as_of, HISTORY_EMAILS),
            content=content_items(acts, as_of),
            meetings=meeting_items(meetings.get(cid, []), acts, as_of),
            touches=touch_items(acts, as_of),
            pattern=response_pattern(mine, acts, as_of),
            owner_pattern=prepared.owner_patterns.get(owner_id, TimeHistogram()) if owner_id else TimeHistogram(),
            pending=pending.get(cid, []),
            playbook=prepared.playbook,
            resources=prepared.resources,
            sensitive=bool(contact.sensitive or (contact.account is not None and contact.account.sensitive)
                           or (deal is not None and deal.account_id in sensitive_accounts)),
            notes=contact.notes[:2000] if contact.notes else None,
            book=book,
        ))
    return contexts


__all__ = ["RESPONSE_DAYS", "PreparedFollowUp", "build", "learn", "prepare", "subjects", "touch_events"]
