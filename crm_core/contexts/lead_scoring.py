"""The store -> lead-scoring contexts, scored with the newest learned model the learn step stored.

`prepare()` runs once per agent run: it reads the outcomes known at `as_of` (for the similar-contact
rates) and the newest lead-scorer snapshot from `model_snapshots`. It never trains, except once on
a fresh store with no snapshot yet, through the learn step's own function
(`crm_core.learning.learn_lead_scorer`), so the first run still scores. Back-tests (an `as_of` in
the past) learn as of then through the same function and store nothing. `build()` scores each
contact with the model and puts the estimate, its reasons and the contact's features into the
context. The book is read by `crm_core.contexts.lead_book`.
"""
from __future__ import annotations

from collections.abc import Sequence
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
from agents.learning.records import Outcome
from agents.learning.scorer import LeadScorer
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import learnable
from crm_core import clock
from crm_core.contexts.book_lead_scoring import lead_scoring_block
from crm_core.contexts.lead_book import contacts_by_id, load_book, load_records, raw_outcomes, segments
from crm_core.contexts.reading import chunks
from crm_core.learning import (
    LearnedLeadModel,
    from_snapshot,
    learn_lead_scorer,
    newest_snapshot,
    outcome_rows_fingerprint,
    outcomes_hash,
)
from crm_core.models import Account, Contact, ScoreHistory, Task, User
from crm_core.models.enums import LifecycleStage, TaskStatus

AGENT = "lead_scoring"
TOP_PER_SIDE = 3
RECENT_PAGES = 5

__all__ = ["PreparedScoring", "build", "load_book", "load_records", "outcomes_hash", "prepare", "subjects"]


# -- the learned scorer, as stored --------------------------------------------------------------------
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


# A scheduler worker rescores one contact per job; reading every outcome for the similar-contact
# rates cost 180 ms a job on an 8,000-contact book. A worker keeps what it read for as long as the
# outcome rows and the newest snapshot are unchanged, within the same hour. This caches reading
# only: the model comes from the snapshot.
_READ_CACHE: dict[tuple, PreparedScoring] = {}


def prepare(session: Session, *, as_of: datetime, store: bool = True) -> PreparedScoring:
    """The newest stored scorer and the outcomes known at `as_of` (see the module docstring)."""
    live = store and abs((clock.now() - as_of).total_seconds()) < 60  # back-tests never share a cache
    if not live:
        return _prepare(session, as_of=as_of, live=False)
    newest = newest_snapshot(session)
    rows = (str(session.get_bind().url), as_of.replace(minute=0, second=0, microsecond=0),
            tuple(outcome_rows_fingerprint(session)))
    hit = _READ_CACHE.get((*rows, newest.id if newest is not None else None))
    if hit is not None:
        return hit
    prepared = _prepare(session, as_of=as_of, live=True)
    _READ_CACHE.clear()  # one book, one model: nothing older is worth keeping
    _READ_CACHE[(*rows, prepared.snapshot_id)] = prepared
    return prepared


def _prepare(session: Session, *, as_of: datetime, live: bool) -> PreparedScoring:
    _, outcomes = load_book(session, as_of=as_of, outcomes_only=True, with_events=False)
    known, mature_before = learnable(outcomes, as_of)
    timeline = OutcomeTimeline(known)
    base_rate = _base_rate(session, known, mature_before)
    model: LearnedLeadModel | None = None
    if live:
        newest = newest_snapshot(session)
        if newest is not None:
            try:
                model = from_snapshot(newest)
            except ValueError:
                model = None  # written by an older learner: learn again below
    if model is None:
        # A fresh store (no learn job ran yet) or a back-test: the learn step's own function.
        model = learn_lead_scorer(session, as_of=as_of, store=live, known=outcomes)
    return PreparedScoring(as_of, timeline, model.scorer, model.reason, base_rate, model.snapshot_id,
                           model.trained_at, model.data_hash)


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
    closed = {cid for cid, (_, at) in raw_outcomes(session, as_of).items()}
    return [cid for cid in rows if cid not in closed]


def _model_estimate(prepared: PreparedScoring, est: Estimate, row: dict[str, Any]) -> ModelEstimate:
    scorer = prepared.scorer
    # The three contributions that raised the score most and the three that lowered it most.
    ranked = sorted(est.contributions, key=lambda c: -abs(c.effect))
    chosen = [c for c in ranked if c.points > 0][:TOP_PER_SIDE] + [c for c in ranked if c.points < 0][:TOP_PER_SIDE]
    factors = [Factor(feature=c.feature, points=c.points, words=c.words, source=c.source)
               for c in sorted(chosen, key=lambda c: -abs(c.effect))]
    common = dict(probability=round(est.probability, 4), score=int(round(est.probability * 100)), factors=factors,
                  notes=list(est.notes), snapshot_id=prepared.snapshot_id, trained_at=prepared.trained_at)
    if scorer is None:
        return ModelEstimate(kind="prior", base_rate=_round(prepared.base_rate), **common)
    report = scorer.report
    interval = report.holdout_auc_interval
    return ModelEstimate(kind="learned", hot_min=scorer.hot_min, warm_min=scorer.warm_min, holdout_auc=report.holdout_auc,
                         holdout_auc_low=_round(interval[0]) if interval else None, coverage=scorer.coverage(row),
                         model_words=report.candidate_words or None, trained_on=report.contacts,
                         base_rate=report.newest_base_rate if report.newest_base_rate is not None else report.base_rate,
                         **common)


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
    contacts = {c.id: c for c in contacts_by_id(session, list(records))}
    reps = _reps(session, as_of)
    seniors = sorted((r for r in reps.values() if r.is_senior), key=lambda r: (r.open_tasks, r.id))
    tasks = _open_tasks(session, list(records), as_of)
    previous = _previous_scores(session, contacts, as_of)
    book = lead_scoring_block(session, prepared, as_of=as_of) if records else None
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
            for seg in (prepared.timeline.segment(name, value, as_of) for name, value in segments(record))
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
            model=_model_estimate(prepared, est, row),
            previous=previous.get(cid),
            open_tasks=int(tasks.get(cid, 0)),
            manual_fields=[str(f) for f in (contact.manual_fields or [])],
            sensitive=bool(contact.sensitive or (account is not None and account.sensitive)),
            notes=contact.notes,
            book=book,
        ))
    return contexts
