"""The approval queue: approve, edit-then-approve, reject, bulk, expiry, failure, revert, and the views."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from auth_helpers import MANAGER
from crm_core import clock, oversight
from crm_core.db import unit_of_work
from crm_core.auth import Actor
from crm_core.errors import InvalidTransition, NotFound, PermissionDenied, UserError
from crm_core.models import ActionExecution, Contact, Decision, OutboxMessage, ScoreHistory, Task
from fakes.crm_records import envelope, row_dicts, seed


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def queued(crm, actions, *, agent="lead_scoring", subject=None, confidence=0.3, **kw) -> int:
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope(agent, actions, subject=subject or ("contact", crm.ann), confidence=confidence, **kw))
        assert session.get(Decision, did).status == "queued"
        return did


def score(contact_id, value=82, tier="hot"):
    return ("update_lead_score", {"contact_id": contact_id, "score": value, "tier": tier, "next_action": "call"})


def get(decision_id) -> Decision:
    with unit_of_work(readonly=True) as session:
        return session.get(Decision, decision_id)


def events(decision_id) -> list[str]:
    with unit_of_work(readonly=True) as session:
        return [e.event for e in reversed(oversight.audit_entries(session, decision_id=decision_id))]


def test_approving_executes_and_records_who_when_and_why(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work() as session:
        d = oversight.approve(session, did, actor=MANAGER, note="matches what I heard on the call")
    assert d.status == "executed" and d.decided_by == "Morgan Manager" and d.decision_note == "matches what I heard on the call"
    assert d.decided_at is not None and d.executed_at is not None
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).score == 82
        [approved] = oversight.audit_entries(session, decision_id=did, event="decision.approved")
        assert approved.actor == "Morgan Manager (cli)" and approved.details["note"] == "matches what I heard on the call"
    assert events(did) == ["decision.created", "decision.queued", "decision.approved", "action.executed", "decision.executed"]


def test_second_approval_does_not_execute_again(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
    with unit_of_work() as session:
        with pytest.raises(InvalidTransition, match=rf"cannot approve decision {did}: it is executed \(decided by Morgan Manager at .*\); "
                                                    "only a queued decision can be approved"):
            oversight.approve(session, did, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ScoreHistory)) == 1
        assert session.scalar(select(func.count()).select_from(ActionExecution)) == 1


def test_rejecting_runs_nothing_and_keeps_the_reason(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work() as session:
        d = oversight.reject(session, did, actor=MANAGER, note="she left the company")
    assert d.status == "rejected" and d.decision_note == "she left the company"
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).score == 40
    assert events(did)[-1] == "decision.rejected"
    with unit_of_work() as session, pytest.raises(InvalidTransition, match="it is rejected"):
        oversight.approve(session, did, actor=MANAGER)


def test_edit_then_approve_runs_the_edited_actions_and_audits_before_and_after(crm):
    did = queued(crm, [score(crm.ann, 90)])
    edited = [{"type": "update_lead_score", "params": {"contact_id": crm.ann, "score": 65, "tier": "warm"}}]
    with unit_of_work() as session:
        d = oversight.approve(session, did, actor=MANAGER, note="too hot", edited_actions=edited)
    assert d.status == "executed"
    with unit_of_work(readonly=True) as session:
        contact = session.get(Contact, crm.ann)
        assert (contact.score, contact.tier, contact.next_action) == (65, "warm", None)
        [entry] = oversight.audit_entries(session, decision_id=did, event="decision.edited")
    assert entry.details["before"][0]["params"]["score"] == 90
    assert entry.details["after"][0]["params"]["score"] == 65 and entry.details["after"][0]["reason"] == "test"
    with unit_of_work(readonly=True) as session:
        assert oversight.approval_stats(session, "lead_scoring") == {"update_lead_score": (0, 1)}


def test_an_invalid_edit_is_refused_and_the_decision_stays_queued(crm):
    did = queued(crm, [score(crm.ann)])
    bad = [{"type": "update_lead_score", "params": {"contact_id": crm.ann, "score": 140, "tier": "hot"}}]
    with unit_of_work() as session, pytest.raises(UserError, match=rf"decision {did}, edited action 0 \(update_lead_score\): "
                                                                   "parameters rejected: score: Input should be less than or equal to 100"):
        oversight.approve(session, did, actor=MANAGER, edited_actions=bad)
    with unit_of_work() as session, pytest.raises(UserError, match="unknown action type"):
        oversight.approve(session, did, actor=MANAGER, edited_actions=[{"type": "wire_money", "params": {}}])
    assert get(did).status == "queued"


def test_bulk_approve_reports_each_item(crm):
    a = queued(crm, [score(crm.ann)])
    b = queued(crm, [score(crm.bob, 30, "cold")])
    with unit_of_work() as session:
        oversight.reject(session, b, actor=MANAGER)
    with unit_of_work() as session:
        results = oversight.bulk_approve(session, [a, b, 999], actor=MANAGER)
    assert [(r.id, r.ok, r.status) for r in results] == [(a, True, "executed"), (b, False, None), (999, False, None)]
    assert "it is rejected" in results[1].error and "decision 999 not found" in results[2].error


def test_queued_items_expire_after_their_time_and_cannot_be_approved_then(crm):
    did = queued(crm, [score(crm.ann)])
    later = get(did).expires_at + timedelta(seconds=1)
    with unit_of_work() as session:
        assert oversight.expire_stale(session) == 0
    with clock.frozen_at(later):
        with unit_of_work() as session:
            assert oversight.expire_stale(session) == 1
        with unit_of_work() as session:
            assert oversight.expire_stale(session) == 0
    d = get(did)
    assert d.status == "expired" and d.decided_by == "system"
    with unit_of_work() as session, pytest.raises(InvalidTransition, match="it is expired"):
        oversight.approve(session, did, actor=MANAGER)
    assert events(did)[-1] == "decision.expired"


def test_a_failing_action_leaves_nothing_half_applied_and_the_decision_failed(crm):
    # The score would apply, then the task names a deal that does not exist: both must roll back.
    did = queued(crm, [score(crm.ann), ("create_task", {"title": "Call Ann", "deal_id": 9999})])
    with unit_of_work(readonly=True) as session:
        before = row_dicts(session)
    with unit_of_work() as session:
        d = oversight.approve(session, did, actor=MANAGER)
    assert d.status == "failed"
    assert d.error == "action 1 (create_task): deal 9999 not found"
    with unit_of_work(readonly=True) as session:
        assert row_dicts(session) == before
        [failed] = session.scalars(select(ActionExecution).where(ActionExecution.decision_id == did)).all()
        assert (failed.position, failed.status) == (1, "failed")
    assert events(did)[-1] == "decision.failed"


def test_revert_restores_and_a_second_revert_is_refused(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work(readonly=True) as session:
        before = row_dicts(session)
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
    with unit_of_work() as session:
        d = oversight.revert(session, did, actor=MANAGER, note="wrong contact")
    assert d.status == "reverted" and d.reverted_by == "Morgan Manager"
    with unit_of_work(readonly=True) as session:
        assert row_dicts(session) == before
    with unit_of_work() as session, pytest.raises(InvalidTransition, match=rf"cannot revert decision {did}: it is reverted \(reverted by Morgan Manager"):
        oversight.revert(session, did, actor=MANAGER)
    assert events(did)[-2:] == ["action.reverted", "decision.reverted"]


def test_revert_over_a_later_change_is_refused_and_nothing_is_undone(crm):
    did = queued(crm, [score(crm.ann), ("create_task", {"title": "Call Ann", "contact_id": crm.ann})])
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
    with unit_of_work() as session:
        session.get(Contact, crm.ann).score = 55  # a rep changed the score by hand since
    with unit_of_work() as session:
        d = oversight.revert(session, did, actor=MANAGER)
    assert d.status == "executed"
    assert "revert failed, nothing was undone: action 0 (update_lead_score)" in d.error
    assert "score: now 55, action wrote 82" in d.error
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 1  # the task revert rolled back too
    assert events(did)[-1] == "decision.revert_failed"


def test_unknown_ids_and_missing_users_are_clear_errors(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work() as session:
        with pytest.raises(NotFound, match="decision 4242 not found"):
            oversight.approve(session, 4242, actor=MANAGER)
        with pytest.raises(PermissionDenied, match="a person must"):
            oversight.approve(session, did, actor=Actor.system())


def test_queue_items_show_what_a_human_needs_to_judge(crm):
    did = queued(crm, [("send_email", {"contact_id": crm.ann, "subject": "Pricing", "body": "Hello Ann"})],
                 agent="follow_up", confidence=0.7)
    queued(crm, [score(crm.bob)], subject=("contact", crm.bob))
    with unit_of_work(readonly=True) as session:
        items = oversight.queue_items(session, agent="follow_up")
        assert oversight.queue_depth(session) == 2
        assert len(oversight.queue_items(session, stakes="low")) == 1
    [item] = items
    assert item.id == did and item.subject_id == crm.ann and item.stakes == "medium" and item.reversible is False
    [action] = item.actions
    assert action.summary == f"Email contact {crm.ann}: \u201cPricing\u201d"
    assert action.undo_note.startswith("a sent email cannot be unsent")
    assert item.context_snapshot["contact_id"] == crm.ann and item.confidence_factors == {"history": 0.9}
    assert item.expires_at is not None and "below the threshold 0.90" in item.policy_reason


def test_decided_feed_and_detail_show_outcomes_per_action(crm):
    did = queued(crm, [score(crm.ann)])
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
        oversight.revert(session, did, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        [item] = oversight.decided_feed(session)
        detail = oversight.decision_detail(session, did)
    assert item.id == did and item.status == "reverted" and item.decided_by == "Morgan Manager"
    assert detail.actions[0].execution_status == "reverted" and "score 40, tier warm restored" in detail.actions[0].revert_note


def test_outbox_messages_list_held_email(crm):
    did = queued(crm, [("send_email", {"contact_id": crm.ann, "subject": "Pricing", "body": "Hello Ann"})], agent="follow_up")
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        [msg] = oversight.outbox_messages(session)
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert (msg.kind, msg.status, msg.sink, msg.recipient, msg.decision_id) == ("email", "held", "outbox", "ann@acme.example", did)


def test_approval_stats_and_calibration_read_human_verdicts(crm):
    # 10 queued decisions at rising confidence; humans reject the three least confident.
    ids = []
    for i in range(10):
        ids.append(queued(crm, [score(crm.ann, 50 + i)], confidence=0.20 + i * 0.03))  # all below the 0.50 threshold
    with unit_of_work() as session:
        for i, did in enumerate(ids):
            if i < 3:
                oversight.reject(session, did, actor=MANAGER)
            else:
                oversight.approve(session, did, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        assert oversight.approval_stats(session, "lead_scoring") == {"update_lead_score": (7, 10)}
        assert oversight.approval_stats(session, "pipeline") == {}
    with unit_of_work() as session:
        rows = {r.action_type: r for r in oversight.calibration_report(session, target=0.95)}
    row = rows["update_lead_score"]
    assert row.suggested_threshold == pytest.approx(0.29)
    assert (row.decided, row.approved, row.decided_at_suggested, row.approved_at_suggested) == (10, 7, 7, 7)
    assert rows["send_email"].suggested_threshold is None and rows["send_email"].note == "no human verdicts yet"
    with unit_of_work() as session:
        strict = {r.action_type: r for r in oversight.calibration_report(session, target=0.95, min_decisions=8)}
    assert strict["update_lead_score"].suggested_threshold is None
    assert "no threshold reaches 95%" in strict["update_lead_score"].note
