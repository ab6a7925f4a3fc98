"""What is due: functions that look at the store and enqueue jobs. They decide when, never what.

Each planner runs in its own unit of work and only writes job rows (and its cursor), so it is
cheap to run often and safe to run from several workers at once (dedupe keys coalesce).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock, jobqueue
from crm_core.contexts.pipeline import pipeline_outcomes_changed
from crm_core.importing.history import historical_ids
from crm_core.learning import lead_outcomes_changed
from crm_core.models import Activity, Contact, Cursor, Job, JobStatus, Meeting
from crm_core.quality.scheduling import AUDIT_JOB, audit_due
from crm_core.settings import get_settings

AGENT_JOB = "agent"
ACTIVITY_CURSOR = "activities:lead_scoring"
CONTACT_CURSOR = "contacts:enrichment"
FOLLOW_BATCH = 5000
BATCH_ABOVE = 50


def _advance(session: Session, name: str, position: int) -> None:
    cursor = session.get(Cursor, name, with_for_update=True)
    if cursor is None:
        session.add(Cursor(name=name, position=position))
    else:
        cursor.position = max(cursor.position, position)
        cursor.updated_at = clock.now()


def enqueue_agent(session: Session, agent: str, subject_ids: list[int] | None = None, *, dedupe_key: str | None = None) -> int | None:
    payload = {"agent": agent, "subject_ids": subject_ids}
    return jobqueue.enqueue(session, AGENT_JOB, payload=payload, dedupe_key=dedupe_key or f"{agent}:all")


GAP_GRACE_SECONDS = 600
MAX_GAPS = 1000


def _read_log(session: Session, cursor: str, id_column, *columns) -> list:
    """The rows of an append-only log past the cursor, plus rows that filled a gap since the last read.

    On PostgreSQL ids are handed out when a row is inserted, not when it commits: a transaction
    holding id N can commit after id N+1 was read and the cursor moved past N. Each id missing
    below the newest row read is remembered (a cursor row `<cursor>:gap:<id>`, timestamped) and
    looked for again on every read until it appears or GAP_GRACE_SECONDS pass (a rolled-back or
    deleted row never appears). SQLite has one writer at a time, so commit order is id order there.
    """
    state = session.get(Cursor, cursor, with_for_update=True)
    if state is None:
        # First start: the whole book is covered by each agent's whole run, which the worker makes
        # on start; following history row by row would rescore every contact once per page of it.
        session.add(Cursor(name=cursor, position=session.scalar(select(func.max(id_column))) or 0))
        return []
    start = state.position
    rows = session.execute(select(id_column, *columns).where(id_column > start).order_by(id_column).limit(FOLLOW_BATCH)).all()
    if rows:
        _advance(session, cursor, rows[-1][0])
    if session.get_bind().dialect.name != "postgresql":
        return rows

    prefix = f"{cursor}:gap:"
    gaps = {int(c.name[len(prefix):]): c for c in session.scalars(select(Cursor).where(Cursor.name.startswith(prefix)))}
    filled = session.execute(select(id_column, *columns).where(id_column.in_(list(gaps)))).all() if gaps else []
    for row in filled:
        session.delete(gaps.pop(row[0]))
    now = clock.now()
    for cursor_row in gaps.values():
        if (now - cursor_row.updated_at).total_seconds() > GAP_GRACE_SECONDS:
            session.delete(cursor_row)
    if rows:
        present = {row[0] for row in rows}
        room = MAX_GAPS - len(gaps)
        for missing in range(start + 1, rows[-1][0]):
            if room <= 0:
                break
            if missing not in present and missing not in gaps:
                session.add(Cursor(name=f"{prefix}{missing}", position=missing, updated_at=now))
                room -= 1
    return sorted(filled) + rows


def follow_activity_log(session: Session) -> int:
    """Every new activity rescoring its contact; a burst for one contact coalesces into one job."""
    rows = _read_log(session, ACTIVITY_CURSOR, Activity.id, Activity.contact_id)
    if not rows:
        return 0
    # Rows a history import wrote are for learning: no rescoring per imported activity.
    history = historical_ids(session, "activities", [row[0] for row in rows])
    rows = [row for row in rows if row[0] not in history]
    contacts = sorted({cid for _, cid in rows if cid is not None})
    if len(contacts) > BATCH_ABOVE:
        # A bulk import: one job for the lot, so the learned model is prepared once, not per contact.
        enqueue_agent(session, "lead_scoring", contacts, dedupe_key=f"lead_scoring:batch:{rows[-1][0]}")
    else:
        window = timedelta(seconds=get_settings().coalesce_seconds)
        for contact_id in contacts:
            enqueue_coalesced(session, "lead_scoring", "contact", contact_id, window=window)
    return len(contacts)


MAX_FOLD_WINDOWS = 6  # a subject that never goes quiet is still decided this many windows after it began


def enqueue_coalesced(session: Session, agent: str, subject_type: str, subject_id: int, *, window: timedelta) -> int | None:
    """One decision for a burst of events about one subject, without delaying a quiet subject's first.

    - No job for the subject lately: queued to run at once.
    - Its job still waits: it will read the newest data when it runs, so the event folds into it;
      a follow-up waiting for the subject to go quiet waits `window` past this event (at most
      MAX_FOLD_WINDOWS windows after it was queued, so a busy subject is still decided).
    - Its job runs, or started less than MAX_FOLD_WINDOWS windows ago (30 s by default): the
      subject is busy (a lead reading a page every few seconds, a thread of replies). A follow-up
      is queued for that many windows after the job started, and at least `window` after this
      event; events until then fold into it. So a busy subject is decided at its first event and
      at most once per MAX_FOLD_WINDOWS windows after it, and its last events at most that long
      after they arrive: with a window of a few seconds a browsing session one page every ten
      seconds would otherwise be a decision per page.
    - Its job finished less than `window` ago (a job that ran longer than the hold): a follow-up
      for when the subject has been quiet for `window`.
    """
    key = f"{agent}:{subject_type}:{subject_id}"
    now = clock.now()
    latest = session.scalars(
        select(Job).where(Job.kind == AGENT_JOB, Job.dedupe_key == key).order_by(Job.id.desc()).limit(1)
    ).first()
    if latest is not None and latest.status == JobStatus.PENDING:
        if latest.run_after > now:
            latest.run_after = max(latest.run_after, min(now + window, latest.created_at + window * MAX_FOLD_WINDOWS))
        return None
    hold = window * MAX_FOLD_WINDOWS
    started = latest.started_at if latest is not None and latest.status in (JobStatus.RUNNING, JobStatus.DONE) else None
    run_after = now
    if started is not None and now - started < hold:
        run_after = max(now + window, started + hold)
    elif latest is not None and (
            latest.status == JobStatus.RUNNING or (latest.finished_at is not None and now - latest.finished_at < window)):
        run_after = now + window
    return jobqueue.enqueue(session, AGENT_JOB, payload={"agent": agent, "subject_ids": [subject_id]},
                            dedupe_key=key, run_after=run_after)


def follow_new_contacts(session: Session) -> int:
    """Enrichment when a contact is created."""
    ids = [row[0] for row in _read_log(session, CONTACT_CURSOR, Contact.id)]
    history = historical_ids(session, "contacts", ids)  # a history import's contacts get no enrichment each
    ids = [i for i in ids if i not in history]
    if not ids:
        return 0
    for contact_id in ids:
        enqueue_agent(session, "enrichment", [contact_id], dedupe_key=f"enrichment:contact:{contact_id}")
    return len(ids)


def meetings_due(session: Session) -> int:
    """Briefs 30 minutes before a meeting; action items within 5 minutes after one with a transcript."""
    now = clock.now()
    brief_due = session.scalars(
        select(Meeting.id).where(
            Meeting.status == "scheduled",
            Meeting.brief.is_(None),
            Meeting.starts_at > now,
            Meeting.starts_at <= now + timedelta(minutes=30),
        )
    ).all()
    items_due = session.scalars(
        select(Meeting.id).where(
            and_(
                Meeting.transcript.is_not(None),
                Meeting.action_items_extracted_at.is_(None),
                Meeting.ends_at <= now,
                # A meeting whose transcript holds no commitment never gets items; without a
                # window it would wake the agent every minute for ever. Two days covers a
                # transcript uploaded late; older ones are picked up by the hourly whole run.
                Meeting.ends_at > now - timedelta(days=2),
            )
        )
    ).all()
    ids = set(brief_due) | set(items_due)
    # The meeting agent's builder picks its own subjects (briefs, action items, invites); the
    # planner only wakes it when something is due, so it runs within a minute of the moment.
    if ids:
        enqueue_agent(session, "meeting")
    return len(ids)


PERIOD_SLACK = 0.9  # a period counts as claimed this share of it after the last claim (timer jitter)


def claim_period(session: Session, name: str, every: timedelta) -> bool:
    """True for the one caller per store and period: later callers within the period get False.

    Each worker runs every timer on start; without this, N workers (or a restart) would each
    queue the whole runs again once the first copy left the pending state. The claim is a cursor
    row stamped with the time it was taken, locked while read on PostgreSQL; two first-ever
    claims race on the row's key and the loser gets False.
    """
    now = clock.now()
    row = session.get(Cursor, f"period:{name}", with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(Cursor(name=f"period:{name}", position=1, updated_at=now))
                session.flush()
        except IntegrityError:
            return False
        return True
    if now - row.updated_at < every * PERIOD_SLACK:
        return False
    row.updated_at = now
    row.position += 1
    return True


def whole_run(agent: str, every: timedelta | None = None) -> Callable[[Session], int]:
    """A planner that asks an agent to cover every subject due (its builder chooses which).

    With `every`, the run is queued at most once per period for the whole store, however many
    workers start (see claim_period).
    """

    def plan(session: Session) -> int:
        if every is not None and not claim_period(session, f"whole_run:{agent}", every):
            return 0
        return 1 if enqueue_agent(session, agent) else 0

    plan.__name__ = f"plan_{agent}"
    return plan


def learn_when_outcomes_change(session: Session) -> int:
    """The learn job, when the rows outcomes are read from moved since the newest model learned."""
    if not lead_outcomes_changed(session) and not pipeline_outcomes_changed(session):
        return 0
    return 1 if jobqueue.enqueue(session, "learn", payload={"force": False}, dedupe_key="learn") else 0


def learn_daily(session: Session) -> int:
    """The daily learn job: relearn even with the same outcomes (the newest period moved)."""
    if not claim_period(session, "learn_daily", timedelta(days=1)):
        return 0
    return 1 if jobqueue.enqueue(session, "learn", payload={"force": True}, dedupe_key="learn") else 0


def data_audit_due(session: Session) -> int:
    """The data-quality audit after an import, and at least daily (see crm_core.quality.scheduling)."""
    trigger = audit_due(session)
    return 1 if trigger and jobqueue.enqueue(session, AUDIT_JOB, payload={"trigger": trigger}, dedupe_key=AUDIT_JOB) else 0


def maintenance(kind: str, every: timedelta | None = None) -> Callable[[Session], int]:
    """A maintenance job; with `every`, queued at most once per period for the whole store."""

    def plan(session: Session) -> int:
        if every is not None and not claim_period(session, kind, every):
            return 0
        return 1 if jobqueue.enqueue(session, kind, dedupe_key=kind) else 0

    plan.__name__ = f"plan_{kind}"
    return plan
