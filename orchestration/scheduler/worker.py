"""The scheduler worker: `schedule` timers enqueue jobs; the worker claims and runs them.

One loop, in this order: run due timers (planners), claim one job, run it, record the outcome,
beat the heart. SIGTERM sets a flag that is read between jobs, so the current job finishes.
When there is nothing to do, the worker waits for its poll interval, but wakes as soon as a job
is queued or an activity is logged (`crm_core.wakeups`), reads the activity log and claims at
once: an event is picked up in tens of milliseconds, not at the next tick. The ticks stay, so a
missed wake-up only costs the old latency.

Every job has a deadline (`CRM_JOB_DEADLINE_SECONDS`): agent runs inside it stop calling the model
before it (the rest of their subjects are decided offline, which is quick), and the lease is renewed
only up to it, never past: a job stuck beyond its deadline loses its lease, and another worker may
redo it (the decision's idempotency key keeps anything from running twice).
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta

import schedule
from sqlalchemy.orm import Session

from crm_core import clock, jobqueue
from crm_core.budget import total_spend_today
from crm_core.db import get_engine, migrate, unit_of_work
from crm_core.models import WorkerHeartbeat
from crm_core.settings import get_settings
from crm_core.wakeups import Wakeup
from orchestration.runner import RunControl, job_control
from orchestration.scheduler import live_jobs, planners
from orchestration.scheduler.handlers import HANDLERS, Handler

log = logging.getLogger("crm.scheduler")
SQLITE_LOCK = "scheduler:sqlite"
SPEND_EVERY = 30.0  # seconds between recomputations of today's LLM spend for the heartbeat
HOUR, DAY = timedelta(hours=1), timedelta(days=1)  # whole-run periods, claimed once per store
# While activities flow, the log is read this often (the first event of a quiet contact is decided at
# once, not at the next 1 s tick); a read is one indexed query. Portable: SQLite and PostgreSQL alike.
FLOW_POLL = 0.1
FLOW_HOLD = 10.0  # seconds after the last event seen during which events count as flowing
MODEL_RESERVE = 0.2  # share of a job's deadline kept free of model calls, for the offline rest and commits


def model_deadline_s(job_deadline_s: float) -> float:
    """How long into a job the model may still be called: the deadline less a reserve (60 s at most)."""
    return max(1.0, job_deadline_s - min(60.0, job_deadline_s * MODEL_RESERVE))


class Worker:
    def __init__(
        self,
        worker_id: str | None = None,
        *,
        poll_interval: float = 0.5,
        lease_seconds: int | None = None,
        handlers: dict[str, Handler] | None = None,
        heartbeat_every: float = 2.0,
        job_deadline_seconds: float | None = None,
    ) -> None:
        settings = get_settings()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds or settings.job_lease_seconds
        self.job_deadline_seconds = float(job_deadline_seconds or settings.job_deadline_seconds)
        self.handlers = handlers or HANDLERS
        self.heartbeat_every = heartbeat_every
        self.is_sqlite = get_engine().dialect.name == "sqlite"
        self.stopping = threading.Event()
        self.jobs_done = 0
        self.current: str | None = None
        self._last_beat = 0.0
        self._spend: tuple[int, float] = (0, 0.0)
        self._spend_at = float("-inf")
        self._events_at = float("-inf")
        self._followed_at = float("-inf")
        self.timers = self._timers(settings.pipeline_scan_minutes)
        step = settings.wake_check_seconds
        self.wakeup = Wakeup(get_engine(), step=step) if step > 0 else None

    # -- timers -------------------------------------------------------------------------
    def _timers(self, pipeline_minutes: int) -> schedule.Scheduler:
        s = schedule.Scheduler()
        s.every(1).seconds.do(self._follow_events)  # and every FLOW_POLL while events flow
        s.every(5).seconds.do(self._plan, planners.follow_new_contacts)
        s.every(1).minutes.do(self._plan, planners.meetings_due)
        s.every(pipeline_minutes).minutes.do(self._plan, planners.whole_run("pipeline", timedelta(minutes=pipeline_minutes)))
        s.every(1).hours.do(self._plan, planners.whole_run("follow_up", HOUR))
        s.every(1).hours.do(self._plan, planners.whole_run("meeting", HOUR))  # invites for engaged contacts
        s.every(1).days.do(self._plan, planners.whole_run("enrichment", DAY))
        s.every(1).days.do(self._plan, planners.whole_run("lead_scoring", DAY))  # engagement decays with time
        s.every(5).minutes.do(self._plan, planners.maintenance("expire_queue"))
        s.every(1).minutes.do(self._plan, planners.maintenance("dispatch_outbox"))
        s.every(1).days.do(self._plan, planners.maintenance("calibration", DAY))
        s.every(1).minutes.do(self._plan, planners.data_audit_due)  # after an import, and daily
        s.every(1).seconds.do(self._plan, live_jobs.follow_audit_log)  # outbound webhooks
        s.every(30).seconds.do(self._plan, planners.maintenance(live_jobs.DELIVER_JOB))  # their retries
        s.every(get_settings().imap_poll_seconds).seconds.do(self._plan, live_jobs.plan_mailbox)
        s.every(1).minutes.do(self._plan, planners.learn_when_outcomes_change)  # after an import, a closed deal
        s.every(1).days.do(self._plan, planners.learn_daily)
        return s

    def _plan(self, planner: Callable[[Session], int]) -> int:
        try:
            with unit_of_work() as session:
                return planner(session) or 0
        except Exception:  # a planner failing must not stop the worker; it retries next tick
            log.exception("planner %s failed", getattr(planner, "__name__", planner))
            return 0

    def _follow_events(self) -> None:
        self._followed_at = time.monotonic()
        if self.wakeup is not None:
            self.wakeup.mark()  # what the log holds now is read below: only newer rows wake the worker
        if self._plan(planners.follow_activity_log):
            self._events_at = self._followed_at

    def _flowing(self) -> bool:
        """Events were seen lately: read the activity log every FLOW_POLL instead of every second."""
        return time.monotonic() - self._events_at < FLOW_HOLD

    # -- jobs ---------------------------------------------------------------------------
    def _holds_sqlite_lock(self) -> bool:
        if not self.is_sqlite:
            return True
        with unit_of_work() as session:
            return jobqueue.acquire_lock(session, SQLITE_LOCK, self.worker_id, lease_seconds=max(self.lease_seconds, 10))

    def _renew_lease_while(self, job_id: int, done: threading.Event, deadline: float) -> None:
        """Keep the lease while the job runs, but never past its deadline (a monotonic time)."""
        while not done.wait(self.lease_seconds / 3):
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("job %s passed its %.0fs deadline: its lease is left to expire", job_id,
                            self.job_deadline_seconds)
                return
            try:
                with unit_of_work() as session:
                    jobqueue.extend_lease(session, job_id, self.worker_id,
                                          lease_seconds=max(1, min(self.lease_seconds, math.ceil(left))))
            except Exception:
                log.exception("lease renewal failed for job %s", job_id)

    def process_one(self) -> bool:
        """Claim and run one job; False when nothing is due."""
        with unit_of_work() as session:
            job = jobqueue.claim(session, self.worker_id,
                                 lease_seconds=max(1, min(self.lease_seconds, math.ceil(self.job_deadline_seconds))))
        if job is None:
            return False
        deadline = time.monotonic() + self.job_deadline_seconds
        self.current = f"{job.kind} #{job.id} {job.payload.get('agent', '')}".strip()
        self.beat(force=True)
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_lease_while, args=(job.id, done, deadline), daemon=True)
        renewer.start()
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise RuntimeError(f"no handler for job kind {job.kind!r}")
            with job_control(RunControl(deadline_s=model_deadline_s(self.job_deadline_seconds))):
                handler(job)
        except Exception as exc:
            done.set()
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            with unit_of_work() as session:
                status = jobqueue.fail(session, job.id, self.worker_id, error)
            log.warning("job %s failed (%s): %s", job.id, status, exc)
        else:
            done.set()
            with unit_of_work() as session:
                jobqueue.complete(session, job.id, self.worker_id)
            self.jobs_done += 1
        finally:
            renewer.join()
            self.current = None
        return True

    # -- heartbeat ----------------------------------------------------------------------
    def beat(self, *, status: str | None = None, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < self.heartbeat_every:
            return
        self._last_beat = time.monotonic()
        with unit_of_work() as session:
            row = session.get(WorkerHeartbeat, self.worker_id)
            if row is None:
                row = WorkerHeartbeat(worker_id=self.worker_id, hostname=socket.gethostname(), pid=os.getpid())
                session.add(row)
            # Summing today's decisions grows with the day's volume (56 ms at 20,000 on SQLite):
            # refresh the spend every SPEND_EVERY seconds, not on every beat, nor on the forced beat
            # each job starts with (it would sit between an event and its new score).
            if time.monotonic() - self._spend_at >= SPEND_EVERY:
                self._spend = total_spend_today(session)
                self._spend_at = time.monotonic()
            tokens, cost = self._spend
            row.last_seen_at = clock.now()
            row.status = status or ("busy" if self.current else "idle")
            row.current_job = self.current
            row.queue_depth = jobqueue.depth(session)
            row.jobs_done = self.jobs_done
            row.llm_tokens_today = tokens
            row.llm_cost_today_usd = cost

    # -- loops --------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def _stop(signum, _frame):
            log.info("signal %s: finishing the current job, then exiting", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run_once(self) -> int:
        """Run every planner now, then every job that is due; returns the number of jobs run."""
        if not self._holds_sqlite_lock():
            raise RuntimeError("another scheduler worker holds the SQLite store; only one may run on SQLite")
        self.timers.run_all()
        ran = 0
        while not self.stopping.is_set() and self.process_one():
            ran += 1
        self.beat(status="stopped", force=True)
        self._release()
        return ran

    def run_forever(self) -> None:
        log.info("worker %s started", self.worker_id)
        first = True
        while not self.stopping.is_set():
            if not self._holds_sqlite_lock():
                self.beat(status="standby")
                self.stopping.wait(self.poll_interval * 4)
                continue
            if first:
                self.timers.run_all()  # on start, do not wait an hour for the first pipeline scan
                first = False
            else:
                self.timers.run_pending()
            if self._flowing() and time.monotonic() - self._followed_at >= FLOW_POLL:
                self._follow_events()
            worked = self.process_one()
            self.beat()
            if not worked and self._idle():
                self._follow_events()  # work may have arrived: read the log now
                self.process_one()     # and claim before the timers' next turn
        self.beat(status="stopped", force=True)
        self._release()
        log.info("worker %s stopped after %d jobs", self.worker_id, self.jobs_done)

    def _idle(self) -> bool:
        """Wait for the poll interval; True when woken early by a sign of new work."""
        if self.wakeup is None:
            self.stopping.wait(min(self.poll_interval, FLOW_POLL) if self._flowing() else self.poll_interval)
            return False
        return self.wakeup.wait(self.poll_interval, self.stopping)

    def _release(self) -> None:
        if self.wakeup is not None:
            self.wakeup.close()
        if self.is_sqlite:
            with unit_of_work() as session:
                jobqueue.release_lock(session, SQLITE_LOCK, self.worker_id)


def main_worker(*, once: bool, worker_id: str | None, lease_seconds: int | None, poll_interval: float) -> int:
    migrate()
    worker = Worker(worker_id, lease_seconds=lease_seconds, poll_interval=poll_interval)
    worker.install_signal_handlers()
    if once:
        ran = worker.run_once()
        print(f"scheduler --once: {ran} job(s) run")
    else:
        worker.run_forever()
    return 0
