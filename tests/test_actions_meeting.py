"""schedule_meeting (with an RFC 5545 invite), save_meeting_brief and create_action_items."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import clock, oversight
from crm_core.actions import ics
from crm_core.db import unit_of_work
from crm_core.models import Decision, Meeting, OutboxMessage, Task
from fakes.crm_records import envelope, row_dicts, seed
from fakes.smtp_server import SmtpSink


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


@pytest.fixture
def smtp(monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CRM_SMTP_PORT", str(sink.port))
        yield sink


def run(crm, actions, subject, confidence=0.99) -> Decision:
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("meeting", actions, subject=subject, confidence=confidence))
    with unit_of_work(readonly=True) as session:
        return session.get(Decision, did)


def meeting_action(crm, starts_at, **extra):
    return ("schedule_meeting", {"contact_id": crm.ann, "title": "Acme: pricing, next steps", "starts_at": starts_at.isoformat(),
                                 "duration_minutes": 45, "agenda": "1. Pricing; 2. Security review, SSO", **extra})


def test_an_invite_reaches_the_contact_with_a_valid_ics(crm, smtp):
    starts = (clock.now() + timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
    d = run(crm, [meeting_action(crm, starts, location="Video call")], ("deal", crm.deal))
    assert d.status == "executed"
    [received] = smtp.received
    assert received.rcpt_tos == ["ann@acme.example"]
    [attachment] = list(received.message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar" and attachment.get_param("method") == "REQUEST"
    assert attachment.get_filename() == "invite.ics"
    text = attachment.get_content()
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    props = ics.unfold(text)
    with unit_of_work(readonly=True) as session:
        meeting = session.scalars(select(Meeting).where(Meeting.title == "Acme: pricing, next steps")).one()
    assert props["METHOD"] == ["REQUEST"] and props["UID"] == [meeting.uid]
    assert props["DTSTART"] == [starts.strftime("%Y%m%dT%H%M%SZ")]
    assert props["DTEND"] == [(starts + timedelta(minutes=45)).strftime("%Y%m%dT%H%M%SZ")]
    assert props["SUMMARY"] == ["Acme: pricing\\, next steps"]
    assert props["DESCRIPTION"] == ["1. Pricing\\; 2. Security review\\, SSO"]
    assert props["ORGANIZER"] == ["mailto:alice@seller.example"]
    assert props["ATTENDEE"] == ["mailto:ann@acme.example", "mailto:alice@seller.example"]
    assert (meeting.contact_id, meeting.deal_id, meeting.status, meeting.ends_at - meeting.starts_at) == (
        crm.ann, crm.deal, "scheduled", timedelta(minutes=45))


def test_reverting_a_sent_invite_cancels_the_meeting_and_sends_a_cancel(crm, smtp):
    starts = (clock.now() + timedelta(days=3)).replace(microsecond=0)
    d = run(crm, [meeting_action(crm, starts)], ("contact", crm.ann))
    with unit_of_work() as session:
        assert oversight.revert(session, d.id, actor=MANAGER).status == "reverted"
    invite, cancel = smtp.received
    [cancel_ics] = list(cancel.message.iter_attachments())
    props = ics.unfold(cancel_ics.get_content())
    uid = ics.unfold(list(invite.message.iter_attachments())[0].get_content())["UID"]
    assert props["METHOD"] == ["CANCEL"] and props["UID"] == uid and props["STATUS"] == ["CANCELLED"] and props["SEQUENCE"] == ["1"]
    assert cancel.rcpt_tos == ["ann@acme.example"]
    with unit_of_work(readonly=True) as session:
        assert session.scalars(select(Meeting).where(Meeting.uid == uid[0])).one().status == "cancelled"
        [note] = [e.details["note"] for e in oversight.audit_entries(session, decision_id=d.id, event="action.reverted")]
    assert "the invite had already been sent, so cancellation queued to send" in note


def test_a_held_invite_is_withdrawn_and_the_meeting_removed_exactly(crm):
    starts = (clock.now() + timedelta(days=3)).replace(microsecond=0)
    with unit_of_work(readonly=True) as session:
        before = row_dicts(session)
    d = run(crm, [meeting_action(crm, starts)], ("contact", crm.ann))
    with unit_of_work(readonly=True) as session:
        [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == d.id)).all()
        assert msg.status == "held" and msg.attachments[0]["filename"] == "invite.ics"
    with unit_of_work() as session:
        oversight.revert(session, d.id, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        assert row_dicts(session) == before
        assert session.get(OutboxMessage, msg.id).status == "cancelled"


def test_a_meeting_in_the_past_or_with_a_stranger_is_not_scheduled(crm):
    past = clock.now() - timedelta(hours=1)
    d = run(crm, [meeting_action(crm, past)], ("contact", crm.ann))
    assert d.status == "queued" and "is in the past" in d.policy_reason
    d = run(crm, [("schedule_meeting", {"contact_id": crm.eve, "title": "x", "starts_at": (clock.now() + timedelta(days=1)).isoformat()})],
            ("contact", crm.ann))
    assert d.status == "queued" and f"contact {crm.eve} is not the contact of this contact" in d.policy_reason


def test_ics_lines_are_folded_at_75_octets_without_splitting_characters():
    long_summary = "Réunion " * 30
    text = ics.calendar(method="REQUEST", uid="u@crm", sequence=0, stamp=clock.now(), starts_at=clock.now(),
                        ends_at=clock.now(), summary=long_summary, description="a;b,c\nd\\e", organizer="o@x", attendees=["a@x"])
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    props = ics.unfold(text)
    assert props["SUMMARY"] == [long_summary]
    assert props["DESCRIPTION"] == ["a\\;b\\,c\\nd\\\\e"]


def test_a_brief_is_saved_and_its_revert_restores_the_previous_one(crm):
    d = run(crm, [("save_meeting_brief", {"meeting_id": crm.meeting, "brief": "Ann wants SSO."})], ("meeting", crm.meeting), 0.7)
    assert d.status == "executed"
    with unit_of_work() as session:
        meeting = session.get(Meeting, crm.meeting)
        assert meeting.brief == "Ann wants SSO." and meeting.brief_ready_at is not None
        oversight.revert(session, d.id, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        meeting = session.get(Meeting, crm.meeting)
        assert (meeting.brief, meeting.brief_ready_at) == (None, None)


def test_action_items_become_tasks_linked_to_the_meeting(crm):
    items = [{"title": "Send SSO docs"}, {"title": "Security questionnaire", "owner_id": crm.manager}]
    d = run(crm, [("create_action_items", {"meeting_id": crm.meeting, "items": items})], ("meeting", crm.meeting), 0.85)
    assert d.status == "executed"
    with unit_of_work(readonly=True) as session:
        tasks = session.scalars(select(Task).order_by(Task.id)).all()
        assert [(t.title, t.kind, t.meeting_id, t.contact_id, t.deal_id, t.owner_id, t.created_by) for t in tasks] == [
            ("Send SSO docs", "action_item", crm.meeting, crm.ann, crm.deal, crm.rep, "agent:meeting"),
            ("Security questionnaire", "action_item", crm.meeting, crm.ann, crm.deal, crm.manager, "agent:meeting"),
        ]
        assert session.get(Meeting, crm.meeting).action_items_extracted_at is not None


def test_a_task_someone_worked_on_is_not_deleted_by_revert(crm):
    d = run(crm, [("create_task", {"title": "Call Ann", "contact_id": crm.ann})], ("contact", crm.ann), 0.9)
    with unit_of_work() as session:
        session.scalars(select(Task)).one().status = "done"
    with unit_of_work() as session:
        d = oversight.revert(session, d.id, actor=MANAGER)
    assert d.status == "executed" and "was changed after it was created (now done)" in d.error
