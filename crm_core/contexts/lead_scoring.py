"""The store -> lead-scoring contexts, and the scorer learned from the store's own history.

`prepare()` runs once per agent run: it collects the contacts whose outcome is known at
`as_of` (customers and disqualified contacts, contacts of won and lost deals), and loads the
scorer learned from exactly those outcomes from `model_snapshots`, or fits a new one and stores
it with its hold-out metrics when the outcomes changed. `build()` scores each contact with it
and puts the estimate, its reasons and the contact's features into the context.

Nothing after `as_of` is read: activities, emails and meetings are cut at `as_of`, outcomes and
deals count only if closed by then, and a contact that became a customer after `as_of` is an
open lead at `as_of`. The contact's own columns (title, attributes) have no history in the
store; they are read as they are now.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.lead_scoring import (
    Context,
    Engagement,
    Factor,
    Firmographics,
    ModelEstimate,
    PreviousScore,
    RepRef,
    SimilarOutcomes,
)
from agents.learning import records as ev
from agents.learning.explain import Estimate
from agents.learning.features import engagement, feature_row, job_function, seniority
from agents.learning.features import email_kind as email_kind_of
from agents.learning.prior import DEFAULT_BASE_RATE, prior_estimate
from agents.learning.records import ContactRecord, Event, Outcome
from agents.learning.scorer import LeadScorer, NotEnoughHistory, fit_scorer
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import learnable, snapshots, training_labels
from crm_core import clock
from crm_core.contexts.reading import chunks, payload_text
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting, ModelSnapshot, ScoreHistory, Task, User
from crm_core.models.enums import DealStatus, LifecycleStage, MeetingStatus, TaskStatus

AGENT = "lead_scoring"
FEATURE_VERSION = "lead_scoring-features/1"  # bump when features change: stored models are then refitted
TOP_FACTORS = 6
RECENT_PAGES = 5
_PRICING = re.compile(r"pric|/plans?\b|/buy\b|/checkout|/quote", re.I)
_DEMO = re.compile(r"demo|trial|contact[-_ ]?sales|talk[-_ ]?to[-_ ]?sales|book[-_ ]?a[-_ ]?(call|meeting)", re.I)


# -- reading the book ---------------------------------------------------------------------------------


def _activity_event(type_: str, at: datetime, payload: dict[str, Any] | None) -> Event:
    if type_ == "page_view":
        url = payload_text(payload, "url", "path", "page", "title")
        return Event(at, ev.PRICING_VIEW if url and _PRICING.search(url) else ev.PAGE_VIEW, url)
    if type_ == "form_submit":
        form = payload_text(payload, "form", "name", "url", "title", "subject")
        return Event(at, ev.DEMO_REQUEST if form and _DEMO.search(form) else ev.FORM_SUBMIT, form)
    if type_ == "stage_change":
        return Event(at, ev.STAGE_CHANGE, payload_text(payload, "to", "to_stage", "stage", "lifecycle_stage"))
    if type_ == "content_download":
        return Event(at, ev.CONTENT_DOWNLOAD, payload_text(payload, "asset", "title", "url", "name"))
    return Event(at, type_, None)


def _events(session: Session, ids: list[int], as_of: datetime) -> dict[int, list[Event]]:
    """Every event of these contacts up to `as_of`, from activities, emails and meetings."""
    found: dict[int, list[Event]] = defaultdict(list)
    for chunk in chunks(ids):
        for cid, type_, at, payload in session.execute(
            select(Activity.contact_id, Activity.type, Activity.occurred_at, Activity.payload)
            .where(Activity.contact_id.in_(chunk), Activity.occurred_at <= as_of)
        ):
            found[cid].append(_activity_event(type_, at, payload))
        for cid, direction, sent, opened, replied in session.execute(
            select(Email.contact_id, Email.direction, Email.sent_at, Email.opened_at, Email.replied_at)
            .where(Email.contact_id.in_(chunk), Email.sent_at <= as_of)
        ):
            if direction == "inbound":
                found[cid].append(Event(sent, ev.EMAIL_REPLIED))
                continue
            found[cid].append(Event(sent, ev.EMAIL_SENT))
            if opened is not None and opened <= as_of:
                found[cid].append(Event(opened, ev.EMAIL_OPENED))
            if replied is not None and replied <= as_of:
                found[cid].append(Event(replied, ev.EMAIL_REPLIED))
        for cid, starts, created, status in session.execute(
            select(Meeting.contact_id, Meeting.starts_at, Meeting.created_at, Meeting.status)
            .where(Meeting.contact_id.in_(chunk), Meeting.created_at <= as_of, Meeting.status != MeetingStatus.CANCELLED.value)
        ):
            if starts <= as_of:
                found[cid].append(Event(starts, ev.MEETING))
            else:
                found[cid].append(Event(created, ev.MEETING_BOOKED))
    # The same open or meeting may be in the activity log and in its own table: count it once.
    deduped: dict[int, list[Event]] = {}
    for cid, events in found.items():
        seen: set[tuple[str, datetime]] = set()
        keep = []
        for e in sorted(events, key=lambda e: e.at):
            key = (e.kind, e.at.replace(second=0, microsecond=0))
            if e.kind in (ev.PAGE_VIEW, ev.PRICING_VIEW, ev.CONTENT_DOWNLOAD) or key not in seen:
                keep.append(e)
                seen.add(key)
        deduped[cid] = keep
    return deduped


def _contacts(session: Session, ids: Sequence[int] | None) -> list[Contact]:
    if ids is None:
        return list(session.scalars(select(Contact)).unique())
    rows: list[Contact] = []
    for chunk in chunks(list(ids)):
        rows.extend(session.scalars(select(Contact).where(Contact.id.in_(chunk))).unique())
    return rows


def _first_activity(session: Session, ids: list[int], as_of: datetime) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for chunk in chunks(ids):
        out.update(session.execute(
            select(Activity.contact_id, func.min(Activity.occurred_at))
            .where(Activity.contact_id.in_(chunk), Activity.occurred_at <= as_of).group_by(Activity.contact_id)
        ).all())
    return out


def _record(contact: Contact, events: list[Event], first_activity: datetime | None) -> ContactRecord:
    account = contact.account
    fields = {
        "source": contact.source, "title": contact.title, "email": contact.email, "phone": contact.phone,
        "industry": account.industry if account else None, "country": account.country if account else None,
        "employee_count": account.employee_count if account else None,
        "annual_revenue": float(account.annual_revenue) if account and account.annual_revenue is not None else None,
    }
    attributes = {f"attr.{k}": v for k, v in (contact.attributes or {}).items()}
    if account is not None:
        attributes.update({f"account.{k}": v for k, v in (account.attributes or {}).items()})
    # Entry: created, or first seen in the activity log if that was earlier (a contact imported
    # today with its history).
    entry = min(contact.created_at, first_activity) if first_activity is not None else contact.created_at
    return ContactRecord(contact.id, entry, fields, attributes, events)


def load_records(session: Session, *, as_of: datetime, contact_ids: Sequence[int] | None = None,
                 with_events: bool = True) -> dict[int, ContactRecord]:
    """The contacts present at `as_of` (entered by then), with their events up to `as_of`
    (`with_events=False`: fields only, for when only who they are and when they entered matters)."""
    contacts = _contacts(session, contact_ids)
    ids = [c.id for c in contacts]
    events = _events(session, ids, as_of) if with_events else {}
    first = _first_activity(session, ids, as_of)
    records = {}
    for contact in contacts:
        record = _record(contact, events.get(contact.id, []), first.get(contact.id))
        if record.entry_at <= as_of:
            records[contact.id] = record
    return records


def _segments(record: ContactRecord) -> tuple[tuple[str, str | None], ...]:
    f = record.fields
    return tuple((k, str(f[k]).strip().lower() if f.get(k) not in (None, "") else None) for k in ("source", "industry"))


def _raw_outcomes(session: Session, as_of: datetime) -> dict[int, tuple[bool, datetime]]:
    """contact id -> (converted, when it became known), for every outcome known at `as_of`."""
    won: dict[int, datetime] = {}
    lost: dict[int, datetime] = {}
    for cid, stage, at in session.execute(
        select(Contact.id, Contact.lifecycle_stage, Contact.outcome_at)
        .where(Contact.lifecycle_stage.in_([LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value]),
               Contact.outcome_at.is_not(None), Contact.outcome_at <= as_of)
    ):
        (won if stage == LifecycleStage.CUSTOMER.value else lost)[cid] = at
    # Deals: a won deal makes its contact a converter; a contact whose every deal was lost by
    # `as_of` (none still open then) did not convert.
    open_at: set[int] = set()
    lost_deals: dict[int, datetime] = {}
    for cid, status, opened, created, closed in session.execute(
        select(Deal.primary_contact_id, Deal.status, Deal.opened_at, Deal.created_at, Deal.closed_at)
        .where(Deal.primary_contact_id.is_not(None))
    ):
        # An imported deal is created today with its history in opened_at/closed_at.
        began = min(t for t in (opened, created, closed) if t is not None)
        if began > as_of:
            continue
        if status == DealStatus.WON.value and closed is not None and closed <= as_of:
            won[cid] = min(won.get(cid, closed), closed)
        elif status == DealStatus.LOST.value and closed is not None and closed <= as_of:
            lost_deals[cid] = max(lost_deals.get(cid, closed), closed)
        else:
            open_at.add(cid)
    for cid, at in lost_deals.items():
        if cid not in open_at and cid not in lost:
            lost[cid] = at
    out = {cid: (True, at) for cid, at in won.items()}
    for cid, at in lost.items():
        out.setdefault(cid, (False, at))
    return out


def load_book(
    session: Session, *, as_of: datetime, outcomes_only: bool = False, with_events: bool = True
) -> tuple[dict[int, ContactRecord], list[Outcome]]:
    """Records of the contacts present at `as_of` and the outcomes known then (the back-test's input)."""
    raw = _raw_outcomes(session, as_of)
    records = load_records(session, as_of=as_of, contact_ids=sorted(raw) if outcomes_only else None,
                           with_events=with_events)
    outcomes = [
        Outcome(cid, won, at, records[cid].entry_at, _segments(records[cid]))
        for cid, (won, at) in sorted(raw.items()) if cid in records
    ]
    return records, outcomes


# -- the learned scorer ---------------------------------------------------------------------------
@dataclass
class PreparedScoring:
    """What `prepare` hands to `build`: the scorer (or why there is none) and the outcome timeline."""

    as_of: datetime
    timeline: OutcomeTimeline
    scorer: LeadScorer | None
    fallback_reason: str | None
    base_rate: float | None
    snapshot_id: int | None = None
    trained_at: datetime | None = None
    data_hash: str = ""


def outcomes_hash(outcomes: Iterable[Outcome]) -> str:
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    for o in sorted(outcomes, key=lambda o: o.contact_id):
        digest.update(f"|{o.contact_id}:{int(o.won)}:{o.at.isoformat()}".encode())
    return digest.hexdigest()


def _base_rate(session: Session, known: Sequence[Outcome], mature_before: datetime) -> float | None:
    """The book's own conversion rate: converted contacts among all that entered before the
    maturity line (open ones included: a book that records only its wins still has a rate)."""
    if not known:
        return None
    entered = session.scalar(select(func.count(Contact.id)).where(Contact.created_at <= mature_before)) or 0
    won = sum(1 for o in known if o.won and o.entry_at <= mature_before)
    if entered == 0:
        entered = session.scalar(select(func.count(Contact.id)).where(Contact.created_at <= max(o.at for o in known))) or 0
        won = sum(o.won for o in known)
    if entered == 0:
        return None
    # A handful of contacts says little: lean on the usual B2B rate until there are more.
    return (won + DEFAULT_BASE_RATE * 10) / (entered + 10)


# The scheduler rescores one contact per job; reading every outcome to find the stored model
# cost 180 ms a job on an 8,000-contact book. A worker keeps what it prepared for as long as the
# rows outcomes are read from are unchanged (count and last update), within the same hour.
_PREPARED: dict[tuple, PreparedScoring] = {}


def _outcome_rows_fingerprint(session: Session) -> tuple:
    contacts = session.execute(
        select(func.count(), func.max(Contact.updated_at))
        .where(Contact.lifecycle_stage.in_([LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value]))
    ).one()
    deals = session.execute(
        select(func.count(), func.max(Deal.updated_at)).where(Deal.primary_contact_id.is_not(None))
    ).one()
    return tuple(contacts), tuple(deals)


def prepare(session: Session, *, as_of: datetime, store: bool = True) -> PreparedScoring:
    """Load (or learn and store) the scorer for the outcomes known at `as_of`."""
    live = store and abs((clock.now() - as_of).total_seconds()) < 60  # back-tests never share a cache
    if live:
        key = (str(session.get_bind().url), as_of.replace(minute=0, second=0, microsecond=0),
               _outcome_rows_fingerprint(session))
        hit = _PREPARED.get(key)
        if hit is not None:
            return hit
        prepared = _prepare(session, as_of=as_of, store=store)
        _PREPARED.clear()  # one book, one model: nothing older is worth keeping
        _PREPARED[key] = prepared
        return prepared
    return _prepare(session, as_of=as_of, store=store)


def _prepare(session: Session, *, as_of: datetime, store: bool = True) -> PreparedScoring:
    # Who converted and when is enough to know whether a stored model fits; events only if it does not.
    records, outcomes = load_book(session, as_of=as_of, outcomes_only=True, with_events=False)
    known, mature_before = learnable(outcomes, as_of)
    timeline = OutcomeTimeline(known)
    digest = outcomes_hash(known)
    base_rate = _base_rate(session, known, mature_before)
    stored = session.scalars(
        select(ModelSnapshot).where(ModelSnapshot.agent == AGENT, ModelSnapshot.data_hash == digest)
        .order_by(ModelSnapshot.trained_at.desc(), ModelSnapshot.id.desc()).limit(1)
    ).first()
    if stored is not None:
        scorer = LeadScorer.from_dict(json.loads(stored.blob)) if stored.blob else None
        return PreparedScoring(as_of, timeline, scorer, stored.metrics.get("reason"), base_rate, stored.id,
                               stored.trained_at, digest)
    # Contacts newer than the maturity line are learned from whether or not their outcome is known.
    recent = session.scalars(select(Contact.id).where(Contact.created_at > mature_before, Contact.created_at <= as_of)).all()
    records = load_records(session, as_of=as_of, contact_ids=sorted(set(records) | set(recent)))
    scorer: LeadScorer | None = None
    reason: str | None = None
    try:
        labels = training_labels(records, known, as_of, mature_before)
        scorer = fit_scorer(snapshots(records, labels, timeline), mature_before=mature_before)
    except NotEnoughHistory as exc:
        reason = (f"{exc}; a transparent prior scores until then (mark lost leads disqualified, or close "
                  "their deals as lost, to teach it)")
    prepared = PreparedScoring(as_of, timeline, scorer, reason, base_rate, None, clock.now(), digest)
    if store:
        metrics: dict[str, Any] = {"kind": "learned" if scorer else "prior", "as_of": as_of.isoformat(),
                                   "outcomes": len(known), "mature_before": mature_before.isoformat()}
        if scorer is not None:
            metrics.update(scorer.report.as_dict())
        else:
            metrics["reason"] = reason
        snapshot = ModelSnapshot(agent=AGENT, trained_at=prepared.trained_at, data_hash=digest, metrics=metrics,
                                 blob=json.dumps(scorer.to_dict()).encode() if scorer else None)
        session.add(snapshot)
        session.flush()
        prepared.snapshot_id = snapshot.id
    return prepared


# -- contexts -------------------------------------------------------------------------------------
def subjects(session: Session, *, as_of: datetime) -> list[int]:
    """Every contact that was an open lead at `as_of`: entered by then, no outcome by then."""
    rows = session.execute(
        select(Contact.id).where(
            Contact.created_at <= as_of,
            or_(Contact.lifecycle_stage.not_in([LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value]),
                Contact.outcome_at.is_(None), Contact.outcome_at > as_of),
        ).order_by(Contact.id)
    ).scalars().all()
    closed = {cid for cid, (_, at) in _raw_outcomes(session, as_of).items()}
    return [cid for cid in rows if cid not in closed]


def _model_estimate(prepared: PreparedScoring, est: Estimate) -> ModelEstimate:
    scorer = prepared.scorer
    factors = [Factor(feature=c.feature, points=c.points, words=c.words, source=c.source)
               for c in est.top(TOP_FACTORS) if c.points != 0]
    common = dict(probability=round(est.probability, 4), score=int(round(est.probability * 100)), factors=factors,
                  notes=list(est.notes), snapshot_id=prepared.snapshot_id, trained_at=prepared.trained_at)
    if scorer is None:
        return ModelEstimate(kind="prior", base_rate=_round(prepared.base_rate), **common)
    report = scorer.report
    return ModelEstimate(kind="learned", hot_min=scorer.hot_min, warm_min=scorer.warm_min, holdout_auc=report.holdout_auc,
                         trained_on=report.contacts, base_rate=report.base_rate, **common)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _reps(session: Session, as_of: datetime) -> dict[int, RepRef]:
    load = dict(session.execute(
        select(Task.owner_id, func.count(Task.id))
        .where(Task.status == TaskStatus.OPEN.value, Task.owner_id.is_not(None), Task.created_at <= as_of)
        .group_by(Task.owner_id)
    ).all())
    return {u.id: RepRef(id=u.id, name=u.name, is_senior=bool(u.is_senior), open_tasks=int(load.get(u.id, 0)))
            for u in session.scalars(select(User))}


def _previous_scores(session: Session, contacts: dict[int, Contact], as_of: datetime) -> dict[int, PreviousScore]:
    """Each contact's last score at `as_of`: its newest score-history point, else the stored score."""
    latest: dict[int, ScoreHistory] = {}
    for chunk in chunks(list(contacts)):
        for point in session.scalars(
            select(ScoreHistory).where(ScoreHistory.contact_id.in_(chunk), ScoreHistory.scored_at <= as_of)
            .order_by(ScoreHistory.contact_id, ScoreHistory.scored_at, ScoreHistory.id)
        ):
            latest[point.contact_id] = point
    out: dict[int, PreviousScore] = {}
    for cid, contact in contacts.items():
        current = contact.score_updated_at is not None and contact.score_updated_at <= as_of
        point = latest.get(cid)
        if point is not None:
            # The contact's next action is that point's if nothing rescored it since as_of.
            out[cid] = PreviousScore(score=point.score, tier=point.tier, scored_at=point.scored_at,
                                     next_action=contact.next_action if current else None)
        elif contact.score is not None and (current or "score" in (contact.manual_fields or [])):
            out[cid] = PreviousScore(score=contact.score, tier=contact.tier, next_action=contact.next_action,
                                     scored_at=contact.score_updated_at if current else None)
    return out


def _stage_at(contact: Contact, logged: str | None, as_of: datetime) -> str | None:
    outcome_later = contact.lifecycle_stage in (LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value) and (
        contact.outcome_at is None or contact.outcome_at > as_of)
    if not outcome_later:
        return contact.lifecycle_stage
    return logged  # the stage it has now was reached after as_of: only the log can tell the stage then


def _attribute_value(value: Any) -> str | float | int | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)[:200]


def _open_tasks(session: Session, ids: list[int], as_of: datetime) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in chunks(ids):
        out.update(session.execute(
            select(Task.contact_id, func.count(Task.id))
            .where(Task.contact_id.in_(chunk), Task.status == TaskStatus.OPEN.value, Task.created_at <= as_of)
            .group_by(Task.contact_id)
        ).all())
    return out


def build(session: Session, subject_ids: Sequence[int], *, as_of: datetime,
          prepared: PreparedScoring | None = None) -> list[Context]:
    """One context per contact in `subject_ids` that existed at `as_of` (others are skipped)."""
    if prepared is None:
        prepared = prepare(session, as_of=as_of, store=False)
    ids = list(dict.fromkeys(subject_ids))
    records = load_records(session, as_of=as_of, contact_ids=ids)
    contacts = {c.id: c for c in _contacts(session, list(records))}
    reps = _reps(session, as_of)
    seniors = sorted((r for r in reps.values() if r.is_senior), key=lambda r: (r.open_tasks, r.id))
    tasks = _open_tasks(session, list(records), as_of)
    previous = _previous_scores(session, contacts, as_of)
    contexts = []
    for cid in ids:
        record = records.get(cid)
        if record is None:
            continue
        contact = contacts[cid]
        account: Account | None = contact.account
        row = feature_row(record, as_of, prepared.timeline)
        if prepared.scorer is not None:
            est = prepared.scorer.estimate(row)
        else:
            est = prior_estimate(row, prepared.base_rate, prepared.fallback_reason)
        eng = engagement(record, as_of)
        pages = [e.detail for e in reversed(record.events_until(as_of)) if e.kind in (ev.PAGE_VIEW, ev.PRICING_VIEW) and e.detail]
        similar = [
            SimilarOutcomes(segment=seg.field, value=seg.value, closed_90d=seg.closed, converted_90d=seg.converted,
                            rate=_round(seg.rate))
            for seg in (prepared.timeline.segment(name, value, as_of) for name, value in _segments(record))
            if seg.value is not None
        ]
        attributes = {k: _attribute_value(v) for k, v in record.attributes.items()}
        contexts.append(Context(
            contact_id=cid,
            as_of=as_of.replace(second=0, microsecond=0),
            name=contact.full_name,
            title=contact.title,
            seniority=seniority(contact.title),
            job_function=job_function(contact.title),
            email_kind=email_kind_of(contact.email),
            source=contact.source,
            lifecycle_stage=_stage_at(contact, eng.last_stage, as_of),
            owner=reps.get(contact.owner_id) if contact.owner_id is not None else None,
            senior_reps=seniors,
            firmographics=Firmographics(
                account_id=account.id if account else None, account_name=account.name if account else None,
                industry=account.industry if account else None, employee_count=account.employee_count if account else None,
                annual_revenue=float(account.annual_revenue) if account and account.annual_revenue is not None else None,
                country=account.country if account else None,
            ),
            custom_attributes=attributes,
            engagement=Engagement(**{k: v for k, v in eng.as_features().items()}, recent_pages=pages[:RECENT_PAGES]),
            similar=similar,
            model=_model_estimate(prepared, est),
            previous=previous.get(cid),
            open_tasks=int(tasks.get(cid, 0)),
            manual_fields=[str(f) for f in (contact.manual_fields or [])],
            sensitive=bool(contact.sensitive or (account is not None and account.sensitive)),
            notes=contact.notes,
        ))
    return contexts
