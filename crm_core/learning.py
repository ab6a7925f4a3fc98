"""The learn step: train the lead scorer on the store's history and keep it as a versioned snapshot.

Separate from reading on purpose: the learn job (`orchestration/scheduler/learn_jobs.py`, daily and
whenever the rows outcomes are read from change, e.g. after an import) calls `learn_lead_scorer`;
the context builder only reads the newest snapshot (`newest_snapshot`). On a fresh store, before
any learn job ran, the run path calls the same `learn_lead_scorer` once so the first run still
scores. Each snapshot holds the model, its validation report (every candidate's AUC on rolling
time-ordered folds, the rule it had to pass, the one chosen) and the outcomes it learned from.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.learning.records import Outcome
from agents.learning.scorer import LeadScorer, NoSkill, NotEnoughHistory, fit_scorer
from agents.learning.selection import MIN_AUC
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import learnable, snapshots, training_labels
from crm_core import clock
from crm_core.contexts.lead_book import load_book, load_records
from crm_core.models import Contact, Deal, ModelSnapshot
from crm_core.models.enums import LifecycleStage

LEAD_AGENT = "lead_scoring"
LEAD_KIND = "lead_scorer"
SNAPSHOT_VERSION = 2
FEATURE_VERSION = "lead_scoring-features/3"  # bump when features change: stored models are then refitted
RULE = (f"used only when the mean AUC over the later periods is at least {MIN_AUC} and the lower end of its "
        "90 % interval is above 0.5")


@dataclass
class LearnedLeadModel:
    """A lead scorer as stored (or learned for a back-test): the model, or why there is none."""

    scorer: LeadScorer | None
    reason: str | None              # why the prior scores instead (too little history, no skill)
    data_hash: str
    trained_at: datetime
    snapshot_id: int | None = None


def outcomes_hash(outcomes: Iterable[Outcome]) -> str:
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    for o in sorted(outcomes, key=lambda o: o.contact_id):
        digest.update(f"|{o.contact_id}:{int(o.won)}:{o.at.isoformat()}".encode())
    return digest.hexdigest()


def outcome_rows_fingerprint(session: Session) -> list:
    """Count and last update of the rows outcomes are read from: cheap, and it moves with any change."""
    contacts = session.execute(
        select(func.count(), func.max(Contact.updated_at))
        .where(Contact.lifecycle_stage.in_([LifecycleStage.CUSTOMER.value, LifecycleStage.DISQUALIFIED.value]))
    ).one()
    deals = session.execute(
        select(func.count(), func.max(Deal.updated_at)).where(Deal.primary_contact_id.is_not(None))
    ).one()
    return [str(v) for v in (*contacts, *deals)]


def newest_snapshot(session: Session, agent: str = LEAD_AGENT) -> ModelSnapshot | None:
    return session.scalars(
        select(ModelSnapshot).where(ModelSnapshot.agent == agent)
        .order_by(ModelSnapshot.trained_at.desc(), ModelSnapshot.id.desc()).limit(1)
    ).first()


def from_snapshot(snapshot: ModelSnapshot) -> LearnedLeadModel:
    """The stored model; ValueError when it was written by an older learner (the caller relearns)."""
    if (snapshot.version or 1) != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot {snapshot.id} has version {snapshot.version}, expected {SNAPSHOT_VERSION}")
    scorer = LeadScorer.from_dict(json.loads(snapshot.blob)) if snapshot.blob else None
    return LearnedLeadModel(scorer, (snapshot.metrics or {}).get("reason"), snapshot.data_hash, snapshot.trained_at,
                            snapshot.id)


def learn_lead_scorer(
    session: Session,
    *,
    as_of: datetime,
    store: bool = True,
    force: bool = True,
    known: Sequence[Outcome] | None = None,
) -> LearnedLeadModel:
    """Train on the outcomes known at `as_of`; with `store`, keep it as the newest snapshot.

    `force=False` skips training when the newest snapshot learned from exactly these outcomes
    (it only notes the rows' fingerprint on it, so the planner stops asking).
    """
    if known is None:
        _, outcomes = load_book(session, as_of=as_of, outcomes_only=True, with_events=False)
        known, mature_before = learnable(outcomes, as_of)
    else:
        known, mature_before = learnable(known, as_of)
    digest = outcomes_hash(known)
    fingerprint = outcome_rows_fingerprint(session) if store else None
    if store and not force:
        newest = newest_snapshot(session)
        if newest is not None and newest.data_hash == digest and (newest.version or 1) == SNAPSHOT_VERSION:
            newest.metrics = {**(newest.metrics or {}), "outcome_rows": fingerprint}
            return from_snapshot(newest)

    timeline = OutcomeTimeline(known)
    ids = {o.contact_id for o in known}
    # Contacts newer than the maturity line are learned from whether or not their outcome is known.
    recent = session.scalars(select(Contact.id).where(Contact.created_at > mature_before, Contact.created_at <= as_of)).all()
    records = load_records(session, as_of=as_of, contact_ids=sorted(ids | set(recent)))
    scorer: LeadScorer | None = None
    reason: str | None = None
    validation: dict[str, Any] = {}
    try:
        labels = training_labels(records, known, as_of, mature_before)
        scorer = fit_scorer(snapshots(records, labels, timeline), mature_before=mature_before)
        validation = {"candidates": scorer.report.candidates, "folds": scorer.report.folds,
                      "chosen": scorer.report.candidate, "note": scorer.report.note}
    except NoSkill as exc:
        validation = exc.validation
        reason = f"{exc}; a transparent prior scores until a learned model proves itself on this book"
    except NotEnoughHistory as exc:
        reason = (f"{exc}; a transparent prior scores until then (mark lost leads disqualified, or close "
                  "their deals as lost, to teach it)")
    model = LearnedLeadModel(scorer, reason, digest, clock.now())
    if store:
        metrics: dict[str, Any] = {"kind": "learned" if scorer else "prior", "as_of": as_of.isoformat(),
                                   "outcomes": len(known), "mature_before": mature_before.isoformat(),
                                   "outcome_rows": fingerprint}
        if scorer is not None:
            metrics.update(scorer.report.as_dict())
        else:
            metrics["reason"] = reason
        snapshot = ModelSnapshot(
            agent=LEAD_AGENT, trained_at=model.trained_at, data_hash=digest, metrics=metrics,
            blob=json.dumps(scorer.to_dict()).encode() if scorer else None, version=SNAPSHOT_VERSION,
            kind=LEAD_KIND, validation={**validation, "rule": RULE},
            chosen=scorer.report.candidate if scorer else "prior",
        )
        session.add(snapshot)
        session.flush()
        model.snapshot_id = snapshot.id
    return model


def lead_outcomes_changed(session: Session) -> bool:
    """True when the rows outcomes are read from moved since the newest snapshot learned (or none exists)."""
    newest = newest_snapshot(session)
    if newest is None:
        return True
    return (newest.metrics or {}).get("outcome_rows") != outcome_rows_fingerprint(session)
