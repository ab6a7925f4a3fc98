"""write_enrichment: listed fields only, provenance per field, and never over a human's value unreviewed."""
from __future__ import annotations

from decimal import Decimal

import pytest

from auth_helpers import MANAGER
from crm_core import oversight
from crm_core.db import unit_of_work
from crm_core.models import Account, Contact, Decision
from fakes.crm_records import envelope, seed


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def enrich(crm, entity, entity_id, fields, confidence=0.9) -> Decision:
    action = ("write_enrichment", {"entity": entity, "entity_id": entity_id, "fields": fields})
    env = envelope("enrichment", [action], subject=(entity, entity_id), confidence=confidence)
    # Like a real enrichment context, the snapshot holds the facts the sources reported (intake checks
    # that links and addresses in a proposal come from its context).
    env = env.model_copy(update={"context_snapshot": {**env.context_snapshot, "facts": fields}})
    with unit_of_work() as session:
        [did] = oversight.submit(session, env)
    with unit_of_work(readonly=True) as session:
        return session.get(Decision, did)


def test_enriched_fields_are_written_with_their_source_and_confidence(crm):
    d = enrich(crm, "account", crm.account, {
        "employee_count": {"value": "250", "source": "company website", "confidence": 0.9},
        "annual_revenue": {"value": 12500000.5, "source": "annual report", "confidence": 0.8},
        "website": {"value": "https://acme.example", "source": "search", "confidence": 0.95},
    })
    assert d.status == "executed"
    with unit_of_work(readonly=True) as session:
        account = session.get(Account, crm.account)
    assert account.employee_count == 250 and account.annual_revenue == Decimal("12500000.50")
    assert account.attributes["website"] == "https://acme.example"
    assert account.attributes["source_file"] == "accounts.csv"  # untouched keys stay
    provenance = account.attributes["_enrichment"]
    assert provenance["employee_count"]["source"] == "company website" and provenance["employee_count"]["confidence"] == 0.9
    assert provenance["website"]["decision_id"] == d.id


def test_a_field_a_human_set_waits_for_review_and_a_human_may_then_allow_it(crm):
    d = enrich(crm, "account", crm.account, {"industry": {"value": "robotics", "source": "news", "confidence": 0.95}}, confidence=1.0)
    assert d.status == "queued" and f"would overwrite account {crm.account} field 'industry' was set by a human" in d.policy_reason
    with unit_of_work(readonly=True) as session:
        assert session.get(Account, crm.account).industry == "manufacturing"
    with unit_of_work() as session:
        assert oversight.approve(session, d.id, actor=MANAGER).status == "executed"
        assert session.get(Account, crm.account).industry == "robotics"


@pytest.fixture
def crm_sqlite(sqlite_store):
    with unit_of_work() as session:
        return seed(session)


# Validation, not storage: one back-end is enough for every field name.
@pytest.mark.parametrize("field", ["email", "owner_id", "manual_fields", "sensitive"])
def test_fields_outside_the_list_cannot_be_enriched(crm_sqlite, field):
    crm = crm_sqlite
    d = enrich(crm, "contact", crm.bob, {field: {"value": "x@evil.example", "source": "web", "confidence": 0.99}}, confidence=1.0)
    assert d.status == "queued"
    assert f"contact fields ['{field}'] cannot be enriched" in d.policy_reason
    with unit_of_work() as session:
        assert oversight.approve(session, d.id, actor=MANAGER).status == "failed"
        assert session.get(Contact, crm.bob).email == "bob@acme.example"


def test_a_value_of_the_wrong_type_fails_the_decision_cleanly(crm):
    d = enrich(crm, "account", crm.account, {"employee_count": {"value": "about fifty", "source": "web", "confidence": 0.9},
                                             "website": {"value": "https://acme.example", "source": "web", "confidence": 0.9}})
    assert d.status == "failed"
    assert d.error == f"action 0 (write_enrichment): account {crm.account}: field 'employee_count' needs a number, got 'about fifty'"
    with unit_of_work(readonly=True) as session:
        assert "website" not in session.get(Account, crm.account).attributes
