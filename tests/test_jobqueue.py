"""The job queue shared by scheduler workers: claims, leases, retries, crash recovery, SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core import clock, jobqueue
from crm_core.db import unit_of_work
from crm_core.models import AuditEntry, Job

PROBE = str(Path(__file__).with_name("scheduler_probe.py"))


def _enqueue_probes(n: int, **payload) -> list[int]:
    with unit_of_work() as s:
        return [jobqueue.enqueue(s, "probe", payload=payload, max_attempts=3) for _ in range(n)]


def _events(event: str) -> list[tuple[str, int]]:
    with unit_of_work(readonly=True) as s:
        return [(a, j) for a, j in s.execute(select(AuditEntry.actor, AuditEntry.subject_id).where(AuditEntry.event == event))]


def _worker(worker_id: str, mode: str, lease: int = 30) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, PROBE, worker_id, mode, str(lease)], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_pending_job_with_same_dedupe_key_absorbs_a_burst(store):
    with unit_of_work() as s:
        first = jobqueue.enqueue(s, "agent", dedupe_key="lead_scoring:contact:7")
        again = [jobqueue.enqueue(s, "agent", dedupe_key="lead_scoring:contact:7") for _ in range(5)]
    assert first is not None and again == [None] * 5
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(store):
    _enqueue_probes(1)
    with unit_of_work() as s:
        job = jobqueue.claim(s, "w1", lease_seconds=60)
    assert job is not None and job.attempts == 1
    with unit_of_work() as s:
        assert jobqueue.claim(s, "w2", lease_seconds=60) is None
    with clock.frozen_at(clock.now() + timedelta(seconds=61)):
        with unit_of_work() as s:
            taken = jobqueue.claim(s, "w2", lease_seconds=60)
    assert taken is not None and taken.id == job.id and taken.lease_owner == "w2" and taken.attempts == 2
    # The first worker's late completion is refused: the job belongs to w2 now.
    with unit_of_work() as s:
        assert jobqueue.complete(s, job.id, "w1") is False
        assert jobqueue.complete(s, job.id, "w2") is True


def test_failing_job_is_retried_with_backoff_then_given_up_with_its_error(store):
    (job_id,) = _enqueue_probes(1)
    statuses = []
    moment = clock.now()
    for attempt in range(1, 4):
        with clock.frozen_at(moment):
            with unit_of_work() as s:
                job = jobqueue.claim(s, "w1", lease_seconds=60)
                assert job is not None and job.attempts == attempt
            with unit_of_work() as s:
                statuses.append(jobqueue.fail(s, job_id, "w1", f"boom {attempt}"))
            with unit_of_work() as s:
                run_after = s.get(Job, job_id).run_after
        assert run_after >= moment + timedelta(seconds=jobqueue.backoff_seconds(attempt)) or statuses[-1] == "dead"
        moment = run_after + timedelta(seconds=1)
    assert statuses == ["pending", "pending", "dead"]
    with unit_of_work() as s:
        job = s.get(Job, job_id)
        assert job.last_error == "boom 3" and job.finished_at is not None


def test_two_worker_processes_never_run_the_same_job(store):
    ids = _enqueue_probes(40, sleep=0.01)
    workers = [_worker(f"w{i}", "drain") for i in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    done = _events("probe.done")
    assert sorted(j for _, j in done) == sorted(ids)  # each job exactly once
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) == 0


def test_job_of_a_worker_killed_mid_job_is_redone_by_another_and_done_once(store):
    (job_id,) = _enqueue_probes(1, sleep=30)
    victim = _worker("victim", "forever", lease=2)
    deadline = time.monotonic() + 90  # its imports alone took 20 s on a loaded 2-core machine
    while not _events("probe.started") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _events("probe.started"), "the victim never started the job"
    victim.kill()  # SIGKILL: no chance to clean up
    victim.wait(timeout=10)
    with unit_of_work() as s:
        s.get(Job, job_id).payload = {"sleep": 0}  # the redo need not take 30 s
    time.sleep(2.5)  # let the victim's lease expire
    rescuer = _worker("rescuer", "drain", lease=2)
    out, err = rescuer.communicate(timeout=60)
    assert rescuer.returncode == 0, err
    assert _events("probe.done") == [("rescuer", job_id)]
    with unit_of_work() as s:
        job = s.get(Job, job_id)
        assert job.status == "done" and job.attempts == 2


def test_sigterm_lets_the_current_job_finish_then_exits_cleanly(store):
    (job_id,) = _enqueue_probes(1, sleep=1.5)
    worker = _worker("polite", "forever")
    deadline = time.monotonic() + 30
    while not _events("probe.started") and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert _events("probe.done") == [("polite", job_id)]
    with unit_of_work() as s:
        assert s.get(Job, job_id).status == "done"


def test_only_one_worker_may_hold_a_sqlite_store(sqlite_store):
    with unit_of_work() as s:
        assert jobqueue.acquire_lock(s, "scheduler:sqlite", "a", lease_seconds=30)
    with unit_of_work() as s:
        assert not jobqueue.acquire_lock(s, "scheduler:sqlite", "b", lease_seconds=30)
    with clock.frozen_at(clock.now() + timedelta(seconds=31)):
        with unit_of_work() as s:
            assert jobqueue.acquire_lock(s, "scheduler:sqlite", "b", lease_seconds=30)
