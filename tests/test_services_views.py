"""Dashboard read services (timelines, meetings, agent spend, heartbeats) and the oversight/import wrappers."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from auth_helpers import ADMIN, MANAGER
from agents.base import DecisionEnvelope, Proposal, ProposedAction, Usage
from crm_core import clock, oversight
from crm_core.auth import Actor
from crm_core.db import unit_of_work
from crm_core.errors import InvalidTransition, NotFound, PermissionDenied, UserError
from crm_core.models import (
    Activity,
    Contact,
    Deal,
    Decision,
    Email,
    Meeting,
    OutboxMessage,
    ScoreHistory,
    StageHistory,
    Task,
    User,
    WorkerHeartbeat,
)
from crm_core.services import activity_log, agent_ops, approvals, imports, meetings, oversight_settings, records, users

ANN = Actor(user_id=None, name="Ann", role="manager", via="password")
NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def book(store):
    """One rep, one contact with an email, one open deal."""
    with unit_of_work() as s:
        rep = User(name="Rita Rep", role="rep")
        boss = User(name="Morgan Manager", role="manager")
        s.add_all([rep, boss])
        s.flush()
        contact = Contact(first_name="Ann", last_name="Buyer", email="ann@acme.example", email_normalized="ann@acme.example",
                          owner_id=rep.id)
        s.add(contact)
        s.flush()
        deal = Deal(name="Acme renewal", stage="Demo", amount=Decimal(5000), owner_id=rep.id, primary_contact_id=contact.id)
        s.add(deal)
        s.flush()
        return {"rep": rep.id, "contact": contact.id, "deal": deal.id}


def submit(agent, actions, *, subject, confidence, label="Ann Buyer", usage=Usage(), is_local=True, provider="offline"):
    proposal = Proposal(subject_type=subject[0], subject_id=subject[1], subject_label=label, confidence=confidence,
                        reasoning="because the buyer asked", actions=tuple(ProposedAction(type=t, params=p) for t, p in actions))
    envelope = DecisionEnvelope(agent=agent, proposals=(proposal,), prompt_version="t1", provider=provider, model="m",
                                is_local=is_local, usage=usage, context_snapshot={"contact_id": subject[1]})
    with unit_of_work() as s:
        [decision_id] = oversight.submit(s, envelope)
        return decision_id


def email(contact_id, subject="Next steps", body="Hi Ann, shall we meet on Tuesday?"):
    return ("send_email", {"contact_id": contact_id, "subject": subject, "body": body})


def task(contact_id, title="Call Ann"):
    return ("create_task", {"title": title, "contact_id": contact_id})


# ---- timelines and search -------------------------------------------------------------------------

def test_contact_timeline_merges_every_source_newest_first(book):
    c = book["contact"]
    with unit_of_work() as s:
        s.add(Activity(type="page_view", occurred_at=NOW - timedelta(days=5), contact_id=c, payload={"url": "/pricing"}))
        s.add(Email(thread_id="t1", contact_id=c, direction="inbound", subject="Question", body="How much is it?",
                    sent_at=NOW - timedelta(days=4)))
        s.add(Meeting(uid="m1", title="Demo call", contact_id=c, starts_at=NOW - timedelta(days=3), ends_at=NOW - timedelta(days=3, hours=-1)))
        s.add(ScoreHistory(contact_id=c, score=70, tier="warm", scored_at=NOW - timedelta(days=2), reason="pricing page"))
        s.add(Task(title="Send the quote", contact_id=c, created_at=NOW - timedelta(days=1), created_by="agent:follow_up"))
    submit("follow_up", [task(c)], subject=("contact", c), confidence=0.1)
    with unit_of_work(readonly=True) as s:
        events = records.contact_timeline(s, c, actor=MANAGER)
    assert [e.kind for e in events] == ["decision", "task", "score", "meeting", "email", "activity"]
    assert events[-1].detail == "url: /pricing" and events[-2].detail == "How much is it?"
    assert "Follow-up agent proposed task for the rep: queued" == events[0].title
    assert events[1].detail == "by Follow-up agent"  # who made the task, in words: never "agent:follow_up"
    with unit_of_work(readonly=True) as s:
        assert len(records.contact_timeline(s, c, actor=MANAGER, limit=2)) == 2


def test_deal_timeline_includes_stage_changes(book):
    d = book["deal"]
    with unit_of_work() as s:
        s.add(StageHistory(deal_id=d, from_stage="Qualify", to_stage="Demo", changed_at=NOW - timedelta(days=1), changed_by="Rita Rep"))
        s.add(Activity(type="call", occurred_at=NOW - timedelta(days=2), deal_id=d))
    with unit_of_work(readonly=True) as s:
        events = records.deal_timeline(s, d, actor=MANAGER)
        detail = records.deal_detail(s, d, actor=MANAGER)
    assert [(e.kind, e.title) for e in events] == [("stage", "stage Qualify → Demo"), ("activity", "call")]
    assert detail.primary_contact == "Ann Buyer" and detail.owner == "Rita Rep" and detail.amount == 5000


def test_missing_records_are_named_in_the_error(book):
    with unit_of_work(readonly=True) as s:
        with pytest.raises(NotFound, match="contact 999 not found"):
            records.contact_timeline(s, 999, actor=MANAGER)
        with pytest.raises(NotFound, match="deal 999 not found"):
            records.deal_detail(s, 999, actor=MANAGER)


def test_search_finds_contacts_and_deals_by_text_or_id(book):
    with unit_of_work(readonly=True) as s:
        by_text = records.search_records(s, "acme", actor=MANAGER)
        by_id = records.search_records(s, str(book["deal"]), actor=MANAGER)
        nothing = records.search_records(s, "   ", actor=MANAGER)
    assert {(h.kind, h.label) for h in by_text} == {("contact", "Ann Buyer"), ("deal", "Acme renewal")}
    assert ("deal", book["deal"]) in {(h.kind, h.id) for h in by_id}
    assert nothing == []


def test_contact_detail_lists_the_contacts_deals(book):
    with unit_of_work(readonly=True) as s:
        detail = records.contact_detail(s, book["contact"], actor=MANAGER)
    assert detail.owner == "Rita Rep" and [d.name for d in detail.deals] == ["Acme renewal"]


# ---- meetings -----------------------------------------------------------------------------------------

def test_meetings_split_upcoming_with_briefs_and_past_with_action_items(book):
    with unit_of_work() as s:
        soon = Meeting(uid="soon", title="Kick-off", contact_id=book["contact"], starts_at=NOW + timedelta(hours=20),
                       ends_at=NOW + timedelta(hours=21), brief="Ann wants SSO.", brief_ready_at=NOW)
        later = Meeting(uid="later", title="Review", starts_at=NOW + timedelta(days=9), ends_at=NOW + timedelta(days=9, hours=1))
        cancelled = Meeting(uid="off", title="Cancelled", status="cancelled", starts_at=NOW + timedelta(days=1),
                            ends_at=NOW + timedelta(days=1, hours=1))
        held = Meeting(uid="held", title="Demo", status="completed", transcript="...", starts_at=NOW - timedelta(days=2),
                       ends_at=NOW - timedelta(days=2, hours=-1))
        s.add_all([soon, later, cancelled, held])
        s.flush()
        s.add(Task(title="Send SSO docs", meeting_id=held.id, kind="action_item", owner_id=book["rep"], due_at=NOW + timedelta(days=1)))
    with unit_of_work(readonly=True) as s:
        view = meetings.meetings_overview(s, actor=MANAGER)
    assert [m.title for m in view.upcoming] == ["Kick-off", "Review"]
    assert view.upcoming_total == 2 and view.upcoming_with_brief == 1 and view.upcoming[0].brief == "Ann wants SSO."
    assert view.upcoming[0].contact == "Ann Buyer"
    [demo] = view.past  # the cancelled meeting is neither upcoming nor past
    assert [(i.title, i.owner) for i in demo.action_items] == [("Send SSO docs", "Rita Rep")] and demo.has_transcript


# ---- agents and settings -----------------------------------------------------------------------------

def test_usage_by_day_sums_tokens_and_cost_per_agent_including_quiet_days(book):
    c = book["contact"]
    submit("follow_up", [task(c, "a")], subject=("contact", c), confidence=0.1, provider="anthropic", is_local=False,
           usage=Usage(input_tokens=1000, output_tokens=200, cost_usd=0.0123))
    submit("follow_up", [task(c, "b")], subject=("contact", c), confidence=0.1, provider="anthropic", is_local=False,
           usage=Usage(input_tokens=500, output_tokens=100, cost_usd=0.0100))
    with clock.frozen_at(NOW - timedelta(days=2)):
        submit("lead_scoring", [task(c, "c")], subject=("contact", c), confidence=0.1)
    with unit_of_work(readonly=True) as s:
        usage = agent_ops.agent_usage_by_day(s, days=7)
    assert len(usage) == 7 * 5  # every agent on every day, zeros included
    today = usage[(usage["day"] == NOW.date()) & (usage["agent"] == "follow_up")].iloc[0]
    assert (today.decisions, today.input_tokens, today.output_tokens, today.remote_decisions) == (2, 1500, 300, 2)
    assert today.cost_usd == pytest.approx(0.0223)
    earlier = usage[(usage["day"] == (NOW - timedelta(days=2)).date()) & (usage["agent"] == "lead_scoring")].iloc[0]
    assert earlier.decisions == 1 and earlier.cost_usd == 0


def test_heartbeats_tell_a_live_worker_from_a_silent_one(store):
    with unit_of_work() as s:
        s.add(WorkerHeartbeat(worker_id="w-live", status="busy", last_seen_at=NOW - timedelta(seconds=5), started_at=NOW))
        s.add(WorkerHeartbeat(worker_id="w-gone", status="idle", last_seen_at=NOW - timedelta(minutes=10), started_at=NOW))
    with unit_of_work(readonly=True) as s:
        beats = {b.worker_id: b for b in agent_ops.heartbeats(s)}
        status = agent_ops.scheduler_status(s)
    assert beats["w-live"].alive and not beats["w-gone"].alive
    assert status.workers_alive == 1 and status.seconds_since_last_beat == pytest.approx(5)


def test_runtime_config_shows_tiers_and_provider_but_never_the_key(store, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret-value")
    monkeypatch.setenv("CRM_MODEL_SMALL", "claude-haiku-5-5")
    with unit_of_work(readonly=True) as s:
        config = agent_ops.runtime_config(s)
    assert config.provider == "anthropic" and config.anthropic_key_set and config.model_small == "claude-haiku-5-5"
    assert "sk-secret-value" not in config.model_dump_json()
    assert [a.agent for a in config.agents] == ["lead_scoring", "follow_up", "enrichment", "pipeline", "meeting"]
    # The pipeline agent's per-deal flags are small-tier work; its whole-pipeline review is large.
    pipeline = next(a for a in config.agents if a.agent == "pipeline")
    assert pipeline.tier == "small" and pipeline.other_tiers == [
        f"the whole-pipeline review: large ({config.model_large})"]
    assert all(a.other_tiers == [] for a in config.agents if a.agent != "pipeline")


def test_policy_changes_are_found_saved_and_audited_with_the_user(store):
    with unit_of_work() as s:
        before = oversight_settings.policies(s)
    rows = [p.model_dump() for p in before]
    for row in rows:
        if row["action_type"] == "send_email":
            row["threshold"], row["always_ask"] = 0.75, True
    changes = oversight_settings.policy_changes(before, rows)
    assert [(c.action_type, c.threshold, c.always_ask, c.stakes) for c in changes] == [("send_email", 0.75, True, None)]
    with unit_of_work() as s:
        oversight_settings.save_policies(s, changes, actor=ADMIN)
    with unit_of_work(readonly=True) as s:
        saved = {p.action_type: p for p in oversight_settings.policies(s)}["send_email"]
        [entry] = activity_log.audit_log(s, activity_log.AuditFilters(actor="Ada Admin")).entries
    assert (saved.threshold, saved.always_ask, saved.updated_by) == (0.75, True, "Ada Admin")
    assert entry.event == "policy.updated"
    with unit_of_work() as s, pytest.raises(PermissionDenied, match="edit_policy") as refused:
        oversight_settings.save_policies(s, changes, actor=MANAGER)
    assert refused.value.right == "edit_policy"


def test_supervising_an_agent_until_a_date_queues_its_decisions(book):
    with unit_of_work() as s:
        view = oversight_settings.supervise(s, "follow_up", actor=ADMIN, until=(NOW + timedelta(days=3)).date())
    assert view.supervised and "supervised until 2026-11-23 23:59" in view.reason
    did = submit("follow_up", [task(book["contact"])], subject=("contact", book["contact"]), confidence=0.99)
    with unit_of_work(readonly=True) as s:
        assert s.get(Decision, did).status == "queued"
    with unit_of_work() as s:
        assert not oversight_settings.supervise(s, "follow_up", actor=ADMIN, off=True).supervised


# ---- approvals wrappers -------------------------------------------------------------------------------

def test_queue_page_counts_under_the_filters(book):
    c = book["contact"]
    for title in ("a", "b", "c"):
        submit("follow_up", [task(c, title)], subject=("contact", c), confidence=0.1)
    submit("lead_scoring", [task(c, "d")], subject=("contact", c), confidence=0.1)
    with unit_of_work(readonly=True) as s:
        page = approvals.approval_queue(s, agent="follow_up", limit=2)
        everything = approvals.approval_queue(s)
    assert page.total == 3 and len(page.items) == 2 and everything.total == 4


def test_approving_reports_who_and_what_ran(book):
    did = submit("follow_up", [task(book["contact"])], subject=("contact", book["contact"]), confidence=0.1)
    with unit_of_work() as s:
        outcome = approvals.approve_item(s, did, actor=MANAGER, note="fine")
    assert outcome.ok and outcome.status == "executed"
    assert outcome.message == f"Decision {did} (follow_up on Ann Buyer) approved by Morgan Manager and executed."
    with unit_of_work() as s, pytest.raises(InvalidTransition, match="decided by Morgan Manager"):
        approvals.reject_item(s, did, actor=MANAGER)


def test_edits_change_only_the_editable_text_and_are_executed(book):
    c = book["contact"]
    did = submit("follow_up", [email(c)], subject=("contact", c), confidence=0.1)
    with unit_of_work(readonly=True) as s:
        [item] = approvals.approval_queue(s).items
    assert approvals.edited_actions(item, {0: {"subject": "Next steps", "body": item.actions[0].params["body"]}}) is None
    edited = approvals.edited_actions(item, {0: {"body": "Hi Ann, Tuesday 10:00 works.", "contact_id": 1}})
    assert edited[0]["params"] == {"contact_id": c, "subject": "Next steps", "body": "Hi Ann, Tuesday 10:00 works."}
    with unit_of_work() as s:
        outcome = approvals.approve_item(s, did, actor=MANAGER, edited=edited)
    assert outcome.status == "executed" and "edited and approved by Morgan Manager" in outcome.message
    with unit_of_work(readonly=True) as s:
        [message] = s.scalars(select(OutboxMessage)).all()
        assert s.get(Decision, did).decided_by == "Morgan Manager"
    assert message.body == "Hi Ann, Tuesday 10:00 works." and message.recipient == "ann@acme.example"


def test_an_emptied_required_field_is_refused_with_the_field_named(book):
    c = book["contact"]
    did = submit("follow_up", [email(c)], subject=("contact", c), confidence=0.1)
    with unit_of_work(readonly=True) as s:
        [item] = approvals.approval_queue(s).items
    edited = approvals.edited_actions(item, {0: {"body": "   "}})
    with unit_of_work() as s, pytest.raises(UserError, match="body"):
        approvals.approve_item(s, did, actor=MANAGER, edited=edited)


def test_rejecting_bulk_approving_and_reverting(book):
    c = book["contact"]
    first, second, third = (submit("follow_up", [task(c, t)], subject=("contact", c), confidence=0.1) for t in "abc")
    with unit_of_work() as s:
        rejected = approvals.reject_item(s, first, actor=MANAGER, note="not now")
    assert rejected.status == "rejected" and "nothing ran" in rejected.message
    with unit_of_work() as s:
        results = approvals.bulk_approve_items(s, [first, second, third], actor=MANAGER)
    assert [(r.id, r.ok) for r in results] == [(first, False), (second, True), (third, True)]
    with unit_of_work(readonly=True) as s:
        assert {d.id for d in activity_log.revertable(s)} == {second, third}
        assert s.scalar(select(Task).where(Task.title == "b")) is not None
    with unit_of_work() as s:
        reverted = approvals.revert_item(s, second, actor=MANAGER, note="wrong contact")
    assert reverted.ok and reverted.status == "reverted"
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(Task).where(Task.title == "b")) is None


def test_decision_log_filters_by_agent_record_and_who_decided(book):
    c = book["contact"]
    a = submit("follow_up", [task(c, "a")], subject=("contact", c), confidence=0.1)
    submit("lead_scoring", [task(c, "b")], subject=("contact", c), confidence=0.1)
    with unit_of_work() as s:
        approvals.approve_item(s, a, actor=MANAGER)
    with unit_of_work(readonly=True) as s:
        by_agent = activity_log.decision_log(s, activity_log.AuditFilters(agent="follow_up"))
        by_user = activity_log.decision_log(s, activity_log.AuditFilters(actor="Morgan Manager"))
        by_record = activity_log.decision_log(s, activity_log.AuditFilters(subject_type="contact", subject_id=c), limit=1)
        audit = activity_log.audit_log(s, activity_log.AuditFilters(agent="follow_up"), limit=2)
    assert [r.id for r in by_agent.rows] == [a] and [r.id for r in by_user.rows] == [a]
    assert len(by_record.rows) == 1 and by_record.has_more
    assert len(audit.entries) == 2 and audit.has_more


def test_users_list_managers_first(book):
    with unit_of_work(readonly=True) as s:
        assert [u.name for u in users.list_users(s)] == ["Morgan Manager", "Rita Rep"]


# ---- import wrappers ------------------------------------------------------------------------------------

def test_import_wrappers_plan_apply_and_return_the_rejected_rows(store):
    data = b"First Name,Last Name,Email,Favourite colour\nAnn,Lee,ann@x.example,blue\nBob,Ray,not-an-email,red\n"
    table = imports.read_upload(data, "people.csv")
    suggested = imports.suggested_mapping("contacts", table.headers)
    assert suggested["Email"] == "email" and suggested["Favourite colour"].startswith("attributes.")
    mapping = imports.mapping_from_choices(table.headers, {"First Name": "first_name", "Last Name": "last_name",
                                                           "Email": "email", "Favourite colour": imports.IGNORE})
    with unit_of_work(readonly=True) as s:
        plan = imports.dry_run(s, "contacts", table, mapping)
    assert plan.counts.create == 1 and [e.row for e in plan.errors] == [3]
    rejects = imports.rejects_csv(plan).decode("utf-8-sig")
    assert rejects.splitlines()[0].startswith("row,errors") and "not-an-email" in rejects
    with unit_of_work() as s, pytest.raises(UserError):
        imports.run_import(s, plan, actor=ANN)
    seen = []
    with unit_of_work() as s:
        summary = imports.run_import(s, plan, actor=ANN, skip_invalid=True, progress=lambda f, m: seen.append(f))
    assert summary.created == 1 and summary.skipped_invalid == 1 and seen[-1] == 1.0
    with unit_of_work(readonly=True) as s:
        [ann] = s.scalars(select(Contact)).all()
        [entry] = activity_log.audit_log(s, activity_log.AuditFilters(actor="Ann")).entries
    assert ann.attributes == {} and entry.event == "import.applied"
