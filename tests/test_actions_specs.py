"""Each action type is declared once, in its spec: the lists oversight and the queue use are read
from the registry, agree with the reasoning wing's `ActionType`, and hold the same numbers as before."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.base import ACTION_TYPES
from auth_helpers import MANAGER
from crm_core import actions, oversight
from crm_core.actions import REGISTRY, SPEC_MODULES, ActionParams, get_spec, register
from crm_core.actions.common import CrmAction, FieldUpdateAction
from crm_core.db import unit_of_work
from crm_core.models import ActionExecution, Contact, Deal, Meeting
from crm_core.models.enums import Stakes
from crm_core.oversight.defaults import DEFAULT_POLICIES, DefaultPolicy
from crm_core.oversight.policy import needs_human
from crm_core.services.approvals import EDITABLE_TEXT
from fakes.crm_records import envelope, seed

ACTIONS_DIR = Path(actions.__file__).parent

# The table as it stood before the specs carried it: a changed number must be a deliberate edit here.
POLICIES_BEFORE = {
    "update_lead_score": DefaultPolicy("low", 0.5),
    "create_task": DefaultPolicy("low", 0.7),
    "write_enrichment": DefaultPolicy("low", 0.65),
    "set_deal_risk": DefaultPolicy("low", 0.45),
    "save_meeting_brief": DefaultPolicy("low", 0.6),
    "post_notification": DefaultPolicy("low", 0.7),
    "create_action_items": DefaultPolicy("medium", 0.8),
    "send_email": DefaultPolicy("medium", 0.9),
    "schedule_meeting": DefaultPolicy("medium", 0.85),
    "move_deal_stage": DefaultPolicy("high", 0.95),
    "send_quote": DefaultPolicy("critical", 1.0, always_ask=True),
    "merge_contacts": DefaultPolicy("high", 1.0, always_ask=True),
    "normalise_values": DefaultPolicy("high", 1.0, always_ask=True),
}
EDITABLE_BEFORE = {
    "send_email": (("subject", False), ("body", True)),
    "send_quote": (("subject", False), ("body", True)),
    "create_task": (("title", False), ("description", True)),
    "post_notification": (("title", False), ("text", True)),
    "set_deal_risk": (("reason", True), ("action", True)),
    "save_meeting_brief": (("brief", True),),
}


def test_the_registry_holds_exactly_the_action_types_the_agents_may_propose():
    assert set(REGISTRY) == set(ACTION_TYPES)


def test_every_module_that_declares_a_spec_is_imported_by_the_package():
    declaring = set()
    for path in ACTIONS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.ClassDef) and any(isinstance(d, ast.Name) and d.id == "register" for d in node.decorator_list)
               for node in tree.body):
            declaring.add(f"crm_core.actions.{path.stem}")
    assert declaring == {m.__name__ for m in SPEC_MODULES}
    assert {type(spec).__module__ for spec in REGISTRY.values()} == declaring


def test_the_registry_module_imports_neither_the_package_nor_a_spec_module_and_nothing_inside_a_function():
    # base <- spec modules <- package: an import back up would be the cycle the package used to have.
    tree = ast.parse((ACTIONS_DIR / "base.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {f"crm_core.{a.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "crm_core" for a in node.names}
    assert not imported & ({"crm_core.actions", "crm_core.actions.common"} | {m.__name__ for m in SPEC_MODULES})
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert not [f.name for f in functions if any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(f))]


def test_the_default_policies_are_read_from_the_specs_with_the_same_numbers_as_before():
    assert DEFAULT_POLICIES == POLICIES_BEFORE
    for action_type, spec in REGISTRY.items():
        assert DEFAULT_POLICIES[action_type] == (spec.stakes, spec.default_threshold, spec.always_ask)
        assert isinstance(spec.stakes, Stakes)


def test_the_editable_text_is_read_from_the_specs_and_names_text_params():
    assert EDITABLE_TEXT == EDITABLE_BEFORE
    for action_type, fields in EDITABLE_TEXT.items():
        params = get_spec(action_type).Params.model_fields
        for name, _multiline in fields:
            assert name in params, f"{action_type}: {name} is not a parameter"
            assert "str" in str(params[name].annotation), f"{action_type}: {name} is not text"


def test_no_action_decides_whether_a_human_looks():
    # The action executes; whether a person must look is declared (asks_because) or is oversight's rule.
    assert not [t for t, spec in REGISTRY.items() if hasattr(spec, "needs_human")]
    asked = {t for t, spec in REGISTRY.items() if spec.asks_because}
    assert asked == {"merge_contacts", "normalise_values"}
    assert all(REGISTRY[t].always_ask for t in asked)


class _Bare(ActionParams):
    pass


def _spec_class(**declared) -> type[CrmAction]:
    namespace = {"type": "a_type_nobody_proposes", "Params": _Bare,
                 "execute": lambda self, ctx, params: None, "revert": lambda self, ctx, params, done: ""} | declared
    return type("Declared", (CrmAction,), namespace)


def test_a_spec_without_its_policy_is_refused_when_it_registers():
    with pytest.raises(TypeError, match="stakes, default_threshold"):
        register(_spec_class())
    with pytest.raises(TypeError, match="between 0 and 1"):
        register(_spec_class(stakes=Stakes.LOW, default_threshold=1.5))
    with pytest.raises(TypeError, match="declared twice"):
        register(_spec_class(type="send_email", stakes=Stakes.LOW, default_threshold=0.5))
    assert "a_type_nobody_proposes" not in REGISTRY and REGISTRY["send_email"].default_threshold == 0.9


@pytest.mark.parametrize(("to_stage", "status", "expected"), [
    ("Closed Won", "open", "moving a deal to won always needs a human"),
    ("closed_lost", "open", "moving a deal to lost always needs a human"),
    ("Negotiation", "won", "is won: reopening it needs a human"),
    ("Negotiation", "open", None),
])
def test_closing_or_reopening_a_deal_is_the_policy_s_rule(store, to_stage, status, expected):
    spec = get_spec("move_deal_stage")
    with unit_of_work() as session:
        crm = seed(session)
        session.get(Deal, crm.deal).status = status
    with unit_of_work(readonly=True) as session:
        why = needs_human(session, spec, spec.Params.model_validate({"deal_id": crm.deal, "to_stage": to_stage}))
    assert (why is None) if expected is None else (expected in why)


def _field_update_cases(crm) -> dict[str, tuple[tuple[str, int], dict]]:
    return {
        "update_lead_score": (("contact", crm.ann), {"contact_id": crm.ann, "score": 91, "tier": "hot", "next_action": "call"}),
        "move_deal_stage": (("deal", crm.deal), {"deal_id": crm.deal, "to_stage": "Proposal"}),
        "set_deal_risk": (("deal", crm.deal), {"deal_id": crm.deal, "risk": "red", "reason": "silent 21 days"}),
        "write_enrichment": (("contact", crm.bob), {"entity": "contact", "entity_id": crm.bob, "fields": {
            "title": {"value": "CFO", "source": "company website", "confidence": 0.9},
            "city": {"value": "Lyon", "source": "search", "confidence": 0.8}}}),
        "save_meeting_brief": (("meeting", crm.meeting), {"meeting_id": crm.meeting, "brief": "Ann wants SSO."}),
    }


# The stored shape of each before-image and result: executions recorded before the shared base
# must still revert, so the keys may not move.
SHAPES = {
    "update_lead_score": ({"contact": ["score", "tier", "next_action", "score_updated_at", "updated_at"]},
                          ["score_history_id", "after", "updated_at"]),
    "move_deal_stage": ({"deal": ["stage", "stage_entered_at", "status", "closed_at", "updated_at"], "created": None},
                        ["stage_history_id", "activity_id", "after", "updated_at"]),
    "set_deal_risk": ({"deal": ["risk", "risk_reason", "risk_action", "risk_updated_at", "updated_at"]}, ["after", "updated_at"]),
    "write_enrichment": ({"contact": ["title", "attributes", "updated_at"]}, ["after", "updated_at"]),
    "save_meeting_brief": ({"meeting": ["brief", "brief_ready_at", "updated_at"]}, ["after", "updated_at"]),
}


def test_the_field_updates_share_one_base():
    assert {t for t, spec in REGISTRY.items() if isinstance(spec, FieldUpdateAction)} == set(SHAPES)


# A person edits the record after the action ran: (model, field, value, what the refusal names).
LATER_EDITS = {
    "update_lead_score": (Contact, "score", 12, "contact {ann} score"),
    "move_deal_stage": (Deal, "stage", "Discovery", "deal {deal} stage"),
    "set_deal_risk": (Deal, "risk", "green", "deal {deal} risk"),
    "write_enrichment": (Contact, "title", "COO", "contact {bob}"),
    "save_meeting_brief": (Meeting, "brief", "Rewritten by hand.", "meeting {meeting} brief"),
}


@pytest.mark.parametrize("action_type", sorted(SHAPES))
def test_a_field_update_keeps_the_before_image_shape_and_refuses_to_revert_over_a_later_edit(store, action_type):
    with unit_of_work() as session:
        crm = seed(session)
    subject, params = _field_update_cases(crm)[action_type]
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("pipeline", [(action_type, params)], subject=subject, confidence=0.0))
    with unit_of_work() as session:
        assert oversight.approve(session, did, actor=MANAGER).status == "executed"
    with unit_of_work(readonly=True) as session:
        [exe] = session.scalars(select(ActionExecution).where(ActionExecution.decision_id == did)).all()
        before_image, result = exe.before_image, exe.result
    images, result_keys = SHAPES[action_type]
    assert set(before_image) == set(images)
    for key, fields in images.items():
        if fields is not None:
            assert list(before_image[key]) == fields
    assert list(result) == result_keys
    model, field, value, what = LATER_EDITS[action_type]
    with unit_of_work() as session:
        setattr(session.get(model, subject[1]), field, value)
    with unit_of_work() as session:
        d = oversight.revert(session, did, actor=MANAGER)
    assert d.status == "executed"
    assert f"{what.format(**vars(crm))} changed after the action ran ({field}: now" in d.error
