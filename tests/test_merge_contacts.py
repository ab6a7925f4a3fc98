"""merge_contacts: one contact folded into another, and a revert that restores both exactly."""
from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import clock
from crm_core.actions import ActionContext, ExecResult, get_spec
from crm_core.actions.merge_contacts import ALL_COLUMNS, MergeContactsParams
from crm_core.db import unit_of_work
from crm_core.errors import NotFound, UserError
from crm_core.importing import apply_import, plan_import, read_csv
from crm_core.models import (
    Account,
    Activity,
    Contact,
    Deal,
    Decision,
    Email,
    Meeting,
    OutboxMessage,
    ScoreHistory,
    Task,
)
from crm_core.oversight.policy import needs_human
from crm_core.settings import get_settings

T0 = datetime(2025, 1, 10, 9, 0)
T1 = datetime(2025, 3, 1, 12, 0)


def seed() -> tuple[int, int]:
    """A kept contact and a duplicate with records of its own; returns (target_id, source_id)."""
    with clock.frozen_at(T0), unit_of_work() as s:
        acme = Account(name="Acme", name_key="acme", domain="acme.example")
        s.add(acme)
        s.flush()
        target = Contact(first_name="Jane", last_name="Doe", email="jane.doe@acme.example",
                         email_normalized="jane.doe@acme.example", lifecycle_stage="mql", score=40, tier="warm",
                         attributes={"segment": "SMB"}, manual_fields=["title"], title="VP Sales",
                         created_at=datetime(2024, 5, 1), last_activity_at=datetime(2025, 1, 1))
        source = Contact(first_name="Jane", last_name="D.", email="janedoe+news@acme.example",
                         email_normalized="janedoe+news@acme.example", external_id="HS-77", phone="+1 415 555 0100",
                         phone_normalized="+14155550100", account_id=acme.id, lifecycle_stage="customer",
                         outcome_at=datetime(2024, 12, 24), attributes={"segment": "Mid", "plan": "pro"},
                         notes="met at the fair", created_at=datetime(2024, 3, 1),
                         last_activity_at=datetime(2025, 1, 5), sensitive=True)
        s.add_all([target, source])
        s.flush()
        deal = Deal(name="Acme pro", stage="Won", status="won", primary_contact_id=source.id)
        s.add(deal)
        s.flush()
        meeting = Meeting(uid="m-1", title="Demo", contact_id=source.id, starts_at=T0, ends_at=T0)
        s.add(meeting)
        s.add_all([
            Activity(type="call", occurred_at=T0, contact_id=source.id),
            Activity(type="note", occurred_at=T0, contact_id=target.id),
            Email(thread_id="t1", contact_id=source.id, direction="inbound", sent_at=T0),
            Task(title="Call back", contact_id=source.id),
            ScoreHistory(contact_id=source.id, score=70, tier="hot", scored_at=T0),
            OutboxMessage(kind="email", contact_id=source.id, recipient="janedoe+news@acme.example"),
        ])
        return target.id, source.id


def decision_for(target: int, source: int) -> int:
    with unit_of_work() as s:
        d = Decision(agent="import", subject_type="contact", subject_id=target, status="approved",
                     actions=[{"type": "merge_contacts", "params": {"source_contact_id": source,
                                                                    "target_contact_id": target}}])
        s.add(d)
        s.flush()
        return d.id


def full_state() -> dict[str, object]:
    """Every contact row whole and every pointer at a contact: what 'exactly' is measured on."""
    with unit_of_work(readonly=True) as s:
        state: dict[str, object] = {
            "contacts": {c.id: {k: getattr(c, k) for k in ALL_COLUMNS} for c in s.scalars(select(Contact))}}
        for name, model, column in (("activities", Activity, "contact_id"), ("emails", Email, "contact_id"),
                                    ("meetings", Meeting, "contact_id"), ("tasks", Task, "contact_id"),
                                    ("deals", Deal, "primary_contact_id"), ("scores", ScoreHistory, "contact_id"),
                                    ("outbox", OutboxMessage, "contact_id")):
            state[name] = sorted(s.execute(select(model.id, getattr(model, column))).all())
        return state


def execute(target: int, source: int) -> ExecResult:
    spec = get_spec("merge_contacts")
    decision_id = decision_for(target, source)
    with clock.frozen_at(T1), unit_of_work() as s:
        ctx = ActionContext(session=s, decision=s.get(Decision, decision_id), actor="manager", settings=get_settings())
        return spec.execute(ctx, MergeContactsParams(source_contact_id=source, target_contact_id=target))


def revert(target: int, source: int, done: ExecResult) -> str:
    spec = get_spec("merge_contacts")
    with unit_of_work() as s:
        decision = s.scalars(select(Decision)).first()
        ctx = ActionContext(session=s, decision=decision, actor="manager", settings=get_settings())
        return spec.revert(ctx, MergeContactsParams(source_contact_id=source, target_contact_id=target), done)


def test_merge_moves_every_record_and_fills_only_empty_fields(store):
    target, source = seed()
    done = execute(target, source)
    with unit_of_work(readonly=True) as s:
        assert s.get(Contact, source) is None
        kept = s.get(Contact, target)
        assert (kept.first_name, kept.last_name, kept.email, kept.title) == ("Jane", "Doe", "jane.doe@acme.example", "VP Sales")
        assert (kept.external_id, kept.phone_normalized, kept.account.name) == ("HS-77", "+14155550100", "Acme")
        assert (kept.lifecycle_stage, kept.outcome_at) == ("customer", datetime(2024, 12, 24))
        assert (kept.score, kept.sensitive, kept.notes) == (40, True, "met at the fair")
        assert kept.created_at == datetime(2024, 3, 1) and kept.last_activity_at == datetime(2025, 1, 5)
        assert kept.attributes == {"segment": "SMB", "plan": "pro", "other_emails": ["janedoe+news@acme.example"],
                                   "merged_from": [source]}
        for model, column in ((Activity, Activity.contact_id), (Email, Email.contact_id), (Meeting, Meeting.contact_id),
                              (Task, Task.contact_id), (Deal, Deal.primary_contact_id),
                              (ScoreHistory, ScoreHistory.contact_id), (OutboxMessage, OutboxMessage.contact_id)):
            assert set(s.scalars(select(column))) == {target}, model.__name__
    assert done.result["repointed"] == {"activities": 1, "emails": 1, "meetings": 1, "tasks": 1, "deals": 1,
                                        "score_history": 1, "outbox": 1}


def test_revert_restores_both_contacts_and_every_pointer_exactly(store):
    target, source = seed()
    before = full_state()
    done = execute(target, source)
    assert full_state() != before
    note = revert(target, source, done)
    assert full_state() == before
    assert note == f"contact {source} restored beside contact {target}; 7 record(s) pointed back"


def test_revert_survives_a_json_round_trip_of_the_before_image(store):
    import json

    target, source = seed()
    before = full_state()
    done = execute(target, source)
    stored = ExecResult(before_image=json.loads(json.dumps(done.before_image)), result=json.loads(json.dumps(done.result)))
    revert(target, source, stored)
    assert full_state() == before


def test_revert_is_refused_when_a_merged_field_was_changed_afterwards(store):
    target, source = seed()
    done = execute(target, source)
    with unit_of_work() as s:
        s.get(Contact, target).phone_normalized = "+14155559999"
    with pytest.raises(UserError, match=r"contact \d+ changed after the action ran \(phone_normalized"):
        revert(target, source, done)


def test_revert_of_a_contact_without_external_id_is_not_blocked_by_other_contacts_without_one(store):
    # Regression: the clash check compared external_id == None, which matched every contact lacking one.
    target, source = seed()
    with unit_of_work() as s:
        s.get(Contact, source).external_id = None
        s.add(Contact(first_name="Unrelated", email="someone@else.example", email_normalized="someone@else.example"))
        s.add(Contact(first_name="No email either"))
    before = full_state()
    done = execute(target, source)
    note = revert(target, source, done)
    assert full_state() == before
    assert note.startswith(f"contact {source} restored beside contact {target}")


def test_revert_without_email_or_external_id_restores_the_source(store):
    target, source = seed()
    with unit_of_work() as s:
        c = s.get(Contact, source)
        c.external_id = c.email = c.email_normalized = None
        s.add(Contact(first_name="Bare", last_name="Contact"))
    before = full_state()
    done = execute(target, source)
    revert(target, source, done)
    assert full_state() == before


def test_revert_is_still_refused_when_another_contact_took_the_source_email(store):
    target, source = seed()
    done = execute(target, source)
    with unit_of_work() as s:
        # The merged contact's email was left free (the target kept its own): someone else took it.
        s.add(Contact(id=1000, first_name="Other", email="janedoe+news@acme.example",
                      email_normalized="janedoe+news@acme.example"))
    with pytest.raises(UserError, match=r"contact 1000 now has the email or external id of contact"):
        revert(target, source, done)


def test_revert_twice_is_refused(store):
    target, source = seed()
    done = execute(target, source)
    revert(target, source, done)
    with pytest.raises(UserError, match="was already undone"):
        revert(target, source, done)


def test_merging_a_contact_into_itself_or_a_missing_one_is_refused(store):
    target, _ = seed()
    with pytest.raises(ValidationError, match="cannot be merged into itself"):
        MergeContactsParams(source_contact_id=target, target_contact_id=target)
    with pytest.raises(NotFound, match="contact 999 not found"):
        execute(target, 999)


def test_an_import_merge_proposal_executes_through_the_registry_and_reverts(store):
    data = b"Email,Name,Company\njane.doe@acme.example,Jane Doe,Acme\njanedoe+crm@acme.example,Jane Doe,Acme\n"
    with unit_of_work() as s:
        plan = plan_import(s, "contacts", read_csv(data, "c.csv"))
        [proposal_id] = apply_import(s, plan).merge_proposals
    before = full_state()
    spec = get_spec("merge_contacts")
    with unit_of_work() as s:
        decision = s.get(Decision, proposal_id)
        [action] = decision.actions
        params = spec.Params.model_validate(action["params"])
        done = spec.execute(ActionContext(session=s, decision=decision, actor="manager", settings=get_settings()), params)
    with unit_of_work(readonly=True) as s:
        assert len(s.scalars(select(Contact)).all()) == 1
    with unit_of_work() as s:
        decision = s.get(Decision, proposal_id)
        spec.revert(ActionContext(session=s, decision=decision, actor="manager", settings=get_settings()), params, done)
    assert full_state() == before


def test_the_spec_always_asks_a_human_and_names_only_the_fields_it_fills(store):
    target, source = seed()
    spec = get_spec("merge_contacts")
    params = MergeContactsParams(source_contact_id=source, target_contact_id=target)
    with unit_of_work(readonly=True) as s:
        assert needs_human(s, spec, params)
        fields = {ref.field for ref in spec.touched_fields(s, params)}
    assert {"external_id", "phone", "account_id", "lifecycle_stage", "attributes"} <= fields
    assert not {"first_name", "email", "title", "score"} & fields


def test_a_human_approves_an_import_merge_in_the_queue_and_reverts_it(store):
    from crm_core.oversight import queue

    data = b"Email,Name,Phone\nana@x.example,Ana Lima,+55 11 91234 5678\nana.lima@y.example,Ana L.,+5511912345678\n"
    with unit_of_work() as s:
        plan = plan_import(s, "contacts", read_csv(data, "c.csv"))
        [proposal_id] = apply_import(s, plan).merge_proposals
    before = full_state()
    with unit_of_work() as s:
        assert queue.approve(s, proposal_id, actor=MANAGER).status == "executed"
    with unit_of_work(readonly=True) as s:
        assert len(s.scalars(select(Contact)).all()) == 1
    with unit_of_work() as s:
        assert queue.revert(s, proposal_id, actor=MANAGER).status == "reverted"
    assert full_state() == before
