"""An idle worker wakes when work arrives (a queued job, a logged activity), and still works when a wake-up is lost."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from crm_core import clock, jobqueue
from crm_core.db import get_engine, unit_of_work
from crm_core.models import Activity, Contact, Job
from crm_core.wakeups import Wakeup
from orchestration.scheduler import planners
from orchestration.scheduler.worker import Worker

LONG = 60.0  # a wait that only a sign of work ends early; the tests never wait that long when all is well


def _waiting(wakeup: Wakeup, timeout: float) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("woke", wakeup.wait(timeout, threading.Event())))
    thread.start()
    return thread, result


def _keep_doing(action: Callable[[int], None], *waiters: threading.Thread, every: float = 0.1) -> None:
    """Repeat `action` until every waiter returns: the first ones may land before one read its baseline."""
    n = 0
    while any(w.is_alive() for w in waiters):
        action(n)
        n += 1
        time.sleep(every)


def _enqueue(n: int) -> None:
    with unit_of_work() as s:
        jobqueue.enqueue(s, "probe", dedupe_key=f"probe:{n}")


def _log_activity(_n: int) -> None:
    with unit_of_work() as s:
        s.add(Activity(type="page_view", occurred_at=clock.now(), payload={"url": "/docs"}))


def test_with_nothing_new_the_wait_runs_out(store):
    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        assert wakeup.wait(0.3, threading.Event()) is False
    finally:
        wakeup.close()


def test_a_queued_job_wakes_every_idle_worker(pg_store):
    # PostgreSQL: NOTIFY reaches every listening worker. (SQLite has one worker, which queues its own jobs.)
    first, second = Wakeup(get_engine(), step=0.02), Wakeup(get_engine(), step=0.02)
    try:
        (t1, r1), (t2, r2) = _waiting(first, LONG), _waiting(second, LONG)
        _keep_doing(_enqueue, t1, t2)
        assert r1["woke"] is True and r2["woke"] is True
    finally:
        first.close()
        second.close()


def test_a_logged_activity_wakes_an_idle_worker(store):
    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        thread, result = _waiting(wakeup, LONG)
        _keep_doing(_log_activity, thread)
        assert result["woke"] is True
    finally:
        wakeup.close()


def test_an_event_logged_after_the_last_read_of_the_log_but_before_the_wait_still_wakes(store):
    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        wakeup.mark()  # the worker reads the log...
        _log_activity(0)  # ...an event lands while it claims, beats its heart...
        assert wakeup.wait(LONG, threading.Event()) is True  # ...and its next wait does not sleep past it
    finally:
        wakeup.close()


def test_other_commits_do_not_wake_the_worker(store):
    # Its own heartbeat, claims and jobs commit all the time (on SQLite they move the file's change counter).
    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        wakeup.mark()
        with unit_of_work() as s:
            jobqueue.enqueue(s, "probe", dedupe_key="later", run_after=clock.now() + timedelta(hours=1))
            s.add(Contact(first_name="Bo", email="bo@x.example", email_normalized="bo@x.example"))
        assert wakeup.wait(0.5, threading.Event()) is False
    finally:
        wakeup.close()


class _Abort(Exception):
    pass


def test_an_enqueue_rolled_back_wakes_no_one(pg_store):
    def rolled_back(n: int) -> None:
        try:
            with unit_of_work() as s:
                jobqueue.enqueue(s, "probe", dedupe_key=f"gone:{n}")
                raise _Abort
        except _Abort:
            pass

    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        thread, result = _waiting(wakeup, 1.0)
        _keep_doing(rolled_back, thread)
        assert result["woke"] is False
    finally:
        wakeup.close()
    with unit_of_work(readonly=True) as s:
        assert s.scalars(select(Job)).first() is None


def test_a_broken_wake_up_connection_only_falls_back_to_the_timeout_then_reconnects(store):
    wakeup = Wakeup(get_engine(), step=0.02)
    try:
        assert wakeup.wait(0.05, threading.Event()) is False  # opens its connection
        wakeup._raw.driver_connection.close()  # the server went away under it
        assert wakeup.wait(0.3, threading.Event()) is False  # no exception: the worker's ticks carry on
        thread, result = _waiting(wakeup, LONG)
        _keep_doing(_log_activity, thread)
        assert result["woke"] is True
    finally:
        wakeup.close()


# -- in the worker ----------------------------------------------------------------------------------
def _contact() -> int:
    with unit_of_work() as s:
        c = Contact(first_name="Ana", email="ana@x.example", email_normalized="ana@x.example")
        s.add(c)
        s.flush()
        return c.id


def _run_until_done(worker: Worker, contact_id: int, *, timeout: float = LONG) -> list[dict]:
    """Run the worker in a thread, log one page view, and return the agent jobs it ran before `timeout`."""
    ran: list[dict] = []
    worker.handlers = {"agent": lambda job: ran.append(job.payload) or {}}
    with unit_of_work() as s:
        planners.follow_activity_log(s)  # the cursor starts at the end of the log, as on a running system
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        time.sleep(0.3)  # the worker is idle, waiting
        with unit_of_work() as s:
            s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=contact_id, payload={"url": "/docs"}))
        deadline = time.monotonic() + timeout
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stopping.set()
        thread.join(LONG)
    return ran


def test_an_idle_worker_with_no_log_timer_still_reads_the_event_it_was_woken_for(store):
    # Its poll interval is a minute and its activity-log timer is gone: only the wake-up can find the event.
    contact_id = _contact()
    worker = Worker("w-wake", poll_interval=LONG, heartbeat_every=LONG)
    worker.timers.clear()
    ran = _run_until_done(worker, contact_id)
    assert ran == [{"agent": "lead_scoring", "subject_ids": [contact_id]}]


def test_a_worker_that_never_hears_a_wake_up_still_finds_the_event_on_its_tick(store, monkeypatch):
    monkeypatch.setenv("CRM_WAKE_CHECK_SECONDS", "0")  # no wake-ups at all: the ticks alone
    contact_id = _contact()
    worker = Worker("w-tick", poll_interval=0.2, heartbeat_every=LONG)
    assert worker.wakeup is None
    worker.timers.clear()
    worker.timers.every(1).seconds.do(worker._follow_events)
    ran = _run_until_done(worker, contact_id)
    assert ran == [{"agent": "lead_scoring", "subject_ids": [contact_id]}]
