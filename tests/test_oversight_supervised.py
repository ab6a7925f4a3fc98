"""Supervised mode: per agent for a period or a number of decisions, and CRM_SUPERVISED=1 for all."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from auth_helpers import ADMIN
from crm_core import clock, oversight
from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.models import AgentSetting, Decision
from fakes.crm_records import envelope, seed

T0 = datetime(2026, 11, 24, 9, 0, 0)


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def confident_score(crm, agent: str = "lead_scoring", score: int = 77):
    return envelope(agent, [("update_lead_score", {"contact_id": crm.ann, "score": score, "tier": "hot"})],
                    subject=("contact", crm.ann), confidence=0.99)


def submit_status(env) -> tuple[str, str]:
    with unit_of_work() as session:
        [did] = oversight.submit(session, env)
        d = session.get(Decision, did)
        return d.status, d.policy_reason


def test_an_agent_supervised_for_a_period_queues_everything_until_it_ends(crm):
    with clock.frozen_at(T0):
        with unit_of_work() as session:
            view = oversight.set_supervised(session, "lead_scoring", actor=ADMIN, until=T0 + timedelta(hours=2))
        assert view.supervised and view.reason == "supervised until 2026-11-24 11:00 UTC"
        status, reason = submit_status(confident_score(crm))
        assert status == "queued"
        assert "supervised mode: agent lead_scoring is supervised until 2026-11-24 11:00 UTC" in reason
        # Another agent is not affected.
        status, _ = submit_status(envelope("pipeline", [("set_deal_risk", {"deal_id": crm.deal, "risk": "amber"})],
                                           subject=("deal", crm.deal), confidence=0.99))
        assert status == "executed"
    with clock.frozen_at(T0 + timedelta(hours=2, seconds=1)):
        assert submit_status(confident_score(crm, score=78))[0] == "executed"


def test_an_agent_supervised_for_a_number_of_decisions_counts_each_one_down(crm):
    with unit_of_work() as session:
        oversight.set_supervised(session, "lead_scoring", actor=ADMIN, decisions=2)
    first = submit_status(confident_score(crm, score=70))
    assert first[0] == "queued" and "(1 left after this one)" in first[1]
    second = submit_status(confident_score(crm, score=71))
    assert second[0] == "queued" and "(0 left after this one)" in second[1]
    assert submit_status(confident_score(crm, score=72))[0] == "executed"
    with unit_of_work(readonly=True) as session:
        assert session.get(AgentSetting, "lead_scoring").supervised_remaining == 0
        [view] = oversight.supervision(session, "lead_scoring")
        assert view.supervised is False


def test_failed_envelopes_do_not_use_up_supervised_decisions(crm):
    with unit_of_work() as session:
        oversight.set_supervised(session, "lead_scoring", actor=ADMIN, decisions=1)
        oversight.submit(session, envelope("lead_scoring", [], subject=("contact", crm.ann), failed=True, error="timeout"))
    assert submit_status(confident_score(crm))[0] == "queued"


def test_crm_supervised_puts_every_agent_in_supervised_mode(crm, monkeypatch):
    monkeypatch.setenv("CRM_SUPERVISED", "1")
    status, reason = submit_status(confident_score(crm))
    assert status == "queued" and "supervised mode: CRM_SUPERVISED=1" in reason
    status, _ = submit_status(envelope("pipeline", [("set_deal_risk", {"deal_id": crm.deal, "risk": "amber"})],
                                       subject=("deal", crm.deal), confidence=1.0))
    assert status == "queued"
    with unit_of_work(readonly=True) as session:
        assert all(v.supervised for v in oversight.supervision(session))


def test_supervision_can_be_turned_off_and_every_change_is_audited(crm):
    with unit_of_work() as session:
        oversight.set_supervised(session, "meeting", actor=ADMIN, decisions=5)
        view = oversight.set_supervised(session, "meeting", actor=ADMIN, off=True)
    assert view.supervised is False
    with unit_of_work(readonly=True) as session:
        events = [(e.event, e.details["new"]) for e in oversight.audit_entries(session, actor="Ada Admin")]
    assert events == [("agent.unsupervised", {"until": None, "remaining": None}),
                      ("agent.supervised", {"until": None, "remaining": 5})]


def test_supervising_an_unknown_agent_or_nothing_is_refused(store):
    with unit_of_work() as session:
        with pytest.raises(UserError, match="agent 'sales_bot' is unknown"):
            oversight.set_supervised(session, "sales_bot", actor=ADMIN, decisions=1)
        with pytest.raises(UserError, match="give a time"):
            oversight.set_supervised(session, "meeting", actor=ADMIN)
        with pytest.raises(UserError, match="at least 1"):
            oversight.set_supervised(session, "meeting", actor=ADMIN, decisions=0)
