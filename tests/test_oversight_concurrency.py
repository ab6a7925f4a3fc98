"""Two managers approving the same item at once: it executes once, the other is told why.

Threads on SQLite and PostgreSQL; separate processes on both (PostgreSQL is the server case).
The decision sends an email through a real local SMTP server, so "once" is counted where it
matters: messages that arrived.
"""
from __future__ import annotations

import multiprocessing
import threading

import pytest
from sqlalchemy import func, select

from auth_helpers import MANAGER
from crm_core import oversight
from crm_core.db import dispose_engines, unit_of_work
from crm_core.errors import InvalidTransition
from crm_core.models import ActionExecution, AuditEntry, Decision, Email
from fakes.crm_records import envelope, seed
from fakes.smtp_server import SmtpSink


@pytest.fixture
def smtp(monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CRM_SMTP_PORT", str(sink.port))
        yield sink


def queued_email(store) -> int:
    with unit_of_work() as session:
        crm = seed(session)
        [did] = oversight.submit(session, envelope(
            "follow_up", [("send_email", {"contact_id": crm.ann, "subject": "Next steps", "body": "Hello Ann"})],
            subject=("contact", crm.ann), confidence=0.5))
        assert session.get(Decision, did).status == "queued"
        return did


def approve_once(decision_id: int, user: str) -> str:
    try:
        with unit_of_work() as session:
            d = oversight.approve(session, decision_id, actor=MANAGER.model_copy(update={"name": user}))
            return f"ok:{d.status}"
    except InvalidTransition as exc:
        return f"refused:{exc}"


def assert_executed_once(decision_id: int, outcomes: list[str], smtp: SmtpSink) -> None:
    assert sorted(o.split(":")[0] for o in outcomes) == ["ok", "refused"], outcomes
    assert "ok:executed" in outcomes
    [refusal] = [o for o in outcomes if o.startswith("refused")]
    assert f"cannot approve decision {decision_id}: it is executed (decided by" in refusal
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ActionExecution)) == 1
        assert session.scalar(select(func.count()).select_from(Email).where(Email.direction == "outbound")) == 1
        approvals = session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.event == "decision.approved"))
        assert approvals == 1
    assert [r.rcpt_tos for r in smtp.received] == [["ann@acme.example"]]


def test_two_threads_approving_at_once_execute_once(store, smtp):
    did = queued_email(store)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(user: str) -> None:
        barrier.wait()
        outcomes.append(approve_once(did, user))

    threads = [threading.Thread(target=worker, args=(u,)) for u in ("morgan", "sam")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_executed_once(did, outcomes, smtp)


def _process_worker(decision_id: int, user: str, barrier, results) -> None:
    dispose_engines()  # never share a parent's pooled connection
    barrier.wait()
    results.put(approve_once(decision_id, user))


def test_two_processes_approving_at_once_execute_once(store, smtp):
    did = queued_email(store)
    dispose_engines()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(did, user, barrier, results)) for user in ("morgan", "sam")]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert_executed_once(did, outcomes, smtp)


def test_on_postgresql_a_second_approval_waits_on_the_row_lock_then_is_refused(pg_store, smtp):
    """Deterministic interleaving: B's claim is seen blocked on A's row lock before A commits."""
    import time

    from sqlalchemy import text

    from crm_core.db import session_factory

    did = queued_email(pg_store)
    outcomes: list[str] = []
    session_a = session_factory()()
    try:
        with session_a.begin():
            oversight.approve(session_a, did, actor=MANAGER)  # claimed and executed, not yet committed
            waiter = threading.Thread(target=lambda: outcomes.append(approve_once(did, "sam")))
            waiter.start()
            deadline = time.monotonic() + 30
            # A fresh short transaction per poll: pg_stat_activity is a snapshot per transaction.
            while True:
                with unit_of_work(readonly=True) as probe:
                    blocked = probe.scalar(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE decisions%'"))
                if blocked or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            assert blocked == 1, "the second approval never waited on the first one's row lock"
    finally:
        session_a.close()
    waiter.join(timeout=60)
    outcomes.append("ok:executed")
    assert_executed_once(did, outcomes, smtp)
