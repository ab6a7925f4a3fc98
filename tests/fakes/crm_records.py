"""A small, realistic slice of a CRM for the action and oversight tests, and envelope builders.

`seed(session)` writes a rep and a manager, an account, three contacts (two on one deal, one
unrelated), an open deal and an upcoming meeting, and returns their ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.base import DecisionEnvelope, Proposal, ProposedAction, Usage
from crm_core import clock
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting, User

# Tables any action may write: what "exactly as before" is compared on.
DOMAIN_TABLES = (
    "contacts", "accounts", "deals", "deal_stage_history", "score_history", "tasks", "meetings", "emails", "activities",
)


@dataclass
class Seeded:
    rep: int
    manager: int
    account: int
    ann: int      # primary contact of the deal
    bob: int      # also on the deal (an email thread names him)
    eve: int      # an unrelated contact
    deal: int
    meeting: int


def seed(session: Session) -> Seeded:
    now = clock.now()
    rep = User(name="alice.rep", email="alice@seller.example", role="rep")
    manager = User(name="morgan.manager", email="morgan@seller.example", role="manager")
    session.add_all([rep, manager])
    session.flush()
    account = Account(name="Acme Corp", name_key="acme corp", domain="acme.example", industry="manufacturing",
                      employee_count=120, annual_revenue=Decimal("5400000.00"), country="US", owner_id=rep.id,
                      attributes={"source_file": "accounts.csv"}, manual_fields=["industry"])
    session.add(account)
    session.flush()
    ann = Contact(first_name="Ann", last_name="Buyer", email="ann@acme.example", email_normalized="ann@acme.example",
                  title="Head of Ops", account_id=account.id, owner_id=rep.id, lifecycle_stage="sql", score=40, tier="warm",
                  next_action="nurture", score_updated_at=now - timedelta(days=10), last_activity_at=now - timedelta(days=3),
                  attributes={}, manual_fields=["title"])
    bob = Contact(first_name="Bob", last_name="Finance", email="bob@acme.example", email_normalized="bob@acme.example",
                  account_id=account.id, owner_id=rep.id, attributes={}, manual_fields=[])
    eve = Contact(first_name="Eve", last_name="Elsewhere", email="eve@other.example", email_normalized="eve@other.example",
                  owner_id=rep.id, attributes={}, manual_fields=[])
    session.add_all([ann, bob, eve])
    session.flush()
    deal = Deal(name="Acme - GTX Pro", account_id=account.id, primary_contact_id=ann.id, owner_id=rep.id, product="GTX Pro",
                stage="Engaging", amount=Decimal("4500.00"), currency="USD", status="open", opened_at=now - timedelta(days=30),
                stage_entered_at=now - timedelta(days=12), attributes={}, manual_fields=[])
    session.add(deal)
    session.flush()
    session.add(Email(thread_id="t-1", contact_id=bob.id, deal_id=deal.id, direction="inbound", from_address="bob@acme.example",
                      to_address="alice@seller.example", subject="Budget", body="We have budget for Q3.", sent_at=now - timedelta(days=2)))
    session.add(Activity(type="call", occurred_at=now - timedelta(days=3), contact_id=ann.id, deal_id=deal.id,
                         account_id=account.id, payload={"minutes": 20}, source="import"))
    meeting = Meeting(uid="m-1@crm", title="Acme discovery", contact_id=ann.id, deal_id=deal.id, owner_id=rep.id,
                      starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, minutes=30),
                      attendees=["ann@acme.example"], agenda="Discovery", status="scheduled",
                      transcript="Ann: we need SSO. Bob will send the security questionnaire.")
    session.add(meeting)
    session.flush()
    return Seeded(rep=rep.id, manager=manager.id, account=account.id, ann=ann.id, bob=bob.id, eve=eve.id, deal=deal.id,
                  meeting=meeting.id)


def envelope(
    agent: str,
    actions: list[tuple[str, dict[str, Any]]] | list[ProposedAction],
    *,
    subject: tuple[str, int | None] = ("contact", None),
    confidence: float = 0.97,
    escalation: str | None = None,
    reasoning: str = "Strong recent engagement.",
    provider: str = "offline",
    failed: bool = False,
    error: str | None = None,
    extra_proposals: list[Proposal] = (),
    usage: Usage | None = None,
) -> DecisionEnvelope:
    proposed = [a if isinstance(a, ProposedAction) else ProposedAction(type=a[0], params=a[1], reason="test") for a in actions]
    proposals = () if failed else (
        Proposal(subject_type=subject[0], subject_id=subject[1], subject_label=f"{subject[0]} {subject[1]}",
                 confidence=confidence, reasoning=reasoning, actions=tuple(proposed), escalation=escalation,
                 decision={"model_confidence": min(1.0, confidence + 0.02), "confidence_factors": {"history": 0.9}}),
        *extra_proposals,
    )
    return DecisionEnvelope(
        agent=agent, proposals=proposals, decision={"summary": "test decision"}, prompt_version=f"{agent}-v1",
        provider=provider, model="offline-model" if provider == "offline" else "claude-haiku-5-5",
        is_local=provider != "anthropic", usage=usage or Usage(input_tokens=1200, output_tokens=300, cost_usd=0.0042),
        latency_ms=850, context_snapshot={f"{subject[0]}_id": subject[1], "as_of": "2026-11-24T08:00:00"},
        context_hash="a" * 64, failed=failed, error=error,
    )


def row_dicts(session: Session, tables: tuple[str, ...] = DOMAIN_TABLES) -> dict[str, list[dict[str, Any]]]:
    """Every row of the named tables as plain dicts, ordered by id: an exact picture of the store."""
    from crm_core.models import Base

    session.flush()
    session.expire_all()
    out = {}
    for name in tables:
        table = Base.metadata.tables[name]
        rows = session.execute(select(table).order_by(table.c.id)).mappings().all()
        out[name] = [dict(r) for r in rows]
    return out


def future(hours: int = 48) -> datetime:
    return (clock.now() + timedelta(hours=hours)).replace(microsecond=0)


