"""The sidecar sends scheduled email when it falls due: a worker run, not a page click, sends it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_core import clock, oversight
from crm_core.db import unit_of_work
from crm_core.models import OutboxMessage
from fakes.crm_records import envelope, seed
from fakes.smtp_server import SmtpSink


@pytest.fixture
def smtp(monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CRM_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("CRM_MAIL_FROM", "sales@seller.example")
        yield sink


def test_a_scheduled_email_is_sent_by_the_scheduler_once_it_is_due(store, smtp):
    with unit_of_work() as session:
        crm = seed(session)
    send_after = clock.now() + timedelta(seconds=2)
    action = ("send_email", {"contact_id": crm.ann, "subject": "Checking in", "body": "Hi Ann", "send_after": send_after.isoformat()})
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("follow_up", [action], subject=("contact", crm.ann), confidence=0.95))
    assert smtp.received == []  # scheduled, not sent at execution

    time.sleep(2.5)
    env = os.environ | {"CRM_LLM_PROVIDER": "offline"}
    done = subprocess.run([sys.executable, "-m", "orchestration.scheduler", "--once"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr

    [received] = smtp.received
    assert received.rcpt_tos == ["ann@acme.example"] and received.message["Subject"] == "Checking in"
    with unit_of_work(readonly=True) as session:
        [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == did)).all()
        assert msg.status == "sent"
