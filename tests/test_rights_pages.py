"""What a rep sees and may do on the dashboard (AppTest): their own deals on Pipeline health, their own
meetings and records, and an import refused with the right it needs. The services decide; the pages
pass the signed-in user."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from auth_helpers import add_user, sign_in
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import Contact, Deal, Meeting

ROOT = Path(__file__).resolve().parent.parent
CSV = b"First Name,Last Name,Email\nZoe,Quinn,zoe.quinn@newco.example\n"


@pytest.fixture
def team(sqlite_store):
    """A manager and two reps; Rita owns two open deals (one red) and a meeting, Sam three deals and a meeting."""
    now = datetime.now(UTC).replace(tzinfo=None)
    ids = {}
    with unit_of_work() as s:
        add_user(s, "Mo Manager", "manager")
        for name, deals in (("Rita Rep", 2), ("Sam Rep", 3)):
            user = add_user(s, name, "rep")
            ids[name] = user.id
            contact = Contact(first_name=name.split()[0], last_name="Buyer", email=f"{user.id}@buyer.example", owner_id=user.id)
            s.add(contact)
            s.flush()
            ids[f"{name} contact"] = contact.id
            for i in range(deals):
                s.add(Deal(name=f"{name.split()[0]} deal {i}", stage="Demo", status="open", amount=Decimal(1000 * (i + 1)),
                           currency="USD", owner_id=user.id, risk="red" if i == 0 else "green", risk_reason="quiet buyer",
                           stage_entered_at=now - timedelta(days=4)))
            s.add(Meeting(uid=f"m{user.id}", title=f"{name.split()[0]}'s call", owner_id=user.id, contact_id=contact.id,
                          starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=1)))
    return ids


def app(name: str, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    with clock.frozen_at(datetime.now(UTC)):  # the page runs on the wall clock: its session must not look expired
        sign_in(at, name)
    at.run()
    if page is not None:
        at.switch_page(f"pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_a_reps_pipeline_health_shows_only_their_deals_and_only_them_as_owner(team):
    at = app("Rita Rep")
    assert [t.value for t in at.title] == ["Pipeline health"]
    assert metric(at, "Open deals") == "2" and metric(at, "Red flags") == "1"
    picker = at.selectbox(key="pipeline_owner")
    assert picker.options == ["Rita Rep"] and picker.value == team["Rita Rep"]
    body = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    assert "Rita deal 0" in body and "Sam deal" not in body
    board = next(f.value for f in at.dataframe if "Deal" in f.value.columns and "Owner" in f.value.columns)
    assert set(board["Owner"]) == {"Rita Rep"}
    # The manager sees the whole team and may narrow to one rep.
    at = app("Mo Manager")
    assert metric(at, "Open deals") == "5"
    assert at.selectbox(key="pipeline_owner").options == ["Everyone", "Mo Manager", "Rita Rep", "Sam Rep"]
    at.selectbox(key="pipeline_owner").set_value(team["Sam Rep"]).run()
    assert metric(at, "Open deals") == "3"


def test_a_reps_meetings_and_records_are_their_own(team):
    at = app("Rita Rep", "meetings")
    assert metric(at, "Upcoming") == "1" and at.selectbox(key="meetings_owner").options == ["Rita Rep"]
    at = app("Rita Rep", "record_detail")
    at.query_params["contact"] = str(team["Sam Rep contact"])
    at.run()
    assert not at.exception
    assert any("cannot open this contact" in e.value and "view_all" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.header


def test_a_reps_import_is_refused_naming_the_right_and_imports_nothing(team):
    assert not any("import_data" in i.value for i in app("Mo Manager", "import_data").info)
    at = app("Rita Rep", "import_data")
    assert any("cannot import files into the book" in i.value and "the dry run writes nothing" in i.value for i in at.info)
    at.selectbox(key="import_kind").set_value("contacts").run()
    at.file_uploader(key="import_file").upload("people.csv", CSV, "text/csv").run()
    at.button(key="import_dry_run").click().run()
    at.button(key="import_apply").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Rita Rep (a rep) cannot import people.csv" in e and "import_data" in e for e in errors), errors
    assert not any("imported by" in m.value for m in at.success)
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Contact).where(Contact.email == "zoe.quinn@newco.example")) == 0


def test_a_reps_lead_scores_list_only_their_contacts(team):
    at = app("Rita Rep", "lead_scores")
    assert at.multiselect(key="leads_owners").options == ["Rita Rep"]
    leads = next(f.value for f in at.dataframe if "Owner" in f.value.columns)
    assert set(leads["Owner"]) == {"Rita Rep"}
