"""The planners that follow append-only logs: nothing written is ever skipped."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from crm_core import clock
from crm_core.db import session_factory, unit_of_work
from crm_core.models import Activity, Contact, Cursor, Job
from orchestration.scheduler import planners


def _contacts(n: int) -> list[int]:
    with unit_of_work() as s:
        rows = [Contact(first_name=f"C{i}", email=f"c{i}@x.example", email_normalized=f"c{i}@x.example") for i in range(n)]
        s.add_all(rows)
        s.flush()
        return [c.id for c in rows]


def _plan() -> None:
    with unit_of_work() as s:
        planners.follow_activity_log(s)


def _jobs_for(contact_id: int) -> int:
    with unit_of_work(readonly=True) as s:
        return sum(1 for j in s.scalars(select(Job)) if (j.payload or {}).get("subject_ids") == [contact_id])


def test_each_new_activity_gets_its_contact_rescored_once_per_burst(store):
    a, b = _contacts(2)
    _plan()  # first read: the cursor starts at the end of history
    with unit_of_work() as s:
        s.add_all([Activity(type="page_view", occurred_at=clock.now(), contact_id=a) for _ in range(3)])
        s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=b))
    _plan()
    assert _jobs_for(a) == 1 and _jobs_for(b) == 1


def test_an_activity_committed_after_a_later_one_was_read_is_not_skipped(pg_store):
    first, second = _contacts(2)
    _plan()
    slow = session_factory()()
    try:
        with slow.begin():
            # Takes its id now, commits only after a later row was read and the cursor moved past it.
            slow.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=first))
            slow.flush()
            with unit_of_work() as fast:
                fast.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=second))
            _plan()
            assert _jobs_for(second) == 1 and _jobs_for(first) == 0
    finally:
        slow.close()
    _plan()
    assert _jobs_for(first) == 1  # found by the gap it left
    _plan()
    assert _jobs_for(first) == 1  # and only once
    with unit_of_work(readonly=True) as s:
        assert not s.scalars(select(Cursor).where(Cursor.name.like("%:gap:%"))).all()


def test_a_gap_that_never_fills_is_given_up_after_the_grace_period(pg_store):
    [c] = _contacts(1)
    _plan()
    rolled_back = session_factory()()
    with rolled_back.begin():
        rolled_back.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=c))
        rolled_back.flush()
        with unit_of_work() as s:
            s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=c))
        rolled_back.rollback()
    rolled_back.close()
    _plan()
    with unit_of_work(readonly=True) as s:
        assert len(s.scalars(select(Cursor).where(Cursor.name.like("%:gap:%"))).all()) == 1
    with clock.frozen_at(clock.now() + timedelta(seconds=planners.GAP_GRACE_SECONDS + 1)):
        _plan()
    with unit_of_work(readonly=True) as s:
        assert not s.scalars(select(Cursor).where(Cursor.name.like("%:gap:%"))).all()


def test_on_first_start_history_is_left_to_the_whole_run_and_only_new_events_are_followed(store):
    a, b = _contacts(2)
    with unit_of_work() as s:
        s.add_all([Activity(type="page_view", occurred_at=clock.now(), contact_id=c) for c in (a, b) for _ in range(3)])
    _plan()
    with unit_of_work(readonly=True) as s:
        assert s.scalars(select(Job)).all() == []
        assert s.get(Cursor, planners.ACTIVITY_CURSOR).position == s.scalar(select(func.max(Activity.id)))
    with unit_of_work() as s:
        s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=b))
    _plan()
    assert _jobs_for(a) == 0 and _jobs_for(b) == 1
