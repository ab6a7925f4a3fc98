"""Group and bulk decisions as services, on SQLite and PostgreSQL: urgency order, groups, rights per item."""
from __future__ import annotations

from sqlalchemy import func, select

from agents.base import DecisionEnvelope, Proposal, ProposedAction
from auth_helpers import actor_of, add_user
from crm_core import oversight
from crm_core.db import unit_of_work
from crm_core.models import Account, AuditEntry, Contact, Deal, Decision
from crm_core.services import queue_groups


def _submit(s, agent, action_type, params, *, subject, label, confidence=0.2, escalation=None):
    proposal = Proposal(subject_type=subject[0], subject_id=subject[1], subject_label=label, confidence=confidence,
                        reasoning="because", escalation=escalation,
                        actions=(ProposedAction(type=action_type, params=params, reason="test"),))
    envelope = DecisionEnvelope(agent=agent, proposals=(proposal,), prompt_version=f"{agent}/1", provider="offline",
                                model="offline", is_local=True, context_snapshot={})
    [decision_id] = oversight.submit(s, envelope)
    return decision_id


def _book(s):
    """A manager, a rep who owns one contact, and a queue: routine tasks, two emails, an escalation on a big deal."""
    manager = add_user(s, "Mona Manager", "manager")
    rep = add_user(s, "Rico Rep", "rep")
    acme = Account(name="Acme", name_key="acme")
    s.add(acme)
    s.flush()
    people = []
    for i, (first, owner) in enumerate((("Dana", rep), ("Eli", manager), ("Fay", manager), ("Gus", manager))):
        c = Contact(first_name=first, last_name="Smith", email=f"{first.lower()}@acme.example",
                    email_normalized=f"{first.lower()}@acme.example", account_id=acme.id, owner_id=owner.id)
        s.add(c)
        people.append(c)
    small = Deal(name="Acme pilot", account_id=acme.id, amount=5_000, currency="USD", stage="Demo", status="open")
    big = Deal(name="Acme enterprise", account_id=acme.id, amount=250_000, currency="USD", stage="Proposal", status="open")
    s.add_all([small, big])
    s.flush()
    ids = {
        "tasks": [_submit(s, "lead_scoring", "create_task", {"title": f"Call {c.first_name}", "contact_id": c.id},
                          subject=("contact", c.id), label=c.full_name) for c in people],
        "emails": [_submit(s, "follow_up", "send_email", {"contact_id": c.id, "subject": "Hello", "body": "Hi"},
                           subject=("contact", c.id), label=c.full_name) for c in people[:2]],
        "small": _submit(s, "pipeline", "create_task", {"title": "Look at the pilot", "deal_id": small.id},
                         subject=("deal", small.id), label=small.name, escalation="red deal"),
        "big": _submit(s, "pipeline", "create_task", {"title": "Look at the enterprise deal", "deal_id": big.id},
                       subject=("deal", big.id), label=big.name, escalation="red deal"),
    }
    return manager, rep, ids


def test_urgency_order_and_groups_with_names(store):
    with unit_of_work() as s:
        _manager, _rep, ids = _book(s)
    with unit_of_work(readonly=True) as s:
        view = queue_groups.overview(s)
    assert view.total == 8
    # Escalations first, the bigger deal before the smaller; then medium-stakes emails; then routine tasks.
    assert view.ids[:2] == [ids["big"], ids["small"]]
    assert set(view.ids[2:4]) == set(ids["emails"])
    titles = {g.key: g for g in view.groups}
    tasks = titles["lead_scoring|create_task|below_threshold"]
    assert tasks.count == 4 and tasks.title == "4 tasks for the rep" and len(tasks.preview) == queue_groups.PREVIEW
    assert tasks.preview[0].startswith("Task for the rep: “Call") and "Smith (Acme)" in tasks.preview[0]
    emails = titles["follow_up|send_email|below_threshold"]
    assert emails.cannot_undo == ["2 emails will be sent: a sent email cannot be unsent"]
    assert titles["pipeline|create_task|escalated"].escalated == 2


def test_a_filter_plan_decides_only_its_ids_each_through_the_state_machine(store):
    with unit_of_work() as s:
        manager, _rep, ids = _book(s)
        actor = actor_of(manager)
    with unit_of_work(readonly=True) as s:
        plan = queue_groups.plan(s, "approve", queue_groups.QueueFilter(agent="lead_scoring"))
    assert plan.count == 4 and plan.cannot_undo == [] and plan.confirm_label == "Yes, approve 4"
    with unit_of_work() as s:
        outcome = queue_groups.decide_many(s, plan.ids, verdict="approve", actor=actor)
    assert outcome.done == 4 and not outcome.failed and not outcome.skipped
    assert outcome.message == "4 approved and carried out by Mona Manager."
    with unit_of_work(readonly=True) as s:
        statuses = dict(s.execute(select(Decision.id, Decision.status).where(Decision.id.in_(ids["tasks"]))).all())
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.event == "decision.approved", AuditEntry.decision_id.in_(ids["tasks"])))
        left = s.scalar(select(func.count()).select_from(Decision).where(Decision.status == "queued"))
    assert set(statuses.values()) == {"executed"} and audited == 4 and left == 4


def test_a_rep_deciding_a_group_decides_only_what_their_rights_allow(store):
    with unit_of_work() as s:
        _manager, rep, ids = _book(s)
        actor = actor_of(rep)
    with unit_of_work() as s:
        outcome = queue_groups.decide_many(s, ids["tasks"], verdict="reject", actor=actor)
    # The rep owns Dana only: that task is theirs; the three on the manager's contacts are refused, named.
    assert outcome.done == 1 and len(outcome.skipped) == 3
    assert all("Rico Rep (a rep) cannot reject" in line and "decide_any" in line for line in outcome.skipped)
    with unit_of_work(readonly=True) as s:
        rejected = s.scalars(select(Decision.id).where(Decision.status == "rejected")).all()
    assert rejected == [ids["tasks"][0]]


def test_a_rep_sees_and_bulk_decides_only_the_queue_about_their_own_records(store):
    with unit_of_work() as s:
        manager, rep, ids = _book(s)
        rep_actor, manager_actor = actor_of(rep), actor_of(manager)
    with unit_of_work(readonly=True) as s:
        mine = queue_groups.overview(s, actor=rep_actor)
        everyone = queue_groups.overview(s, actor=manager_actor)
        plan = queue_groups.plan(s, "reject", actor=rep_actor)
    assert set(mine.ids) == {ids["tasks"][0], ids["emails"][0]} and mine.everything == 2
    assert everyone.total == 8
    assert set(plan.ids) == set(mine.ids) and plan.what == "Reject all 2 decisions under the current filters"
