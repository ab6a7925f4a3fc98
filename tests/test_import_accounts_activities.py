"""Importing accounts (domain, then name) and activities (append-only, last activity kept current)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.importing import ImportMapping, ImportRejected, apply_import, plan_import, read_csv
from crm_core.models import Account, Activity, Contact

NOW = datetime(2025, 6, 1, 12, 0)


def run(data: bytes, kind: str, mapping=None, **kwargs):
    with clock.frozen_at(NOW), unit_of_work() as session:
        plan = plan_import(session, kind, read_csv(data, f"{kind}.csv"), mapping)
        return plan, apply_import(session, plan, **kwargs)


def accounts() -> list[Account]:
    with unit_of_work(readonly=True) as session:
        return list(session.scalars(select(Account).order_by(Account.id)))


def test_accounts_upsert_on_domain_then_on_name(store):
    run(b"Company Name,Website,Industry,Employees,Annual Revenue\n"
        b"Acme Corp,https://acme.example,Software,120,\"$12,000,000\"\nGlobex,,Energy,,\n", "accounts")
    _, summary = run(b"Company,Domain,Country\nACME Corporation,www.acme.example,Portugal\nglobex ,,Germany\n", "accounts")
    assert (summary.created, summary.updated) == (0, 2)
    acme, globex = accounts()
    assert (acme.name, acme.name_key, acme.domain, acme.country) == ("ACME Corporation", "acme corporation", "acme.example", "Portugal")
    assert (acme.employee_count, acme.annual_revenue, acme.industry) == (120, Decimal("12000000.00"), "Software")
    assert (globex.name, globex.country) == ("globex", "Germany")


def test_a_scale_in_the_mapping_turns_millions_into_whole_units(store):
    mapping = ImportMapping(columns={"revenue": "annual_revenue"}, scale={"revenue": 1_000_000})
    run(b"account,revenue\nAcme Corporation,1100.04\n", "accounts", mapping)
    assert accounts()[0].annual_revenue == Decimal("1100040000.00")


def test_two_rows_for_one_domain_are_duplicate_rows(store):
    with pytest.raises(ImportRejected, match="row 3: duplicate row: domain 'acme.example' is also on row 2"):
        run(b"Name,Website\nAcme,acme.example\nAcme Inc,https://www.acme.example/\n", "accounts")


def test_a_negative_employee_count_is_refused(store):
    with pytest.raises(ImportRejected, match=r"row 2, column 'Employees': '-5' must not be negative"):
        run(b"Name,Employees\nAcme,-5\n", "accounts")


ACTIVITIES = b"""Email,Activity Type,Date,Subject,Page URL,Duration
ana@x.example,Email Sent,2025-05-01 09:00,Intro,,
ana@x.example,Page View,2025-05-03 10:15,,/pricing,
ana@x.example,Logged call,2025-05-02 16:00,Discovery call,,25
bob@x.example,Meeting,2025-04-20 11:00,Demo,,60
"""


def test_activities_link_to_contacts_and_keep_last_activity_current(store):
    run(b"Email,Name,Company\nana@x.example,Ana,Acme\nbob@x.example,Bob,\n", "contacts")
    plan, summary = run(ACTIVITIES, "activities")
    assert plan.mapping["Page URL"] == "url" and plan.mapping["Duration"] == "attributes.duration"
    assert summary.created == 4
    with unit_of_work(readonly=True) as session:
        rows = {c.email_normalized: c for c in session.scalars(select(Contact))}
        assert rows["ana@x.example"].last_activity_at == datetime(2025, 5, 3, 10, 15)
        assert rows["bob@x.example"].last_activity_at == datetime(2025, 4, 20, 11, 0)
        acts = session.scalars(select(Activity).order_by(Activity.occurred_at)).all()
        assert [a.type for a in acts] == ["meeting", "email_sent", "call", "page_view"]
        call = acts[2]
        assert call.payload == {"subject": "Discovery call", "duration": 25}
        assert call.account_id == rows["ana@x.example"].account_id is not None
        assert call.source == "import" and call.external_id.startswith("fp:")


def test_the_same_activity_log_imported_twice_adds_nothing(store):
    run(b"Email,Name\nana@x.example,Ana\nbob@x.example,Bob\n", "contacts")
    run(ACTIVITIES, "activities")
    _, summary = run(ACTIVITIES, "activities")
    assert (summary.created, summary.unchanged) == (0, 4)


def test_activity_for_an_unknown_contact_and_unknown_type_are_row_errors(store):
    with pytest.raises(ImportRejected) as info:
        run(b"Email,Type,Date\nnobody@x.example,call,2025-01-01\nnobody@x.example,carrier pigeon,2025-01-01\n",
            "activities")
    message = str(info.value)
    assert "row 2, column 'Email': no contact with email 'nobody@x.example'; import the contacts first" in message
    assert "row 3, column 'Type': 'carrier pigeon' is not a known activity type; use one of call," in message


def test_an_activity_without_a_date_is_refused(store):
    run(b"Email,Name\nana@x.example,Ana\n", "contacts")
    with pytest.raises(ImportRejected, match=r"row 2, column 'Date': empty, but occurred_at is required"):
        run(b"Email,Type,Date\nana@x.example,call,\n", "activities")
