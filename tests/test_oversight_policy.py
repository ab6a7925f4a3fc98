"""Policy: what runs by itself, what waits for a human, and why; on SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from auth_helpers import ADMIN
from agents.base import ACTION_TYPES, Proposal, ProposedAction, Usage
from crm_core import oversight
from crm_core.db import unit_of_work
from crm_core.errors import NotFound, UserError
from crm_core.models import ActionExecution, AuditEntry, Contact, Deal, Decision, OutboxMessage, Policy, ScoreHistory
from fakes.crm_records import envelope, seed


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def score_action(contact_id: int, score: int = 82) -> tuple[str, dict]:
    return ("update_lead_score", {"contact_id": contact_id, "score": score, "tier": "hot", "next_action": "call"})


def submit(env, **kw) -> list[int]:
    with unit_of_work() as session:
        return oversight.submit(session, env, **kw)


def decision(decision_id: int) -> Decision:
    with unit_of_work(readonly=True) as session:
        return session.get(Decision, decision_id)


def test_high_confidence_low_stakes_decision_executes_by_itself(crm):
    [did] = submit(envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann), confidence=0.91))
    d = decision(did)
    assert d.status == "executed" and d.policy_verdict == "auto" and d.decided_by == "policy"
    assert d.stakes == "low" and d.reversible is True and d.expires_at is None
    assert "update_lead_score confidence 0.91 >= 0.50" in d.policy_reason
    with unit_of_work(readonly=True) as session:
        contact = session.get(Contact, crm.ann)
        assert (contact.score, contact.tier, contact.next_action) == (82, "hot", "call")
        history = session.scalars(select(ScoreHistory).where(ScoreHistory.contact_id == crm.ann)).all()
        assert [(h.score, h.decision_id) for h in history] == [(82, did)]


def test_low_confidence_decision_waits_in_the_queue_and_changes_nothing(crm):
    [did] = submit(envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann), confidence=0.41))
    d = decision(did)
    assert d.status == "queued" and d.policy_verdict == "queue"
    assert d.policy_reason == "queued: action 0 (update_lead_score): confidence 0.41 is below the threshold 0.50 (low stakes)"
    assert d.expires_at is not None and (d.expires_at - d.created_at).total_seconds() == 72 * 3600
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).score == 40
        assert session.scalar(select(func.count()).select_from(ActionExecution)) == 0
        assert oversight.queue_depth(session) == 1


def test_queue_expiry_hours_come_from_settings(crm, monkeypatch):
    monkeypatch.setenv("CRM_QUEUE_EXPIRY_HOURS", "5")
    [did] = submit(envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann), confidence=0.1))
    d = decision(did)
    assert (d.expires_at - d.created_at).total_seconds() == 5 * 3600


def test_a_quote_never_executes_without_approval_even_at_full_confidence(crm):
    quote = ("send_quote", {"contact_id": crm.ann, "deal_id": crm.deal, "subject": "Your quote", "body": "Attached.",
                            "lines": [{"description": "GTX Pro", "quantity": 2, "unit_price": "2250.00"}]})
    [did] = submit(envelope("pipeline", [quote], subject=("deal", crm.deal), confidence=1.0))
    d = decision(did)
    assert d.status == "queued" and d.stakes == "critical" and d.reversible is False
    assert "action 0 (send_quote): critical stakes always need a human" in d.policy_reason
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    # Lowering the threshold or clearing always_ask does not let a critical action run alone.
    with unit_of_work() as session:
        oversight.update_policy(session, "send_quote", actor=ADMIN, threshold=0.0, always_ask=False)
    [again] = submit(envelope("pipeline", [quote], subject=("deal", crm.deal), confidence=1.0))
    assert decision(again).status == "queued"


def test_moving_a_deal_to_won_or_lost_always_asks(crm):
    for stage in ("Won", "Closed Lost"):
        [did] = submit(envelope("pipeline", [("move_deal_stage", {"deal_id": crm.deal, "to_stage": stage})],
                                subject=("deal", crm.deal), confidence=1.0))
        d = decision(did)
        assert d.status == "queued" and d.stakes == "high"
        assert "always needs a human" in d.policy_reason
    [open_move] = submit(envelope("pipeline", [("move_deal_stage", {"deal_id": crm.deal, "to_stage": "Negotiation"})],
                                  subject=("deal", crm.deal), confidence=0.96))
    assert decision(open_move).status == "executed"


def test_an_escalation_enters_the_queue_with_its_reason(crm):
    env = envelope("pipeline", [("set_deal_risk", {"deal_id": crm.deal, "risk": "red", "reason": "no reply in 21 days"})],
                   subject=("deal", crm.deal), confidence=0.99, escalation="red deal: champion went silent")
    [did] = submit(env)
    d = decision(did)
    assert d.status == "queued" and d.escalation == "red deal: champion went silent"
    assert "escalated by the agent: red deal: champion went silent" in d.policy_reason
    with unit_of_work(readonly=True) as session:
        [item] = oversight.queue_items(session)
        assert item.escalation == "red deal: champion went silent"


def test_an_escalation_without_actions_waits_for_the_manager(crm):
    [did] = submit(envelope("enrichment", [], subject=("account", crm.account), escalation="no website to read"))
    d = decision(did)
    assert d.status == "queued" and d.actions == []


def test_writing_a_field_a_human_set_is_queued(crm):
    # seed(): Ann's title is in manual_fields; Acme's industry too.
    env = envelope("enrichment", [("write_enrichment", {"entity": "contact", "entity_id": crm.ann,
                                                         "fields": {"title": {"value": "COO", "source": "website", "confidence": 0.9}}})],
                   subject=("contact", crm.ann), confidence=0.99)
    [did] = submit(env)
    d = decision(did)
    assert d.status == "queued"
    assert f"would overwrite contact {crm.ann} field 'title' was set by a human" in d.policy_reason
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).title == "Head of Ops"


def test_a_decision_runs_alone_only_if_every_action_passes(crm):
    env = envelope("follow_up", [score_action(crm.ann), ("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "Hello"})],
                   subject=("contact", crm.ann), confidence=0.8)
    [did] = submit(env)
    d = decision(did)
    assert d.status == "queued" and d.stakes == "medium" and d.reversible is False
    assert "send_email): confidence 0.80 is below the threshold 0.90" in d.policy_reason
    assert "update_lead_score" not in d.policy_reason.split("queued: ")[1]
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).score == 40


def test_parameters_outside_the_schema_are_queued_with_the_field_named(crm):
    env = envelope("follow_up", [("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "x", "to": "attacker@evil.example"})],
                   subject=("contact", crm.ann), confidence=0.99)
    [did] = submit(env)
    d = decision(did)
    assert d.status == "queued"
    assert "action 0 (send_email): parameters rejected: to: Extra inputs are not permitted" in d.policy_reason


def test_a_failed_envelope_is_stored_as_failed_and_nothing_runs(crm):
    env = envelope("lead_scoring", [], subject=("contact", crm.ann), failed=True, error="model output failed validation twice")
    [did] = submit(env)
    d = decision(did)
    assert d.status == "failed" and d.error == "model output failed validation twice"
    assert (d.subject_type, d.subject_id) == ("contact", crm.ann)  # read from the context snapshot
    assert d.input_tokens == 1200 and d.cost_usd == Decimal("0.004200")
    with unit_of_work(readonly=True) as session:
        events = [e.event for e in oversight.audit_entries(session, decision_id=did)]
        assert events == ["decision.failed", "decision.created"]


def test_the_same_idempotency_key_returns_the_stored_decisions_and_runs_nothing_again(crm):
    env = envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann))
    first = submit(env, idempotency_key="job:7:lead_scoring:contact:1")
    second = submit(env, idempotency_key="job:7:lead_scoring:contact:1")
    assert first == second
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 1
        assert session.scalar(select(func.count()).select_from(ScoreHistory)) == 1
        assert session.get(Decision, first[0]).idempotency_key == "job:7:lead_scoring:contact:1:0"


def test_usage_is_split_across_proposals_so_sums_are_exact(crm):
    other = Proposal(subject_type="contact", subject_id=crm.bob, confidence=0.95, reasoning="r",
                     actions=(ProposedAction(type="update_lead_score", params={"contact_id": crm.bob, "score": 20, "tier": "cold"}),))
    third = Proposal(subject_type="contact", subject_id=crm.eve, confidence=0.95, reasoning="r",
                     actions=(ProposedAction(type="update_lead_score", params={"contact_id": crm.eve, "score": 10, "tier": "cold"}),))
    env = envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann), extra_proposals=[other, third],
                   usage=Usage(input_tokens=1000, output_tokens=101, cost_usd=0.01))
    ids = submit(env, idempotency_key="batch")
    assert len(ids) == 3
    with unit_of_work(readonly=True) as session:
        rows = [session.get(Decision, i) for i in ids]
        assert sum(r.input_tokens for r in rows) == 1000 and sum(r.output_tokens for r in rows) == 101
        assert sum(r.cost_usd for r in rows) == Decimal("0.01")
        assert [r.idempotency_key for r in rows] == ["batch:0", "batch:1", "batch:2"]


def test_decision_created_audit_keeps_how_the_decision_was_made(crm):
    env = envelope("follow_up", [("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "Hello"})],
                   subject=("contact", crm.ann), confidence=0.5, provider="anthropic")
    [did] = submit(env)
    with unit_of_work(readonly=True) as session:
        [created] = oversight.audit_entries(session, decision_id=did, event="decision.created")
        [queued] = oversight.audit_entries(session, decision_id=did, event="decision.queued")
    details = created.details
    assert created.actor == "agent:follow_up" and (created.subject_type, created.subject_id) == ("contact", crm.ann)
    assert details["context_snapshot"] == {"contact_id": crm.ann, "as_of": "2026-11-24T08:00:00"}
    assert details["prompt_version"] == "follow_up-v1"
    assert (details["provider"], details["is_local"], details["model"]) == ("anthropic", False, "claude-haiku-5-5")
    assert details["tokens"]["input"] == 1200 and details["tokens"]["output"] == 300
    assert details["cost_usd"] == "0.004200" and details["latency_ms"] == 850
    assert details["confidence"] == 0.5 and details["model_confidence"] == 0.52
    assert details["confidence_factors"] == {"history": 0.9}
    assert details["actions"][0]["type"] == "send_email"
    assert queued.details["verdict"] == "queue" and "below the threshold 0.90" in queued.details["reason"]


def test_default_policies_cover_every_action_type_and_are_created_on_first_use(store):
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Policy)) == 0
        views = {p.action_type: p for p in oversight.get_policies(session)}
    assert set(views) == set(ACTION_TYPES)
    assert (views["update_lead_score"].stakes, views["update_lead_score"].threshold) == ("low", 0.5)
    assert (views["send_email"].stakes, views["send_email"].threshold) == ("medium", 0.9)
    assert views["send_quote"].stakes == "critical" and views["send_quote"].always_ask
    assert views["merge_contacts"].always_ask and views["merge_contacts"].stakes == "high"
    assert views["send_email"].reversible is False and "cannot be unsent" in views["send_email"].undo_note


def test_a_policy_change_is_audited_with_old_and_new_values(crm):
    with unit_of_work() as session:
        view = oversight.update_policy(session, "send_email", actor=ADMIN, threshold=0.75)
    assert view.threshold == 0.75 and view.updated_by == "Ada Admin"
    with unit_of_work(readonly=True) as session:
        [entry] = oversight.audit_entries(session, event="policy.updated")
    assert entry.actor == "Ada Admin (cli)"
    assert entry.details == {"via": "cli", "user_id": None, "action_type": "send_email",
                             "old": {"threshold": 0.9, "stakes": "medium", "always_ask": False},
                             "new": {"threshold": 0.75, "stakes": "medium", "always_ask": False}}
    [did] = submit(envelope("follow_up", [("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "Hello"})],
                            subject=("contact", crm.ann), confidence=0.8))
    assert decision(did).status == "executed"


def test_bad_policy_changes_are_refused_with_a_clear_message(store):
    with unit_of_work() as session:
        with pytest.raises(UserError, match="policy send_email: threshold 1.5 must be between 0 and 1"):
            oversight.update_policy(session, "send_email", actor=ADMIN, threshold=1.5)
        with pytest.raises(UserError, match="stakes 'huge' must be one of low, medium, high, critical"):
            oversight.update_policy(session, "send_email", actor=ADMIN, stakes="huge")
        with pytest.raises(NotFound, match="policy 'fax' not found"):
            oversight.update_policy(session, "fax", actor=ADMIN, threshold=0.5)


def test_the_audit_log_refuses_update_and_delete(crm):
    submit(envelope("lead_scoring", [score_action(crm.ann)], subject=("contact", crm.ann)))
    from sqlalchemy import delete, update

    for statement in (update(AuditEntry).values(actor="someone else"), delete(AuditEntry)):
        with pytest.raises(Exception, match="append-only"):
            with unit_of_work() as session:
                session.execute(statement)
    with unit_of_work(readonly=True) as session:
        assert {e.actor for e in oversight.audit_entries(session)} >= {"agent:lead_scoring", "policy"}


def test_deal_stage_move_sets_history_and_status(crm):
    [did] = submit(envelope("pipeline", [("move_deal_stage", {"deal_id": crm.deal, "to_stage": "Negotiation"})],
                            subject=("deal", crm.deal), confidence=0.97))
    with unit_of_work(readonly=True) as session:
        deal = session.get(Deal, crm.deal)
        assert (deal.stage, deal.status, deal.closed_at) == ("Negotiation", "open", None)
        assert decision(did).status == "executed"
