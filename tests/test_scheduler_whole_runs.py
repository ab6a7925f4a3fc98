"""Start-up and daily whole runs are queued once per store, however many workers start."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import Job
from orchestration.scheduler.handlers import HANDLERS
from orchestration.scheduler.planners import AGENT_JOB, claim_period
from orchestration.scheduler.worker import Worker

WHOLE_RUN_AGENTS = {"pipeline", "follow_up", "meeting", "enrichment", "lead_scoring"}


def _idle_worker(name: str) -> Worker:
    # Handlers that do nothing: the test is about what gets queued, not what a run does.
    return Worker(name, handlers={kind: (lambda job: {}) for kind in HANDLERS}, heartbeat_every=60)


def _whole_runs() -> Counter:
    with unit_of_work(readonly=True) as s:
        jobs = s.scalars(select(Job).where(Job.kind == AGENT_JOB)).all()
        return Counter(j.payload["agent"] for j in jobs if j.payload.get("subject_ids") is None)


def _daily(kind: str) -> int:
    with unit_of_work(readonly=True) as s:
        jobs = s.scalars(select(Job).where(Job.kind == kind)).all()
        # The learn job is also queued when outcomes moved (force False): only the daily one counts here.
        return sum(1 for j in jobs if (j.payload or {}).get("force", True))


def test_two_workers_starting_queue_each_whole_run_once(store):
    first, second = _idle_worker("w-a"), _idle_worker("w-b")
    first.timers.run_all()  # what run_forever does on start
    while first.process_one():  # the first worker takes its jobs: none is pending any more
        pass
    second.timers.run_all()
    runs = _whole_runs()
    assert set(runs) >= WHOLE_RUN_AGENTS and all(runs[a] == 1 for a in WHOLE_RUN_AGENTS)
    assert _daily("calibration") == 1 and _daily("learn") <= 1  # a pending learn job may absorb the daily one
    # A restart within the period queues nothing new either.
    _idle_worker("w-a2").timers.run_all()
    assert _whole_runs() == runs


def test_a_period_is_claimed_again_once_it_has_passed(store):
    day = timedelta(days=1)
    with unit_of_work() as s:
        assert claim_period(s, "whole_run:lead_scoring", day)
    with unit_of_work() as s:
        assert not claim_period(s, "whole_run:lead_scoring", day)
        assert claim_period(s, "whole_run:enrichment", day)  # another run has its own period
    with clock.frozen_at(clock.now() + timedelta(hours=23)):
        with unit_of_work() as s:
            assert claim_period(s, "whole_run:lead_scoring", day)  # 23 h is within the slack for timer jitter
    with clock.frozen_at(clock.now() + timedelta(hours=30)):
        with unit_of_work() as s:
            assert not claim_period(s, "whole_run:lead_scoring", day)  # 7 h after the last claim
