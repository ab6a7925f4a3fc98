"""A run that lets unchanged decisions stand writes one audit row for all of them, in plain words."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import AuditEntry
from crm_core.oversight.audit_words import event_label
from crm_core.services.activity_log import AuditFilters, readable_audit
from orchestration.runner import reused_in, run_agent

AS_OF = datetime(2026, 6, 1, 9, 0)
STANDS = event_label("decision.reused")


def _reuse_rows() -> list[AuditEntry]:
    with unit_of_work(readonly=True) as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.event == "decision.reused").order_by(AuditEntry.id)))
        s.expunge_all()
        return rows


def test_a_repeat_run_writes_one_row_that_counts_the_leads_and_lists_each_one_in_its_details(store):
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
    run_agent("lead_scoring", provider="offline", as_of=AS_OF, skip_unchanged=True)
    assert _reuse_rows() == []
    again = run_agent("lead_scoring", provider="offline", as_of=AS_OF + timedelta(minutes=10), skip_unchanged=True)
    skipped = [o for o in again.outcomes if o.skipped]
    assert len(skipped) >= 10

    [row] = _reuse_rows()  # not one per lead
    assert row.decision_id is None and row.subject_id is None and row.actor == "agent:lead_scoring"
    assert row.details["count"] == len(skipped)
    for outcome in skipped:  # for any one lead, its standing decision is in the details
        contact_id = int(outcome.subject_key.rsplit(":", 1)[1])
        assert reused_in(row.details, "contact", contact_id) == outcome.reused_decision_id
    assert reused_in(row.details, "contact", -1) is None

    with unit_of_work(readonly=True) as s:
        page = readable_audit(s, AuditFilters(agent="lead_scoring"))
    [shown] = [r for r in page.rows if r.what == STANDS]
    assert shown.who == "Lead scoring agent" and shown.record == ""
    assert shown.details == [
        f"Looked again at {len(skipped)} contacts: nothing their last decisions depend on had changed, so they stand",
        "No model was asked",
    ]


def test_a_run_about_one_lead_names_it_so_its_own_history_shows_the_decision_stands(store):
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
    first = run_agent("lead_scoring", provider="offline", as_of=AS_OF, skip_unchanged=True)
    contact_id = int(next(o for o in first.outcomes if o.decision_ids).subject_key.rsplit(":", 1)[1])
    again = run_agent("lead_scoring", subject_ids=[contact_id], provider="offline", as_of=AS_OF + timedelta(minutes=5),
                      skip_unchanged=True)
    [outcome] = again.outcomes
    assert outcome.skipped

    [row] = _reuse_rows()
    assert (row.decision_id, row.subject_type, row.subject_id) == (outcome.reused_decision_id, "contact", contact_id)
    with unit_of_work(readonly=True) as s:
        page = readable_audit(s, AuditFilters(subject_type="contact", subject_id=contact_id))
    [shown] = [r for r in page.rows if r.what == STANDS]
    assert shown.record and shown.record != "a contact no longer in the book"
    # The standing decision's own headline, in words: no ids, no digest.
    assert shown.details[0].startswith("Still stands: ") and shown.details[1:] == ["No model was asked"]
    assert not re.search(r"\b(contact|decision|deal) \d+|[0-9a-f]{16}", " ".join(shown.details))


def test_a_large_run_pages_its_reuse_rows_so_no_row_grows_with_the_book(store, monkeypatch):
    monkeypatch.setattr("orchestration.runner.REUSE_PAIRS_PER_ROW", 4)
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
    run_agent("lead_scoring", provider="offline", as_of=AS_OF, skip_unchanged=True)
    again = run_agent("lead_scoring", provider="offline", as_of=AS_OF + timedelta(minutes=10), skip_unchanged=True)
    skipped = [o for o in again.outcomes if o.skipped]
    assert len(skipped) >= 10

    rows = _reuse_rows()
    parts = -(-len(skipped) // 4)
    assert len(rows) == parts
    assert [r.details["part"] for r in rows] == list(range(1, parts + 1))
    assert {r.details["parts"] for r in rows} == {parts}
    assert all(r.details["count"] <= 4 for r in rows) and sum(r.details["count"] for r in rows) == len(skipped)
    for outcome in skipped:  # every lead's standing decision is in exactly one row
        contact_id = int(outcome.subject_key.rsplit(":", 1)[1])
        found = [reused_in(r.details, "contact", contact_id) for r in rows]
        assert [f for f in found if f is not None] == [outcome.reused_decision_id]

    with unit_of_work(readonly=True) as s:
        page = readable_audit(s, AuditFilters(agent="lead_scoring"))
    shown = [r for r in page.rows if r.what == STANDS]
    assert len(shown) == parts
    assert any(f"Part 1 of {parts} of one run" in r.details for r in shown)
