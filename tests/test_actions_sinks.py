"""The outbox through injected sinks, no sockets: what a unit of work attaches is where its messages go.

The real SMTP and webhook sinks are checked against servers on loopback in test_actions_email.py
and test_actions_notification.py; here the settings point SMTP at a port nobody listens on, so a
message that reached the configured sink instead of the attached one would fail.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import clock, oversight
from crm_core.actions.sink import RecordingSink, Sinks, SmtpSink, WebhookSink, attach_sinks, sinks_for
from crm_core.actions.sinks import dispatch_due
from crm_core.db import session_factory, unit_of_work
from crm_core.models import OutboxMessage
from crm_core.settings import get_settings
from fakes.crm_records import envelope, seed
from fakes.smtp_server import free_port


@pytest.fixture
def crm(sqlite_store, monkeypatch):
    # Outbox states, not storage: one back-end is enough.
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("CRM_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")
    with unit_of_work() as session:
        return seed(session)


def email_action(contact_id: int, **extra) -> tuple[str, dict]:
    return ("send_email", {"contact_id": contact_id, "subject": "Pricing for Acme", "body": "Hi Ann,\nhere is our pricing.", **extra})


def submit_with(sinks: Sinks, env) -> int:
    with unit_of_work() as session:
        attach_sinks(session, sinks)
        [did] = oversight.submit(session, env)
        return did


def outbox(did: int) -> OutboxMessage:
    with unit_of_work(readonly=True) as session:
        [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == did)).all()
        return msg


def test_an_email_goes_to_the_units_sink_and_only_once_the_unit_has_committed(crm):
    email, notification = RecordingSink(), RecordingSink()
    with unit_of_work() as session:
        attach_sinks(session, Sinks(email=email, notification=notification))
        [did] = oversight.submit(session, envelope("follow_up", [email_action(crm.ann)], subject=("contact", crm.ann), confidence=0.95))
        assert email.delivered == []  # still inside the transaction: nothing has left
    [sent] = email.delivered
    assert (sent.kind, sent.recipient, sent.subject, sent.body) == ("email", "ann@acme.example", "Pricing for Acme",
                                                                    "Hi Ann,\nhere is our pricing.")
    assert notification.delivered == []
    msg = outbox(did)
    assert (msg.id, msg.status, msg.sink, msg.error) == (sent.id, "sent", "recording", None)
    with unit_of_work(readonly=True) as session:
        [entry] = oversight.audit_entries(session, event="outbox.sent")
    assert entry.decision_id == did and entry.details == {"outbox_id": msg.id, "kind": "email", "sink": "recording",
                                                          "recipient": "ann@acme.example"}


def test_a_unit_that_rolls_back_gives_its_sink_nothing(crm):
    email = RecordingSink()
    with pytest.raises(RuntimeError), unit_of_work() as session:
        attach_sinks(session, Sinks(email=email))
        oversight.submit(session, envelope("follow_up", [email_action(crm.ann)], subject=("contact", crm.ann), confidence=0.95))
        raise RuntimeError("the caller failed after submit")
    assert email.delivered == []


def test_a_refusing_sink_leaves_the_message_failed_and_a_revert_withdraws_it(crm):
    did = submit_with(Sinks(email=RecordingSink(refuse="mailbox full")),
                      envelope("follow_up", [email_action(crm.ann)], subject=("contact", crm.ann), confidence=0.95))
    msg = outbox(did)
    assert (msg.status, msg.error, msg.sent_at) == ("failed", "mailbox full", None)
    with unit_of_work(readonly=True) as session:
        [entry] = oversight.audit_entries(session, event="outbox.failed")
    assert entry.details["error"] == "mailbox full" and entry.details["outbox_id"] == msg.id
    with unit_of_work() as session:
        assert oversight.revert(session, did, actor=MANAGER).status == "reverted"
    assert outbox(did).status == "cancelled"


def test_with_no_sink_attached_for_a_kind_the_outbox_holds_it_whatever_the_settings_say(crm):
    email = submit_with(Sinks(), envelope("follow_up", [email_action(crm.ann)], subject=("contact", crm.ann), confidence=0.95))
    note = submit_with(Sinks(), envelope("pipeline", [("post_notification", {"text": "Acme is at risk", "title": "Alert"})],
                                         subject=("deal", crm.deal), confidence=0.9))
    assert [(m.status, m.sink, m.recipient) for m in (outbox(email), outbox(note))] == [
        ("held", "outbox", "ann@acme.example"), ("held", "outbox", None)]


def test_a_notification_goes_to_the_notification_sink_with_its_title(crm):
    email, notification = RecordingSink(), RecordingSink(name="team-chat")
    did = submit_with(Sinks(email=email, notification=notification),
                      envelope("pipeline", [("post_notification", {"text": "Acme is at risk", "title": "Alert"})],
                               subject=("deal", crm.deal), confidence=0.9))
    [sent] = notification.delivered
    assert (sent.kind, sent.subject, sent.body, sent.recipient) == ("notification", "Alert", "Acme is at risk", "team-chat")
    assert email.delivered == []
    assert (outbox(did).status, outbox(did).sink) == ("sent", "team-chat")


def test_the_dispatcher_sends_a_due_email_once_through_the_sinks_it_is_given(crm):
    later = (clock.now() + timedelta(hours=2)).replace(microsecond=0)
    at_execution = RecordingSink()
    did = submit_with(Sinks(email=at_execution), envelope("follow_up", [email_action(crm.ann, send_after=later.isoformat())],
                                                          subject=("contact", crm.ann), confidence=0.95))
    assert outbox(did).status == "pending" and at_execution.delivered == []
    scheduler = RecordingSink()
    sessions = session_factory()
    assert dispatch_due(sessions, Sinks(email=scheduler)) == 0  # not yet due
    with clock.frozen_at(later):
        assert dispatch_due(sessions, Sinks(email=scheduler)) == 1
        assert dispatch_due(sessions, Sinks(email=scheduler)) == 0
    assert [m.id for m in scheduler.delivered] == [outbox(did).id] and at_execution.delivered == []
    # The row keeps the sink it was queued for; the scheduler's sink is the one that sent it.
    assert (outbox(did).status, outbox(did).sink) == ("sent", "recording")


def test_a_pending_email_fails_saying_so_when_the_dispatcher_has_no_sink_for_it(crm):
    later = (clock.now() + timedelta(hours=2)).replace(microsecond=0)
    did = submit_with(Sinks(email=RecordingSink()), envelope("follow_up", [email_action(crm.ann, send_after=later.isoformat())],
                                                             subject=("contact", crm.ann), confidence=0.95))
    with clock.frozen_at(later):
        assert dispatch_due(session_factory(), Sinks()) == 0
    assert (outbox(did).status, outbox(did).error) == ("failed", "no SMTP host configured (CRM_SMTP_HOST)")


def test_the_settings_give_smtp_and_webhook_sinks_only_where_configured(sqlite_store, monkeypatch):
    monkeypatch.delenv("CRM_SMTP_HOST", raising=False)
    monkeypatch.delenv("CRM_WEBHOOK_URL", raising=False)
    assert Sinks.from_settings(get_settings()) == Sinks()
    monkeypatch.setenv("CRM_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("CRM_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    settings = get_settings()
    sinks = Sinks.from_settings(settings)
    assert sinks == Sinks(email=SmtpSink(settings), notification=WebhookSink("http://127.0.0.1:9/hook"))
    assert (sinks.email.name, sinks.notification.name) == ("smtp", "webhook")
    # A unit of work builds them once: every execution in it uses the same sinks.
    with unit_of_work() as session:
        first = sinks_for(session, settings)
        assert first == sinks and sinks_for(session, get_settings()) is first
