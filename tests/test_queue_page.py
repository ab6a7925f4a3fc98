"""The approval queue on a real day one: the demo book after one pass of every agent.

The book is seeded (scale 0.3) and every agent run once over it with the offline reasoner, as the
first scheduler pass of `make run` does, into a template per session (tests/day_one.py); each test gets its own copy. Checks that the
queue is grouped and ordered by urgency, that group and filter actions confirm first and decide
each item through the state machine with its own audit entry, that one-at-a-time review works,
and that no card, group, table or audit row shows a raw action name, a record id or a prompt version.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from auth_helpers import sign_in
from day_one import day_one, day_one_template  # noqa: F401 - fixtures
from page_text import RAW_ID, leaks, shown_text

from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.models import AuditEntry, Decision, User
from crm_core.oversight import wording
from crm_core.oversight.views import queue_entries, urgency_key
from crm_core.services import queue_groups

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
pytestmark = pytest.mark.timeout(900)  # the session's first day-one test seeds and runs every agent once


def manager() -> Actor:
    with unit_of_work(readonly=True) as s:
        user = s.scalars(select(User).where(User.role == "manager").order_by(User.name)).first()
        return Actor(user_id=user.id, name=user.name, role="manager", via="password")


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    sign_in(at, manager().name)
    at.run()
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


QUEUE_VIEWS = ("By group", "One at a time", "List", "Decided")


def open_view(at: AppTest, tab: str) -> AppTest:
    at.session_state["queue_tab"] = tab  # only the open view is drawn
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def queued_count() -> int:
    with unit_of_work(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(Decision).where(Decision.status == "queued")) or 0)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def group_key(group: queue_groups.QueueGroup) -> str:
    return group.key.replace("|", "__").replace("+", "_")


# ---- plain words ---------------------------------------------------------------------------------------

def test_queue_and_audit_pages_show_no_raw_action_names_ids_or_prompt_versions(day_one):
    assert day_one.queued > 0
    at = app("approval_queue")
    texts = []
    for view in QUEUE_VIEWS:
        texts += shown_text(open_view(at, view))
    assert any("waiting" in t for t in texts) and any("Why it waits" in t for t in texts)
    assert not leaks(texts)
    # Decide a few so the audit log holds approvals, executions with before/after and rejections.
    open_view(at, "By group")
    click(at, f"queue_group_approve_{group_key(read_overview().groups[-1])}")
    click(at, "queue_confirm_yes")
    click(open_view(at, "One at a time"), "queue_focus_reject")
    audit = app("activity_audit")
    texts = shown_text(audit)
    assert any("→" in t for t in texts), "the audit log says what changed from what to what"
    assert not leaks(texts)
    assert not [t for t in texts if t.lstrip().startswith("{")], "raw JSON in the audit log"


def read_overview(filters: queue_groups.QueueFilter = queue_groups.QueueFilter()) -> queue_groups.QueueOverview:
    with unit_of_work(readonly=True) as s:
        return queue_groups.overview(s, filters)


# ---- order and groups -------------------------------------------------------------------------------------

def test_queue_is_ordered_by_urgency_escalations_first(day_one):
    with unit_of_work(readonly=True) as s:
        entries = queue_entries(s)
    assert len(entries) == day_one.queued
    keys = [urgency_key(e.stakes, e.escalated, e.deal_value, e.expires_at, e.id) for e in entries]
    assert keys == sorted(keys)
    escalated = [e.escalated for e in entries]
    assert escalated == sorted(escalated, reverse=True), "every escalation comes before any routine item"
    view = read_overview()
    assert sum(g.count for g in view.groups) == view.total == day_one.queued
    assert len(view.groups) <= 15, "the same proposal is grouped, not listed hundreds of times"
    for g in view.groups:
        assert g.preview and len(g.preview) <= queue_groups.PREVIEW and len(g.ids) == g.count


def test_group_approve_confirms_how_many_and_what_cannot_be_undone_then_decides_each_once(day_one):
    view = read_overview()
    emails = next((g for g in view.groups if g.action_type == "send_email"), None)
    if emails is None:
        pytest.skip("no email waits on this day one")
    at = app("approval_queue")
    click(at, f"queue_group_approve_{group_key(emails)}")
    confirm = " ".join(shown_text(at))
    assert f"Approve {emails.count} emails to contacts" in confirm or f"Approve {emails.count} email" in confirm
    assert "a sent email cannot be unsent" in confirm
    assert queued_count() == day_one.queued, "nothing is decided before the confirmation"
    click(at, "queue_confirm_no")
    assert queued_count() == day_one.queued and not [b for b in at.button if b.key == "queue_confirm_yes"]
    click(at, f"queue_group_approve_{group_key(emails)}")
    click(at, "queue_confirm_yes")
    with unit_of_work(readonly=True) as s:
        statuses = dict(s.execute(select(Decision.id, Decision.status).where(Decision.id.in_(emails.ids))).all())
        approvals = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.event == "decision.approved", AuditEntry.decision_id.in_(emails.ids)))
    assert set(statuses.values()) <= {"executed", "failed"} and approvals == emails.count
    assert queued_count() == day_one.queued - emails.count
    assert any(f"{emails.count} approved and carried out" in s.value or "approved but failed" in s.value
               for s in [*at.success, *at.warning])


def test_the_day_one_queue_is_cleared_with_at_most_ten_clicks(day_one):
    at = app("approval_queue")
    clicks = 0
    # The manager approves the three biggest routine groups, then rejects what is left in one go.
    for group in sorted(read_overview().groups, key=lambda g: -g.count)[:3]:
        click(at, f"queue_group_approve_{group_key(group)}")
        click(at, "queue_confirm_yes")
        clicks += 2
    if queued_count():
        click(at, "queue_filter_reject")
        click(at, "queue_confirm_yes")
        clicks += 2
    assert queued_count() == 0 and clicks <= 10
    with unit_of_work(readonly=True) as s:
        verdicts = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.event.in_(("decision.approved", "decision.rejected"))))
    assert verdicts == day_one.queued, "each decision went through the state machine and the audit on its own"
    assert any("The queue is empty" in i.value for i in at.info)


def test_filter_action_takes_only_what_the_filters_show(day_one):
    at = app("approval_queue")
    at.selectbox(key="queue_agent").set_value("enrichment").run()
    view = read_overview(queue_groups.QueueFilter(agent="enrichment"))
    click(at, "queue_filter_reject")
    assert any(f"Reject all {view.total} decision" in t for t in shown_text(at))
    click(at, "queue_confirm_yes")
    with unit_of_work(readonly=True) as s:
        left = dict(s.execute(select(Decision.agent, func.count()).where(Decision.status == "queued")
                              .group_by(Decision.agent)).all())
    assert "enrichment" not in left and sum(left.values()) == day_one.queued - view.total


def test_one_at_a_time_review_approves_rejects_and_skips_the_most_urgent_first(day_one):
    at = app("approval_queue")
    ids = read_overview().ids
    assert not [b for b in at.button if b.key == "queue_focus_approve"], "no shortcut acts on an item nobody sees"
    open_view(at, "One at a time")
    assert at.button(key="queue_focus_approve").proto.shortcut  # keyboard-friendly
    click(at, "queue_focus_skip")
    click(at, "queue_focus_reject")
    click(at, "queue_focus_approve")
    with unit_of_work(readonly=True) as s:
        status = dict(s.execute(select(Decision.id, Decision.status).where(Decision.id.in_(ids[:3]))).all())
    assert status[ids[0]] == "queued"
    assert status[ids[1]] == "rejected"
    assert status[ids[2]] in ("executed", "failed")


# ---- the service -----------------------------------------------------------------------------------------

def test_decide_many_skips_what_someone_decided_meanwhile_and_decides_the_rest(day_one):
    actor = manager()
    with unit_of_work() as s:
        plan = queue_groups.plan(s, "reject", queue_groups.QueueFilter(agent="lead_scoring")) if any(
            g.agent == "lead_scoring" for g in queue_groups.overview(s).groups) else queue_groups.plan(s, "reject")
    first, rest = plan.ids[0], plan.ids[1:]
    with unit_of_work() as s:
        queue_groups.decide_one(s, first, verdict="reject", actor=actor, note="looked at it first")
    with unit_of_work() as s:
        outcome = queue_groups.decide_many(s, plan.ids, verdict="reject", actor=actor)
    assert outcome.done == len(rest) and len(outcome.skipped) == 1
    assert "it is rejected" in outcome.skipped[0] and not RAW_ID.search(outcome.skipped[0])
    with unit_of_work(readonly=True) as s:
        rejected = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.event == "decision.rejected", AuditEntry.decision_id.in_(plan.ids)))
    assert rejected == len(plan.ids), "one audit entry per decision, the meanwhile-decided one not twice"


def test_a_plan_never_decides_what_arrived_after_the_confirmation(day_one):
    actor = manager()
    with unit_of_work(readonly=True) as s:
        plan = queue_groups.plan(s, "reject")
    with unit_of_work() as s:
        latest = s.scalars(select(Decision).where(Decision.status == "queued").order_by(Decision.id.desc())).first()
        latest_id = latest.id
    planned = [i for i in plan.ids if i != latest_id]
    with unit_of_work() as s:
        queue_groups.decide_many(s, planned, verdict="reject", actor=actor)
    assert queued_count() == 1
    with unit_of_work(readonly=True) as s:
        assert s.get(Decision, latest_id).status == "queued"


def test_an_empty_group_says_so_instead_of_deciding_nothing_silently(day_one):
    with unit_of_work(readonly=True) as s:
        with pytest.raises(queue_groups.UserError, match="that group is empty now"):
            queue_groups.plan(s, "approve", group="follow_up|send_quote|always_asks")
        with pytest.raises(queue_groups.UserError, match="approve or reject"):
            queue_groups.plan(s, "delete")


def test_reasons_on_cards_never_contradict_their_numbers(day_one):
    with unit_of_work(readonly=True) as s:
        view = queue_groups.overview(s)
        items = queue_groups.cards(s, view.ids)
    for item in items:
        for line in item.why:
            match = re.search(r"confidence ([0-9.]+)% is below the ([0-9.]+)%", line)
            if match:
                assert float(match.group(1)) < float(match.group(2)), line
            match = re.search(r"confidence ([0-9.]+)% meets the ([0-9.]+)%", line)
            if match:
                assert float(match.group(1)) >= float(match.group(2)), line
        assert wording.REASON_LABELS[item.reason_kind]
