"""`python -m orchestration run` and the scheduler when the model endpoint misbehaves.

Exit codes (0 all fine, 1 some failed with the count, 2 bad input), the summary printed on
SIGTERM, a run over 500 subjects against a dead endpoint that ends with every subject decided
offline or marked failed, and a scheduler job that never keeps its lease past its deadline.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_core import clock, jobqueue
from crm_core.db import unit_of_work
from crm_core.models import Account, Contact, Decision, Job, User
from orchestration.cli import main as agents_main
from orchestration.runner import RunControl, RunInterrupted, job_control, run_agent
from orchestration.scheduler.worker import Worker
from tests.fakes.anthropic_server import FakeAnthropicServer, error, fake_anthropic, hang  # noqa: F401  (fixture)


def seed_contacts(n: int) -> list[int]:
    with unit_of_work() as s:
        rep = User(name="Rita Rep", role="rep")
        acc = Account(name="Acme Analytics", name_key="acme analytics", domain="acme.example", industry="Software")
        s.add_all([rep, acc])
        s.flush()
        contacts = [Contact(first_name="Lead", last_name=f"Number{i}", email=f"lead{i}@acme.example",
                            email_normalized=f"lead{i}@acme.example", title="VP Operations", account_id=acc.id,
                            owner_id=rep.id, source="webinar", lifecycle_stage="mql") for i in range(n)]
        s.add_all(contacts)
        s.flush()
        return [c.id for c in contacts]


@pytest.fixture
def remote(fake_anthropic: FakeAnthropicServer, monkeypatch) -> FakeAnthropicServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    monkeypatch.setenv("CRM_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("CRM_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("CRM_LLM_BREAKER_FAILURES", "2")
    monkeypatch.delenv("CRM_OLLAMA_HOST", raising=False)
    return fake_anthropic


# -- exit codes ----------------------------------------------------------------------------------
def test_a_clean_run_exits_0(store, capsys):
    ids = seed_contacts(2)
    assert agents_main(["run", "lead_scoring", "--provider", "offline", *[f"--id={i}" for i in ids]]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 subject(s) decided (2 by offline)" in out and "0 failed" in out


def test_some_failed_exits_1_and_prints_the_count(store, remote, capsys):
    ids = seed_contacts(4)
    remote.always(error(500))
    assert agents_main(["run", "lead_scoring", "--provider", "anthropic", *[f"--id={i}" for i in ids]]) == 1
    out = capsys.readouterr().out
    # Two attempts open the breaker: two subjects failed, the other two were decided offline.
    assert "2 of 4 subject(s) decided (2 by offline)" in out and "2 failed" in out
    assert out.count("  failed lead_scoring:contact:") == 2 and "HTTP 500" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "lead_scoring", "--id", "999999"], "no lead_scoring subject matches --id 999999"),
    (["run", "lead_scoring", "--deadline", "-5"], "--deadline -5 must be a positive number of seconds"),
])
def test_bad_input_exits_2_with_a_clear_error(store, capsys, argv, message):
    assert agents_main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_agent_or_option_exits_2(store, capsys):
    for argv in (["run", "no_such_agent"], ["run", "lead_scoring", "--provider", "gpt"], ["eval", "--nope"]):
        with pytest.raises(SystemExit) as exc:
            agents_main(argv)
        assert exc.value.code == 2


# -- the dead endpoint -----------------------------------------------------------------------------
# One back-end is enough here: the test is about the run's control flow, not the store.
def test_500_subjects_against_a_dead_endpoint_are_all_decided_offline_or_marked_failed(sqlite_store, remote):
    """The quality bar's outcome; the wall time is measured by bench/bench_dead_endpoint.py."""
    ids = seed_contacts(500)
    remote.always(hang(30))
    result = run_agent("lead_scoring", subject_ids=ids, provider="anthropic")

    assert len(result.outcomes) == 500
    failed = [o for o in result.outcomes if o.failed]
    offline = [o for o in result.outcomes if not o.failed and o.provider == "offline"]
    assert len(failed) + len(offline) == 500
    assert len(remote.message_requests) == len(failed) == 2  # the breaker's threshold; its cool-down outlasts the run
    with unit_of_work(readonly=True) as s:
        decisions = s.scalars(select(Decision).where(Decision.agent == "lead_scoring")).all()
    assert {d.status for d in decisions if d.provider == "offline"} <= {"auto_approved", "executed", "queued"}
    assert sum(1 for d in decisions if d.status == "failed") == 2


def test_past_the_run_deadline_the_rest_is_decided_offline(store, remote):
    ids = seed_contacts(5)
    remote.always(error(500))
    control = RunControl(deadline_s=0.001)
    time.sleep(0.01)
    result = run_agent("lead_scoring", subject_ids=ids, provider="anthropic", control=control)
    assert remote.message_requests == []
    assert all(o.provider == "offline" and not o.failed for o in result.outcomes)


def test_a_stop_request_leaves_the_remaining_subjects_not_reached(store):
    ids = seed_contacts(3)
    control = RunControl()
    seen = []

    def stop_after_first(envelope):
        seen.append(envelope)
        control.request_stop("SIGTERM received")

    result = run_agent("lead_scoring", subject_ids=ids, provider="offline", control=control, on_envelope=stop_after_first)
    assert len(seen) == 1 and result.not_reached == 2 and result.stopped == "SIGTERM received"
    assert "stopped early (SIGTERM received)" in result.summary() and "2 not reached" in result.summary()


# -- SIGTERM on the real CLI -----------------------------------------------------------------------
def test_sigterm_during_a_hanging_call_prints_the_summary_and_exits_1(sqlite_store, remote):
    seed_contacts(3)
    remote.always(hang(60))
    env = os.environ | {"CRM_LLM_TIMEOUT_S": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestration", "run", "lead_scoring", "--provider", "anthropic"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        waited = time.monotonic()
        while not remote.message_requests and time.monotonic() - waited < 60:
            time.sleep(0.05)
        assert remote.message_requests, "the run never reached the model"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=45)  # the call alone would have waited 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "lead_scoring: stopped early (SIGTERM received)" in out
    assert "interrupted (SIGTERM received) while waiting for the model" in out
    assert "2 not reached" in out and "1 failed" in out


# -- the scheduler's lease ---------------------------------------------------------------------------
def test_a_job_past_its_deadline_keeps_no_lease_beyond_it(store):
    started, release = threading.Event(), threading.Event()

    def slow(job: Job) -> dict:
        started.set()
        release.wait(6)  # a job stuck well past its 1.5 s deadline
        return {}

    with unit_of_work() as s:
        job_id = jobqueue.enqueue(s, "agent", payload={"agent": "lead_scoring"})
    worker = Worker("w-deadline", lease_seconds=3, job_deadline_seconds=1.5, handlers={"agent": slow}, heartbeat_every=60)
    began = clock.now()
    runner = threading.Thread(target=worker.process_one, daemon=True)
    runner.start()
    assert started.wait(10)
    expiries = []
    for _ in range(14):  # 3.5 s: renewals every second (lease / 3) would have pushed it to 4 s and beyond
        with unit_of_work(readonly=True) as s:
            expiries.append(s.get(Job, job_id).lease_expires_at)
        time.sleep(0.25)
    release.set()
    runner.join(10)
    assert all(e is not None for e in expiries)
    assert max(expiries) <= began + timedelta(seconds=1.5 + 1.0)  # the deadline, plus rounding up to whole seconds


def test_an_agent_job_runs_under_the_worker_deadline(store, remote):
    """The job's RunControl reaches run_agent: past the model deadline, no call is made."""
    ids = seed_contacts(2)
    remote.always(error(500))
    with job_control(RunControl(deadline_s=0.001)):
        time.sleep(0.01)
        result = run_agent("lead_scoring", subject_ids=ids, provider="anthropic")
    assert remote.message_requests == [] and {o.provider for o in result.outcomes} == {"offline"}


def test_a_second_stop_request_outside_a_model_call_stops_at_once(store):
    ids = seed_contacts(2)
    control = RunControl()
    control.request_stop("SIGINT received")  # the first: only a flag
    with pytest.raises(RunInterrupted):
        control.request_stop("SIGINT received")
    result = run_agent("lead_scoring", subject_ids=ids, provider="offline", control=control)
    assert result.not_reached == 2 and result.decision_ids == []
