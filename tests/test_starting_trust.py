"""Starting trust: where the approval factor begins before people decide, and only from evidence."""
from __future__ import annotations

from datetime import timedelta

import pytest

from auth_helpers import MANAGER
from agents.llm.confidence import ANY_ACTION, ApprovalRecord, StartingTrust, combine_confidence, weakest_approval_rate
from crm_core import clock, oversight
from crm_core.db import unit_of_work
from crm_core.models import AgentSetting, Decision, ModelSnapshot
from crm_core.services import oversight_settings
from fakes.crm_records import envelope, seed


def factor(rate) -> float:
    return combine_confidence(1.0, completeness=1.0, offline_agrees=True, approval_rate=rate)[1]["approval_factor"]


def test_a_bare_pair_keeps_the_cautious_default_and_evidence_moves_the_start():
    assert factor((0, 0)) == factor(ApprovalRecord()) == 0.8
    assert factor((10, 10)) == factor(ApprovalRecord(approved=10, decided=10)) == pytest.approx(0.9333, abs=1e-4)
    earned = StartingTrust(trust=1.0, source="back-test")
    assert factor(ApprovalRecord(prior=earned)) == 1.0
    # Rejections pull an earned start down at once: two out of two leave 5/7.
    assert factor(ApprovalRecord(approved=0, decided=2, prior=earned)) == pytest.approx(5 / 7, abs=1e-4)
    # A learned 0.95 on a complete context now passes a 0.70 threshold; with the default it did not.
    assert combine_confidence(0.95, completeness=0.8, offline_agrees=None, approval_rate=ApprovalRecord(prior=earned))[0] > 0.70
    assert combine_confidence(0.95, completeness=0.8, offline_agrees=None, approval_rate=(0, 0))[0] < 0.70


def test_never_above_the_model_figure_and_kinds_no_one_decided_use_the_agents_start():
    for trust in (0.0, 0.5, 1.0):
        for approved, decided in ((0, 0), (3, 9), (9, 9)):
            rec = ApprovalRecord(approved=approved, decided=decided, prior=StartingTrust(trust=trust))
            value, factors = combine_confidence(0.9, completeness=1.0, offline_agrees=True, approval_rate=rec)
            assert 0.0 <= value <= 0.9 + 1e-12 and factors["starting_trust"] == trust
    stats = {ANY_ACTION: ApprovalRecord(prior=StartingTrust(trust=1.0)), "create_task": ApprovalRecord(approved=1, decided=4)}
    kind, rate = weakest_approval_rate(["update_lead_score", "create_task"], stats)
    assert kind == "create_task" and rate.decided == 4
    kind, rate = weakest_approval_rate(["update_lead_score"], stats)
    assert kind == "update_lead_score" and rate.prior.trust == 1.0


def lead_snapshot(low: float, brier: float, base_rate: float = 0.5, learned: bool = True) -> ModelSnapshot:
    metrics = {"kind": "learned" if learned else "prior", "holdout_auc": low + 0.05,
               "holdout_auc_interval": [low, low + 0.1], "holdout_brier": brier, "newest_base_rate": base_rate}
    return ModelSnapshot(agent="lead_scoring", kind="lead_scorer", data_hash="x", metrics=metrics, version=2,
                         blob=b"{}" if learned else None, validation={}, chosen="lr" if learned else "prior")


def pipeline_snapshot(low: float, usable: bool) -> ModelSnapshot:
    return ModelSnapshot(agent="pipeline", kind="pipeline_loss", data_hash="x", metrics={}, version=2, blob=b"{}",
                         validation={"mean_auc": low + 0.05, "low": low, "rule_auc": 0.6, "usable": usable},
                         chosen="learned" if usable else "prior")


@pytest.mark.parametrize(("snapshot", "earned"), [
    (lambda: lead_snapshot(0.8, 0.15), True),
    (lambda: lead_snapshot(0.55, 0.15), False),       # weak skill
    (lambda: lead_snapshot(0.8, 0.26), False),        # no better calibrated than guessing the base rate
    (lambda: lead_snapshot(0.8, 0.15, learned=False), False),  # the prior scores
    (lambda: pipeline_snapshot(0.7, True), True),
    (lambda: pipeline_snapshot(0.7, False), False),   # the learned weights did not beat the rule
    (lambda: pipeline_snapshot(0.52, True), False),   # usable, but too weak to earn trust
])
def test_learned_agents_start_from_their_back_test_and_weak_evidence_earns_nothing(store, snapshot, earned):
    with unit_of_work() as session:
        row = snapshot()
        session.add(row)
        agent = row.agent
    with unit_of_work(readonly=True) as session:
        start = oversight.approval_evidence(session, agent)[ANY_ACTION].prior
        [view] = [v for v in oversight_settings.starting_trust(session) if v.agent == agent]
    assert start.trust == (1.0 if earned else 0.8)
    assert view.trust == start.trust and view.source == start.source
    assert ("back-test on this book" if earned else "cautious default") in start.source


def test_without_any_evidence_every_agent_starts_cautious(store):
    with unit_of_work(readonly=True) as session:
        views = oversight_settings.starting_trust(session)
        assert views and all(v.trust == 0.8 and "cautious default" in v.source for v in views)
        assert oversight.approval_evidence(session, "follow_up") == {ANY_ACTION: ApprovalRecord()}


def test_a_finished_supervised_period_lets_its_record_stand_on_its_own(store):
    with unit_of_work() as session:
        crm = seed(session)
    ids = []
    for i in range(10):
        with unit_of_work() as session:
            action = ("update_lead_score", {"contact_id": crm.ann, "score": 50 + i, "tier": "warm", "next_action": "call"})
            [did] = oversight.submit(session, envelope("enrichment", [action], subject=("contact", crm.ann), confidence=0.3))
            assert session.get(Decision, did).status == "queued"
            ids.append(did)
    with unit_of_work() as session:
        for i, did in enumerate(ids):
            (oversight.reject if i == 0 else oversight.approve)(session, did, actor=MANAGER)
    with unit_of_work(readonly=True) as session:
        during = oversight.approval_evidence(session, "enrichment")["update_lead_score"]
    assert (during.approved, during.decided, during.prior.weight) == (9, 10, 5.0)   # no period finished
    with unit_of_work() as session:
        session.add(AgentSetting(agent="enrichment", supervised_until=clock.now() - timedelta(hours=1)))
    with unit_of_work(readonly=True) as session:
        after = oversight.approval_evidence(session, "enrichment")["update_lead_score"]
    assert after.prior.weight == 1.0 and "9 of 10 approved" in after.prior.source
    assert factor(after) == pytest.approx(9.8 / 11, abs=1e-4) and factor(after) > factor(during)
