"""The job table as a queue shared by every scheduler worker.

Claiming is one atomic statement per back-end:
- PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so many workers on many machines share the
  work without ever taking the same row;
- SQLite: `UPDATE ... WHERE id = (SELECT ...) RETURNING`, inside a BEGIN IMMEDIATE transaction;
  only one worker holds the `scheduler:sqlite` lease at a time (see `acquire_lock`).
A claim is a lease: a worker killed mid-job stops renewing it, the lease expires, and the next
claim takes the job again. Handlers must therefore be idempotent (agent runs pass the job id as
idempotency key, so a redone job stores and executes its decision once).
An enqueue also wakes idle workers (`crm_core.wakeups`); a worker that misses it claims on its poll.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock, wakeups
from crm_core.models import Job, JobStatus, Lock

BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600


def enqueue(
    session: Session,
    kind: str,
    *,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 5,
) -> int | None:
    """Add a job; with a dedupe key, a pending job of the same kind and key absorbs this one."""
    if dedupe_key is not None:
        existing = session.scalar(
            select(Job.id).where(Job.kind == kind, Job.dedupe_key == dedupe_key, Job.status == JobStatus.PENDING).limit(1)
        )
        if existing is not None:
            return None
    job = Job(
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload or {},
        run_after=run_after or clock.now(),
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    if job.run_after <= clock.now():
        wakeups.announce(session, kind)  # idle workers claim it now, not at their next poll
    return job.id


def _claimable(now: datetime):
    return or_(
        and_(Job.status == JobStatus.PENDING, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
    )


def claim(session: Session, worker_id: str, *, lease_seconds: int) -> Job | None:
    """Take the oldest due job (or one whose lease expired) for `worker_id`; None when idle."""
    now = clock.now()
    candidate = select(Job.id).where(_claimable(now)).order_by(Job.run_after, Job.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    job_id = session.execute(
        update(Job)
        .where(Job.id == candidate.scalar_subquery(), _claimable(now))
        .values(
            status=JobStatus.RUNNING,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
            started_at=now,
        )
        .returning(Job.id)
    ).scalar()
    if job_id is None:
        return None
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    if job.attempts > job.max_attempts:
        # Its earlier holders died (lease expired) as many times as it may be tried.
        job.status = JobStatus.DEAD
        job.finished_at = now
        job.last_error = (job.last_error or "") + f" | gave up: lease expired after {job.max_attempts} attempts"
        return None
    return job


def extend_lease(session: Session, job_id: int, worker_id: str, *, lease_seconds: int) -> bool:
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.RUNNING)
        .values(lease_expires_at=clock.now() + timedelta(seconds=lease_seconds))
    )
    return res.rowcount == 1


def complete(session: Session, job_id: int, worker_id: str) -> bool:
    """Mark done; False when the lease was lost meanwhile (another worker owns the job now)."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, finished_at=clock.now(), lease_expires_at=None)
    )
    return res.rowcount == 1


def backoff_seconds(attempts: int) -> int:
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def fail(session: Session, job_id: int, worker_id: str, error: str) -> str | None:
    """Record a failure: retry later with exponential backoff, or give up after max attempts."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.lease_owner != worker_id or job.status != JobStatus.RUNNING:
        return None
    now = clock.now()
    job.last_error = error[:4000]
    job.lease_expires_at = None
    if job.attempts >= job.max_attempts:
        job.status = JobStatus.DEAD
        job.finished_at = now
    else:
        job.status = JobStatus.PENDING
        job.run_after = now + timedelta(seconds=backoff_seconds(job.attempts))
    return job.status


def depth(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Job).where(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))) or 0)


def acquire_lock(session: Session, name: str, owner: str, *, lease_seconds: int) -> bool:
    """Take or renew a named lease; False while someone else holds an unexpired one."""
    now = clock.now()
    lock = session.get(Lock, name, with_for_update=True, populate_existing=True)
    if lock is None:
        try:
            with session.begin_nested():  # two first-comers race on the primary key
                session.add(Lock(name=name, owner=owner, expires_at=now + timedelta(seconds=lease_seconds)))
        except IntegrityError:
            return False
        return True
    if lock.owner != owner and lock.expires_at > now:
        return False
    lock.owner = owner
    lock.expires_at = now + timedelta(seconds=lease_seconds)
    return True


def release_lock(session: Session, name: str, owner: str) -> None:
    lock = session.get(Lock, name, with_for_update=True)
    if lock is not None and lock.owner == owner:
        session.delete(lock)
