"""The Import page does what the CLI does: shipped mapping files by name, scales, defaults, the same store;
its dry run warns about implausible values and rows that would change live views; history stays history."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from streamlit.testing.v1 import AppTest

from auth_helpers import MANAGER as MANAGER_ACTOR
from auth_helpers import sign_in
from crm_core import clock
from crm_core.cli import main
from crm_core.db import dispose_engines, unit_of_work
from crm_core.models import Account, AuditEntry, Deal, Decision, ImportBatch, StageHistory, User
from crm_core.services import activity_log, pipeline

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
MAVEN_ACCOUNTS = "Maven CRM accounts (revenue in millions)"
MAVEN_PIPELINE = "Maven CRM sales pipeline"
OLIST_LEADS = "Olist marketing-qualified leads"
MANAGER = "Morgan Lee"
AUTOMATIC = "Automatic (from the column names)"


def _manager(url: str | None = None) -> None:
    """Someone to record as the importer (the page asks who imports before it writes)."""
    with unit_of_work(url) as s:
        if s.scalar(select(User).where(User.name == MANAGER)) is None:
            s.add(User(name=MANAGER, role="manager"))


def app() -> AppTest:
    _manager()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    sign_in(at, MANAGER)
    at.run()
    at.switch_page("pages/import_data.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def preset_box(at: AppTest):
    return next(b for b in at.selectbox if b.label == "Start from")


def page_import(path: Path, kind: str, preset: str | None, *, as_history: bool = False, run: bool = True) -> AppTest:
    at = app()
    at.selectbox(key="import_kind").set_value(kind).run()
    at.file_uploader(key="import_file").upload(path.name, path.read_bytes(), "text/csv").run()
    if preset is not None:
        preset_box(at).set_value(preset).run()
    if as_history:
        at.checkbox(key="import_as_history").check().run()
    at.button(key="import_dry_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    if run:
        at.button(key="import_apply").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def snapshot(url: str, started: datetime) -> dict:
    """Every imported field of every account, deal, stage change and user, keyed by what identifies it.

    A time the file does not give (a deal with no date enters its stage when imported) reads as "import time":
    the page's script runs in its own thread, where the test's frozen clock does not reach.
    """
    def at(value):
        return "import time" if value is not None and value >= started else value

    owner, account = aliased(User), aliased(Account)
    with unit_of_work(url, readonly=True) as s:
        accounts = {a.name: (a.domain, a.industry, a.employee_count, a.annual_revenue, a.country, a.attributes,
                             at(a.created_at)) for a in s.scalars(select(Account))}
        deals = {d.external_id: (d.name, acc, own, d.product, d.stage, d.amount, d.currency, d.status, d.opened_at,
                                 d.expected_close, at(d.stage_entered_at), at(d.closed_at), d.attributes, d.primary_contact_id)
                 for d, acc, own in s.execute(select(Deal, account.name, owner.name)
                                              .outerjoin(account, account.id == Deal.account_id)
                                              .outerjoin(owner, owner.id == Deal.owner_id))}
        history = sorted((ext, h.from_stage or "", h.to_stage, str(at(h.changed_at)), h.changed_by) for h, ext in
                         s.execute(select(StageHistory, Deal.external_id).join(Deal, Deal.id == StageHistory.deal_id)))
        users = sorted((u.name, u.role) for u in s.scalars(select(User)))
    return {"accounts": accounts, "deals": deals, "history": history, "users": users}


@pytest.fixture
def cli_store(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "cli" / "crm.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def test_maven_import_from_the_page_gives_the_same_store_as_the_cli(sqlite_store, cli_store, shared_data, monkeypatch):
    maven = shared_data / "maven_crm"
    started = clock.now()
    page_import(maven / "accounts.csv", "accounts", MAVEN_ACCOUNTS)
    page_import(maven / "sales_pipeline.csv", "deals", MAVEN_PIPELINE)

    _manager(cli_store)
    monkeypatch.setenv("CRM_DATABASE_URL", cli_store)
    monkeypatch.setenv("CRM_USER", MANAGER)  # the CLI imports as a real user with the right import_data
    assert main(["import", "accounts", str(maven / "accounts.csv"), "--mapping", str(ROOT / "mappings/maven_accounts.json")]) == 0
    assert main(["import", "deals", str(maven / "sales_pipeline.csv"), "--mapping", str(ROOT / "mappings/maven_pipeline.json")]) == 0
    dispose_engines()

    page, cli = snapshot(sqlite_store, started), snapshot(cli_store, started)
    assert len(page["accounts"]) == 85 and len(page["deals"]) == 8800
    for part in ("accounts", "deals", "history", "users"):
        assert page[part] == cli[part], part
    # The shipped mapping scales revenue from millions: Acme's 1,100.04 is 1,100,040,000.
    assert min(v[3] for v in page["accounts"].values()) >= 1_000_000


def test_dry_run_warns_about_revenue_without_the_scale_and_not_with_it(sqlite_store, shared_data):
    accounts = shared_data / "maven_crm" / "accounts.csv"
    at = page_import(accounts, "accounts", AUTOMATIC, run=False)
    warnings = [w.value for w in at.warning]
    assert any("84 of 85 companies would have a yearly revenue under 10,000" in w for w in warnings), warnings
    at = page_import(accounts, "accounts", None, run=False)  # the file's columns match the shipped mapping: chosen
    assert preset_box(at).value == MAVEN_ACCOUNTS
    assert not any("revenue" in w.value for w in at.warning)
    scale = next(d.value for d in at.data_editor if "Scale" in d.value.columns)
    assert dict(zip(scale["CSV column"], scale["Scale"]))["revenue"] == 1_000_000


def test_dry_run_warns_about_olist_leads_without_name_or_email_and_offers_history(sqlite_store, shared_data):
    leads = shared_data / "olist_funnel" / "olist_marketing_qualified_leads_dataset.csv"
    at = page_import(leads, "contacts", OLIST_LEADS, run=False)
    warnings = " ".join(w.value for w in at.warning)
    assert "8,000 of 8,000 contacts have neither a name nor an email" in warnings
    assert "more than 365 days old" in warnings
    assert any("Import as history" in i.value for i in at.info)
    # The shipped mapping's default lifecycle stage is on the page, editable.
    defaults = next(d.value for d in at.data_editor if list(d.value.columns) == ["Field", "Value"])
    assert list(zip(defaults["Field"], defaults["Value"])) == [("lifecycle_stage", "mql")]
    page_text = " ".join([e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info])
    assert "--" not in page_text  # no command-line advice on the page


def _audit_rows() -> int:
    with unit_of_work(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


def test_history_import_from_the_page_adds_no_open_deal_decision_or_audit_row_per_record(sqlite_store, shared_data):
    at = page_import(shared_data / "maven_crm" / "sales_pipeline.csv", "deals", MAVEN_PIPELINE, as_history=True, run=False)
    assert any("2,089 open deals untouched for over a year go in as lost (stale)" in i.value for i in at.info)
    before = _audit_rows()
    at.button(key="import_apply").click().run()
    assert not at.exception and not at.error
    assert any("2,089 open deals untouched for over a year went in as lost (stale)" in s.value for s in at.success)
    assert _audit_rows() == before + 2  # one entry for 8,800 rows, and one for the data-quality check after them
    assert any(e.label.startswith("Data quality after this import: the book scores") for e in at.expander)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER_ACTOR)
        assert board.open_deals == 0
        assert s.scalar(select(func.count()).select_from(Deal).where(Deal.status == "lost")) == 2473 + 2089
        assert s.scalar(select(func.count()).select_from(Decision)) == 0
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "import.applied")).one()
        batch = s.scalars(select(ImportBatch)).one()
    assert entry.details["as_history"] and entry.actor == f"{MANAGER} (password)"
    assert batch.historical and batch.created_ids == {"deals": [[1, 8800]]}


def test_the_data_quality_check_after_an_import_says_who_imported(sqlite_store, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_bytes(b"First Name,Last Name,Email\nZoe,Quinn,zoe.quinn@newco.example\nAl,Ray,al.ray@newco.example\n")
    at = page_import(leads, "contacts", None)
    assert any(e.label.startswith("Data quality after this import: the book scores") for e in at.expander)
    with unit_of_work(readonly=True) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "quality.audited_after_import")).one()
        log = activity_log.readable_audit(s, activity_log.AuditFilters(actor=MANAGER))
    assert entry.actor == f"{MANAGER} (password)" and entry.details["import_ref"] == "contacts from leads.csv"
    row = next(r for r in log.rows if r.what == "Data quality checked after an import")
    assert row.who == f"{MANAGER} (signed in)"
    assert row.details[0].startswith("After importing contacts from leads.csv: the book scores ")


def test_a_mapping_saved_from_the_page_is_offered_next_time_and_never_replaces_a_shipped_one(
        sqlite_store, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_MAPPINGS_DIR", str(tmp_path / "saved"))
    at = page_import(shared_data / "maven_crm" / "accounts.csv", "accounts", MAVEN_ACCOUNTS, run=False)
    at.text_input(key="import_save_name").input("maven_accounts").run()
    at.button(key="import_save").click().run()
    assert any("ships with the CRM" in e.value for e in at.error)
    at.text_input(key="import_save_name").input("Maven accounts v2").run()
    at.button(key="import_save").click().run()
    assert not at.error and any("Maven_accounts_v2 (saved)" in s.value for s in at.success)
    at = app()
    at.selectbox(key="import_kind").set_value("accounts").run()
    at.file_uploader(key="import_file").upload("accounts.csv", (shared_data / "maven_crm" / "accounts.csv").read_bytes(),
                                               "text/csv").run()
    assert "Maven_accounts_v2 (saved)" in preset_box(at).options
    preset_box(at).set_value("Maven_accounts_v2 (saved)").run()
    scale = next(d.value for d in at.data_editor if "Scale" in d.value.columns)
    assert dict(zip(scale["CSV column"], scale["Scale"]))["revenue"] == 1_000_000


def test_an_uploaded_mapping_file_is_used_and_a_broken_one_is_named(sqlite_store, shared_data):
    at = app()
    at.selectbox(key="import_kind").set_value("accounts").run()
    at.file_uploader(key="import_file").upload("accounts.csv", (shared_data / "maven_crm" / "accounts.csv").read_bytes(),
                                               "text/csv").run()
    preset_box(at).set_value("Upload a mapping file…").run()
    at.file_uploader(key="import_mapping_file").upload("mine.json", b'{"revenue": "annual_revenue", "__scale__": {"revenue": 1000}}',
                                                       "application/json").run()
    assert not at.exception and not at.error
    scale = next(d.value for d in at.data_editor if "Scale" in d.value.columns)
    assert dict(zip(scale["CSV column"], scale["Scale"]))["revenue"] == 1000
    at.file_uploader(key="import_mapping_file").upload("broken.json", b'{"revenue": 5}', "application/json").run()
    assert any("broken.json: header 'revenue' maps to 5" in e.value for e in at.error)
