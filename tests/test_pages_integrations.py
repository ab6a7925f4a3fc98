"""Pages show what the services behind the API and the data-quality audit produce.

The Activity page lists outbound webhook deliveries (what other systems were told); a queued
data-quality fix shows the rows it would change as a table, not as JSON, before anyone approves it;
Lead scores shows a score still waiting in the queue as not yet applied, and says when no learned
model scores the book.
"""
from __future__ import annotations

import random
from pathlib import Path

from streamlit.testing.v1 import AppTest

from agents.base import DecisionEnvelope, Proposal, ProposedAction
from orchestration.scheduler import live_jobs
from auth_helpers import add_user, sign_in
from crm_core import oversight
from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.models import Contact, Deal, Decision, ModelSnapshot
from crm_core.quality.audit import run_audit
from crm_core.quality.planting import generate_clean_book, plant_problems
from crm_core.quality.proposals import propose_fixes
from crm_core.webhooks import outbound

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def _page(page: str, name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    sign_in(at, name)
    at.run()
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_activity_page_lists_webhook_deliveries(sqlite_store: str) -> None:
    with unit_of_work() as s:
        admin = add_user(s, "Ada Admin", "admin")
        actor = Actor(user_id=admin.id, name=admin.name, role="admin", via="cli")
        outbound.create_subscription(s, "https://hooks.example.com/crm", ["decision.queued"], actor=actor)
    with unit_of_work() as s:
        live_jobs.follow_audit_log(s)  # starts at the end of the log, as on a first start
    with unit_of_work() as s:
        deal = Deal(name="Acme renewal", stage="Proposal", status="open", risk="green")
        s.add(deal)
        s.flush()
        proposal = Proposal(subject_type="deal", subject_id=deal.id, subject_label=deal.name, confidence=0.05,
                            reasoning="No reply in 21 days.",
                            actions=(ProposedAction(type="set_deal_risk", params={"deal_id": deal.id, "risk": "red",
                                                    "reason": "Silent for 21 days", "action": "Call the buyer"}),))
        oversight.submit(s, DecisionEnvelope(agent="pipeline", proposals=(proposal,), prompt_version="test",
                                             provider="offline", model="offline", is_local=True,
                                             context_snapshot={"deal_id": deal.id}))
    with unit_of_work() as s:
        assert live_jobs.follow_audit_log(s) == 1

    at = _page("activity_audit", "Ada Admin")
    [table] = [f for f in at.dataframe if "To" in f.value.columns and "Attempts" in f.value.columns]
    row = table.value.iloc[0]
    assert row["To"] == "https://hooks.example.com/crm"
    assert row["Status"] == "pending"
    assert "Acme renewal" in row["Event"]


def test_a_queued_data_fix_shows_the_rows_it_would_change(sqlite_store: str) -> None:
    rng = random.Random(1005)
    with unit_of_work() as s:
        generate_clean_book(s, rng, accounts=30, contacts=120, deals=60)
    with unit_of_work() as s:
        plant_problems(s, rng)
    with unit_of_work() as s:
        add_user(s, "Morgan Manager", "manager")
        ids = propose_fixes(s, run_audit(s))
    assert ids

    at = _page("approval_queue", "Morgan Manager")
    at.session_state["queue_tab"] = "One at a time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Rows this changes**") for m in at.markdown)
    [preview] = [f for f in at.dataframe if "now" in f.value.columns]
    assert len(preview.value) >= 1
    assert "id" not in preview.value.columns  # names, not record ids


def test_lead_scores_show_a_waiting_score_as_not_yet_applied_and_why_the_prior_scores(sqlite_store: str) -> None:
    with unit_of_work() as s:
        add_user(s, "Morgan Manager", "manager")
        waiting = Contact(first_name="Wanda", last_name="Waits", email="wanda@example.com",
                          email_normalized="wanda@example.com", lifecycle_stage="lead")
        s.add(waiting)
        s.flush()
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=waiting.id, status="queued",
                       actions=[{"type": "update_lead_score",
                                 "params": {"contact_id": waiting.id, "score": 63, "tier": "hot"}}]))
        s.add(ModelSnapshot(agent="lead_scoring", data_hash="p", version=2,
                            metrics={"kind": "prior", "reason": "only 12 contacts with a known outcome"}))

    at = _page("lead_scores", "Morgan Manager")
    [table] = [f for f in at.dataframe if "Proposed" in f.value.columns]
    row = table.value.iloc[0]
    assert "63" in row["Proposed"] and "not yet applied" in row["Proposed"]
    assert any("No learned model scores these leads yet: only 12 contacts with a known outcome" in w.value
               for w in at.warning)
