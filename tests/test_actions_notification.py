"""post_notification: a Slack-compatible webhook on 127.0.0.1 receives it; with no webhook the outbox holds it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import oversight
from crm_core.db import unit_of_work
from crm_core.models import Decision, OutboxMessage
from fakes.crm_records import envelope, seed
from fakes.webhook_server import WebhookSink


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def notify(crm, text="Acme deal is at risk: no reply in 21 days", title="Pipeline alert", confidence=0.9) -> Decision:
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("pipeline", [("post_notification", {"text": text, "title": title})],
                                                   subject=("deal", crm.deal), confidence=confidence))
    with unit_of_work(readonly=True) as session:
        return session.get(Decision, did)


def message(did) -> OutboxMessage:
    with unit_of_work(readonly=True) as session:
        [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == did)).all()
        return msg


def test_a_notification_reaches_the_webhook_as_slack_json(crm, monkeypatch):
    with WebhookSink() as hook:
        monkeypatch.setenv("CRM_WEBHOOK_URL", hook.url)
        d = notify(crm)
        assert d.status == "executed"
        [received] = hook.received
    assert received["path"] == "/services/T000/B000/XXXX" and received["content_type"] == "application/json"
    assert received["json"] == {"text": "*Pipeline alert*\nAcme deal is at risk: no reply in 21 days"}
    msg = message(d.id)
    assert (msg.kind, msg.status, msg.sink) == ("notification", "sent", "webhook")


def test_with_no_webhook_the_outbox_holds_the_notification(crm):
    d = notify(crm)
    msg = message(d.id)
    assert (msg.status, msg.sink, msg.body) == ("held", "outbox", "Acme deal is at risk: no reply in 21 days")
    with unit_of_work(readonly=True) as session:
        [view] = oversight.outbox_messages(session, kind="notification")
        assert view.status == "held"


def test_a_failing_webhook_marks_the_message_failed_with_the_http_status(crm, monkeypatch):
    with WebhookSink(status=500) as hook:
        monkeypatch.setenv("CRM_WEBHOOK_URL", hook.url)
        d = notify(crm)
        assert len(hook.received) == 1
    msg = message(d.id)
    assert msg.status == "failed" and msg.error == "webhook answered HTTP 500: Internal Server Error"


def test_reverting_a_posted_notification_records_that_it_cannot_be_withdrawn(crm, monkeypatch):
    with WebhookSink() as hook:
        monkeypatch.setenv("CRM_WEBHOOK_URL", hook.url)
        d = notify(crm)
        with unit_of_work() as session:
            assert oversight.revert(session, d.id, actor=MANAGER).status == "reverted"
        assert len(hook.received) == 1
    with unit_of_work(readonly=True) as session:
        [entry] = oversight.audit_entries(session, decision_id=d.id, event="decision.reverted")
    assert entry.details["nothing_undone"] == [
        f"action 0 (post_notification): notification (outbox {message(d.id).id}) was sent; "
        "a posted notification cannot be withdrawn, so nothing was undone"]


def test_a_queued_notification_is_posted_only_once_approved(crm, monkeypatch):
    with WebhookSink() as hook:
        monkeypatch.setenv("CRM_WEBHOOK_URL", hook.url)
        d = notify(crm, confidence=0.2)
        assert d.status == "queued" and hook.received == []
        with unit_of_work() as session:
            oversight.approve(session, d.id, actor=MANAGER)
        assert len(hook.received) == 1
