"""The runner against a real store: daily budgets read from the store, unchanged contexts skipped."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import Account, AgentSetting, AuditEntry, Contact, Decision, User
from orchestration.runner import run_agent
from tests.fakes.anthropic_server import FakeAnthropicServer, fake_anthropic  # noqa: F401  (fixture)


def _contact() -> int:
    with unit_of_work() as s:
        rep = User(name="Rita Rep", role="rep")
        acc = Account(name="Acme Analytics", name_key="acme analytics", domain="acme.example", industry="Software")
        s.add_all([rep, acc])
        s.flush()
        c = Contact(first_name="Ana", last_name="Lima", email="ana@acme.example", email_normalized="ana@acme.example",
                    title="VP Operations", account_id=acc.id, owner_id=rep.id, source="webinar", lifecycle_stage="mql")
        s.add(c)
        s.flush()
        return c.id


def test_a_spent_daily_budget_sends_the_agent_to_the_offline_reasoner_and_says_so(store, fake_anthropic: FakeAnthropicServer, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    contact_id = _contact()
    with unit_of_work() as s:
        s.add(AgentSetting(agent="lead_scoring", daily_token_budget=1000))
        # Earlier today a remote call used the whole budget.
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=contact_id, status="executed",
                       provider="anthropic", is_local=False, input_tokens=900, output_tokens=200,
                       cost_usd=Decimal("0.002"), created_at=clock.now()))

    result = run_agent("lead_scoring", subject_ids=[contact_id], provider="anthropic")

    assert fake_anthropic.message_requests == []  # nothing left the machine
    [outcome] = result.outcomes
    assert outcome.provider == "offline" and not outcome.failed
    with unit_of_work(readonly=True) as s:
        created = s.scalars(select(AuditEntry).where(AuditEntry.event == "decision.created")).all()
        assert created and all("daily budget spent: offline reasoner used" in e.details["notes"] for e in created)


def test_an_unchanged_context_is_not_reasoned_again(store):
    contact_id = _contact()
    first = run_agent("lead_scoring", subject_ids=[contact_id], provider="offline", skip_unchanged=True)
    assert first.decision_ids and not first.outcomes[0].skipped
    again = run_agent("lead_scoring", subject_ids=[contact_id], provider="offline", skip_unchanged=True)
    assert again.decision_ids == [] and again.outcomes[0].skipped == "context unchanged since the last decision"
