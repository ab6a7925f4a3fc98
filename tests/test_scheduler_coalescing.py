"""Coalescing per subject: a quiet contact's first event is decided at once; a burst folds into one follow-up."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from crm_core import clock, jobqueue
from crm_core.db import unit_of_work
from crm_core.models import Activity, Contact, Job
from orchestration.scheduler import planners

T0 = datetime(2026, 6, 1, 9, 0)


def _contacts(n: int) -> list[int]:
    with unit_of_work() as s:
        rows = [Contact(first_name=f"C{i}", email=f"c{i}@x.example", email_normalized=f"c{i}@x.example") for i in range(n)]
        s.add_all(rows)
        s.flush()
        return [c.id for c in rows]


def _event(contact_id: int) -> None:
    with unit_of_work() as s:
        s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=contact_id))


def _plan() -> None:
    with unit_of_work() as s:
        planners.follow_activity_log(s)


def _jobs(contact_id: int) -> list[Job]:
    with unit_of_work(readonly=True) as s:
        jobs = s.scalars(select(Job).where(Job.dedupe_key == f"lead_scoring:contact:{contact_id}").order_by(Job.id)).all()
        s.expunge_all()
        return list(jobs)


def _run_due(worker: str = "w") -> int:
    """What a worker does: claim each due job and finish it at once."""
    ran = 0
    while True:
        with unit_of_work() as s:
            job = jobqueue.claim(s, worker, lease_seconds=60)
        if job is None:
            return ran
        with unit_of_work() as s:
            jobqueue.complete(s, job.id, worker)
        ran += 1


HOLD = 5 * planners.MAX_FOLD_WINDOWS  # seconds, with CRM_COALESCE_SECONDS=5


def _one_contact(monkeypatch, *, decided_at_t0: bool) -> int:
    """A contact with a 5-second window; with `decided_at_t0`, its first event was decided at T0."""
    monkeypatch.setenv("CRM_COALESCE_SECONDS", "5")
    [a] = _contacts(1)
    with clock.frozen_at(T0):
        _plan()  # the cursor starts at the end of history
        if decided_at_t0:
            _event(a)
            _plan()
            _run_due()
    return a


def test_the_first_event_runs_at_once_and_a_burst_after_it_folds_into_one_follow_up(store, monkeypatch):
    a = _one_contact(monkeypatch, decided_at_t0=False)
    with clock.frozen_at(T0):
        _event(a)
        _plan()
    [first] = _jobs(a)
    assert first.run_after == T0  # at once: no debounce delay on a quiet contact
    with clock.frozen_at(T0):
        with unit_of_work() as s:
            assert jobqueue.claim(s, "w", lease_seconds=60).id == first.id
    for second in (1, 2, 3):  # three more events while it runs and just after
        with clock.frozen_at(T0 + timedelta(seconds=second)):
            _event(a)
            _plan()
            if second == 2:
                with unit_of_work() as s:
                    jobqueue.complete(s, first.id, "w")
    jobs = _jobs(a)
    assert len(jobs) == 2  # one follow-up for the three
    follow_up = jobs[1]
    assert follow_up.run_after == T0 + timedelta(seconds=HOLD)  # a busy contact: one decision per hold
    with clock.frozen_at(T0 + timedelta(seconds=HOLD - 1)):
        assert _run_due() == 0
    with clock.frozen_at(T0 + timedelta(seconds=HOLD)):
        assert _run_due() == 1
    # Not decided for longer than the hold: the next event is decided at once again.
    with clock.frozen_at(T0 + timedelta(seconds=2 * HOLD + 1)):
        _event(a)
        _plan()
    assert _jobs(a)[-1].run_after == T0 + timedelta(seconds=2 * HOLD + 1)


def test_a_follow_up_waits_for_a_quiet_window_after_the_last_event(store, monkeypatch):
    a = _one_contact(monkeypatch, decided_at_t0=True)
    # Events keep coming near the end of the hold: the follow-up waits for five quiet seconds,
    # but never more than MAX_FOLD_WINDOWS windows after it was queued.
    for second in (HOLD - 4, HOLD - 1, HOLD + 2):
        with clock.frozen_at(T0 + timedelta(seconds=second)):
            _event(a)
            _plan()
    follow_up = _jobs(a)[-1]
    assert follow_up.run_after == T0 + timedelta(seconds=HOLD + 2 + 5)
    assert follow_up.run_after <= follow_up.created_at + timedelta(seconds=HOLD)


def test_a_lead_browsing_a_page_every_ten_seconds_is_decided_at_once_then_at_most_once_per_hold(store, monkeypatch):
    a = _one_contact(monkeypatch, decided_at_t0=False)
    runs: list[float] = []
    for tick in range(0, 121):  # a page every ten seconds for a minute, then quiet
        with clock.frozen_at(T0 + timedelta(seconds=tick)):
            if tick % 10 == 0 and tick <= 60:
                _event(a)
            _plan()
            if _run_due():
                runs.append(tick)
    assert runs[0] == 0  # the first page: at once
    assert all(later - earlier >= HOLD for earlier, later in zip(runs, runs[1:], strict=False))
    assert runs[-1] <= 60 + HOLD  # the last page is decided at most a hold after it
    assert len(runs) <= 3  # seven pages; a 5 s window alone folds no ten-second gap: seven decisions


def test_a_contact_that_never_goes_quiet_is_still_decided(store, monkeypatch):
    a = _one_contact(monkeypatch, decided_at_t0=True)
    for second in range(1, 60):  # an event every second for a minute
        with clock.frozen_at(T0 + timedelta(seconds=second)):
            _event(a)
            _plan()
            _run_due()
    runs = [j for j in _jobs(a) if j.status == "done"]
    assert 2 <= len(runs) <= 60 / (5 * planners.MAX_FOLD_WINDOWS) + 2


def test_trickled_events_fold_into_far_fewer_decisions(store, monkeypatch):
    """20 events a second, visitors browsing a few pages each: the worker keeps up, yet most events fold."""
    monkeypatch.setenv("CRM_COALESCE_SECONDS", "5")
    contacts = _contacts(20)
    rnd = random.Random(7)
    events = []
    for contact_id in contacts:  # each visitor: 5 page views 0.5-3 s apart, visits staggered over 5 s
        at = rnd.uniform(0, 5)
        for _ in range(5):
            events.append((at, contact_id))
            at += rnd.uniform(0.5, 3)
    events.sort()
    with clock.frozen_at(T0):
        _plan()
    tick, done = 0.0, 0
    while tick < 40:
        with clock.frozen_at(T0 + timedelta(seconds=tick)):
            while events and events[0][0] <= tick:
                _event(events.pop(0)[1])
            _plan()
            done += _run_due()
        tick += 0.25
    assert not events
    # At most one decision at once and one follow-up per visit (the old planner made one per event
    # whenever the worker kept up): 100 events, at most 40 decisions.
    assert done <= 40
    assert all(1 <= len(_jobs(c)) <= 2 for c in contacts)
