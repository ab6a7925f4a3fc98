"""Every action type executes, then reverts to the exact before-image (every row of every table compared)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import clock, oversight
from crm_core.actions import REGISTRY
from crm_core.db import unit_of_work
from crm_core.models import ActionExecution, Decision, OutboxMessage
from fakes.crm_records import DOMAIN_TABLES, envelope, row_dicts, seed


def cases(crm) -> dict[str, tuple[tuple[str, int], dict]]:
    """action type -> (decision subject, params): one realistic action of each type."""
    soon = (clock.now() + timedelta(days=2)).replace(microsecond=0)
    return {
        "update_lead_score": (("contact", crm.ann), {"contact_id": crm.ann, "score": 91, "tier": "hot", "next_action": "call", "reason": "pricing visits"}),
        "create_task": (("contact", crm.ann), {"title": "Call Ann about pricing", "contact_id": crm.ann, "due_at": soon.isoformat(), "kind": "follow_up"}),
        "send_email": (("contact", crm.ann), {"contact_id": crm.ann, "subject": "Pricing", "body": "Hi Ann, here is our pricing."}),
        "post_notification": (("deal", crm.deal), {"text": "Acme deal went quiet", "title": "Pipeline"}),
        "schedule_meeting": (("deal", crm.deal), {"contact_id": crm.bob, "title": "Budget review", "starts_at": soon.isoformat(),
                                                 "duration_minutes": 45, "agenda": "Budget, timeline"}),
        "move_deal_stage": (("deal", crm.deal), {"deal_id": crm.deal, "to_stage": "Won", "reason": "PO received"}),
        "set_deal_risk": (("deal", crm.deal), {"deal_id": crm.deal, "risk": "red", "reason": "silent 21 days", "action": "call the champion"}),
        "write_enrichment": (("account", crm.account), {"entity": "account", "entity_id": crm.account, "fields": {
            "employee_count": {"value": 250, "source": "company website", "confidence": 0.9},
            "annual_revenue": {"value": "12500000.50", "source": "annual report", "confidence": 0.8},
            "website": {"value": "https://acme.example", "source": "search", "confidence": 0.95}}}),
        "save_meeting_brief": (("meeting", crm.meeting), {"meeting_id": crm.meeting, "brief": "Ann wants SSO.\nBob owns budget."}),
        "create_action_items": (("meeting", crm.meeting), {"meeting_id": crm.meeting, "items": [
            {"title": "Send SSO docs", "due_at": soon.isoformat()}, {"title": "Security questionnaire", "owner_id": crm.rep}]}),
        "send_quote": (("deal", crm.deal), {"contact_id": crm.ann, "deal_id": crm.deal, "subject": "Your quote", "body": "Attached.",
                                            "lines": [{"description": "GTX Pro", "quantity": 2, "unit_price": "2250.00"}],
                                            "currency": "USD", "valid_until": "2026-12-31"}),
        "normalise_values": (("account", crm.account), {"entity": "account", "field": "country", "kind": "variants",
                                                        "changes": {"US": "United States"}, "record_ids": [crm.account]}),
    }


ACTION_TYPES_HERE = sorted(REGISTRY.keys() - {"merge_contacts"})  # merge_contacts has its own tests


def test_the_cases_cover_every_action_type_this_layer_registers():
    class Ids:
        rep = manager = account = ann = bob = eve = deal = meeting = 1

    assert sorted(cases(Ids)) == ACTION_TYPES_HERE


@pytest.mark.parametrize("action_type", ACTION_TYPES_HERE)
def test_every_action_reverts_to_the_exact_before_image(store, action_type):
    with unit_of_work() as session:
        crm = seed(session)
    subject, params = cases(crm)[action_type]
    with unit_of_work(readonly=True) as session:
        before = row_dicts(session)
    with unit_of_work() as session:
        # Confidence 0 queues every type; a human approval executes it.
        [did] = oversight.submit(session, envelope("pipeline", [(action_type, params)], subject=subject, confidence=0.0))
    with unit_of_work() as session:
        d = oversight.approve(session, did, actor=MANAGER)
        assert d.status == "executed", d.error
    with unit_of_work(readonly=True) as session:
        during = row_dicts(session, DOMAIN_TABLES + ("outbox",))
        [exe] = session.scalars(select(ActionExecution).where(ActionExecution.decision_id == did)).all()
    assert any(during[t] != before[t] for t in before) or during["outbox"], f"{action_type} changed nothing"
    assert exe.status == "executed"
    with unit_of_work() as session:
        d = oversight.revert(session, did, actor=MANAGER)
        assert d.status == "reverted", d.error
    with unit_of_work(readonly=True) as session:
        after = row_dicts(session)
        exe = session.get(ActionExecution, exe.id)
        held = session.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == did)).all()
        entries = oversight.audit_entries(session, decision_id=did)
    for table in before:
        assert after[table] == before[table], f"{action_type}: {table} differs after revert"
    assert exe.status == "reverted" and exe.revert_note
    # Messages that never left (no sink: held) are cancelled, not sent.
    assert all(m.status == "cancelled" for m in held)
    assert {"action.executed", "action.reverted", "decision.reverted"} <= {e.event for e in entries}


def test_won_deal_revert_reopens_it_exactly(store):
    with unit_of_work() as session:
        crm = seed(session)
    subject, params = cases(crm)["move_deal_stage"]
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("pipeline", [("move_deal_stage", params)], subject=subject, confidence=1.0))
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
        from crm_core.models import Deal, StageHistory

        deal = session.get(Deal, crm.deal)
        assert (deal.stage, deal.status) == ("Won", "won") and deal.closed_at is not None
        [history] = session.scalars(select(StageHistory).where(StageHistory.deal_id == crm.deal)).all()
        assert (history.from_stage, history.to_stage, history.changed_by) == ("Engaging", "Won", "Morgan Manager")
    with unit_of_work() as session:
        oversight.revert(session, did, actor=MANAGER)
        deal = session.get(Deal, crm.deal)
        assert (deal.stage, deal.status, deal.closed_at) == ("Engaging", "open", None)


def test_a_decision_with_several_actions_reverts_all_of_them_newest_first(store):
    with unit_of_work() as session:
        crm = seed(session)
    c = cases(crm)
    actions = [("update_lead_score", c["update_lead_score"][1]), ("create_task", c["create_task"][1]),
               ("send_email", c["send_email"][1])]
    with unit_of_work(readonly=True) as session:
        before = row_dicts(session)
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("follow_up", actions, subject=("contact", crm.ann), confidence=0.0))
    with unit_of_work() as session:
        oversight.approve(session, did, actor=MANAGER)
    with unit_of_work() as session:
        assert oversight.revert(session, did, actor=MANAGER).status == "reverted"
    with unit_of_work(readonly=True) as session:
        assert row_dicts(session) == before
        reverted = [e.details["position"] for e in reversed(oversight.audit_entries(session, decision_id=did, event="action.reverted"))]
        assert reverted == [2, 1, 0]
        assert session.get(Decision, did).reverted_by == "Morgan Manager"
