"""`python -m crm_core import/export`: bad files fail clearly and change nothing; good ones import."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from auth_helpers import add_user
from crm_core.cli import build_parser, main
from crm_core.db import unit_of_work
from crm_core.models import Account, AuditEntry, Contact, Deal, Decision, User

FIXTURES = Path(__file__).parent / "fixtures" / "csv"
IMPORTER = "Ivy Importer"


@pytest.fixture(autouse=True)
def _importer(request, monkeypatch):
    """Imports run as a real user with the right import_data: a manager named by CRM_USER, as in a script."""
    if "store" not in request.fixturenames:
        return
    request.getfixturevalue("store")
    with unit_of_work() as session:
        add_user(session, IMPORTER, "manager")
        add_user(session, "Rita Rep", "rep")
    monkeypatch.setenv("CRM_USER", IMPORTER)


def store_state() -> dict[str, object]:
    """Every row the import could touch, so 'unchanged' means unchanged."""
    with unit_of_work(readonly=True) as session:
        return {
            "contacts": [(c.id, c.email, c.first_name, c.updated_at, c.attributes)
                         for c in session.scalars(select(Contact).order_by(Contact.id))],
            "accounts": session.scalar(select(func.count()).select_from(Account)),
            "users": session.scalar(select(func.count()).select_from(User)),
            "deals": session.scalar(select(func.count()).select_from(Deal)),
            "audit": session.scalar(select(func.count()).select_from(AuditEntry)),
        }


@pytest.mark.parametrize(("kind", "fixture", "message"), [
    ("contacts", "bad_wrong_encoding.csv", "bad_wrong_encoding.csv: wrong encoding: the file holds NUL bytes"),
    ("contacts", "bad_missing_column.csv", "bad_missing_column.csv: missing required column: contacts need a column "
                                           "for external_id or email or name"),
    ("contacts", "bad_email.csv", "bad_email.csv: 1 error(s) in 1 row(s), nothing imported: row 3, column 'Email': "
                                  "'bill-at-globex' is not an email address"),
    ("contacts", "bad_duplicate_rows.csv", "row 4: duplicate row: email 'ANA@acme.example' is also on row 2"),
    ("deals", "bad_amount.csv", "row 3, column 'Amount': 'ten thousand' is not a number"),
    ("contacts", "bad_empty.csv", "bad_empty.csv: the file has no header row"),
    ("contacts", "bad_zero_bytes.csv", "bad_zero_bytes.csv: the file is empty (0 bytes)"),
    ("contacts", "bad_header_only.csv", "bad_header_only.csv: the file has a header row but no data rows"),
])
def test_each_bad_csv_exits_2_with_a_clear_error_and_leaves_the_store_unchanged(store, capsys, kind, fixture, message):
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv")]) == 0
    before = store_state()
    capsys.readouterr()
    assert main(["import", kind, str(FIXTURES / fixture)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert store_state() == before


def test_dry_run_shows_the_plan_and_writes_nothing(store, capsys):
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "hubspot_contacts.csv: 3 rows (utf-8-sig, comma-separated) as contacts" in out
    assert "'Email Address'" not in out and "'Email'                          -> email" in out
    assert "would create 3, update 0, leave 0 unchanged; 0 invalid rows; new accounts 3, new users 2" in out
    assert store_state()["contacts"] == []


def test_dry_run_of_a_bad_file_lists_every_error_and_exits_2(store, capsys):
    assert main(["import", "contacts", str(FIXTURES / "bad_email.csv"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "error: bad_email.csv, row 3, column 'Email': 'bill-at-globex' is not an email address" in err


def test_skip_invalid_imports_good_rows_and_writes_the_reject_file(store, capsys, tmp_path):
    rejects = tmp_path / "bad.csv"
    code = main(["import", "contacts", str(FIXTURES / "bad_email.csv"), "--skip-invalid", "--reject-file", str(rejects)])
    assert code == 0
    out = capsys.readouterr().out
    assert "created 2, updated 0, unchanged 0, skipped 1 invalid" in out
    assert f"bad rows written to {rejects}" in out
    assert rejects.read_text(encoding="utf-8-sig").splitlines()[1].startswith("3,Email: 'bill-at-globex'")


def test_skip_invalid_without_a_reject_file_writes_it_in_the_working_directory(store, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["import", "contacts", str(FIXTURES / "bad_email.csv"), "--skip-invalid"]) == 0
    assert (tmp_path / "bad_email.rejected.csv").exists()


def test_json_output_carries_plan_and_summary(store, capsys, tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"Lead Status": None, "__defaults__": {"source": "hubspot"}}))
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--mapping", str(mapping), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"]["mapping"]["Lead Status"] is None
    assert out["plan"]["counts"]["create"] == 3
    assert out["summary"]["created"] == 3
    with unit_of_work(readonly=True) as session:
        assert set(session.scalars(select(Contact.source))) == {"Organic Search", "Paid Search", "Referral"}


def test_a_default_fills_only_empty_cells(store, capsys, tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"__defaults__": {"source": "trade show"}}))
    data = tmp_path / "c.csv"
    data.write_text("Email,Source\na@x.example,web\nb@x.example,\n")
    assert main(["import", "contacts", str(data), "--mapping", str(mapping)]) == 0
    with unit_of_work(readonly=True) as session:
        assert dict(session.execute(select(Contact.email, Contact.source)).all()) == {
            "a@x.example": "web", "b@x.example": "trade show"}


def test_duplicates_are_reported_with_their_merge_proposal(store, capsys, tmp_path):
    data = tmp_path / "c.csv"
    data.write_text("Email,Name\njane.doe@x.example,Jane Doe\njanedoe+crm@x.example,Jane D\n")
    assert main(["import", "contacts", str(data)]) == 0
    out = capsys.readouterr().out
    assert "likely duplicate: row 2 'Jane Doe' ~ row 3 'Jane D': jane.doe@x.example and janedoe+crm@x.example " \
           "are one mailbox -> merge proposal #1" in out
    with unit_of_work(readonly=True) as session:
        assert session.scalars(select(Decision.status)).all() == ["queued"]


def test_a_missing_mapping_file_is_a_clear_error(store, capsys):
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--mapping", "nope.json"]) == 2
    assert "nope.json: mapping file not found" in capsys.readouterr().err


def test_help_lists_import_and_export():
    text = build_parser().format_help()
    assert "import" in text and "export" in text


def test_an_import_acts_as_a_real_user_with_the_right_import_data(store, capsys, monkeypatch):
    before = store_state()
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--as", "Rita Rep"]) == 2
    err = capsys.readouterr().err
    assert "Rita Rep (a rep) cannot import hubspot_contacts.csv" in err and "import_data" in err
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--as", "Mallory"]) == 2
    assert "is not a user of this CRM" in capsys.readouterr().err
    monkeypatch.delenv("CRM_USER")
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv")]) == 2
    assert "say who you are with --as NAME" in capsys.readouterr().err
    assert store_state() == before
    # A dry run writes nothing and needs no one.
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--dry-run"]) == 0
    assert main(["import", "contacts", str(FIXTURES / "hubspot_contacts.csv"), "--as", IMPORTER]) == 0
    with unit_of_work(readonly=True) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.event == "import.applied")).one()
    assert entry.actor == f"{IMPORTER} (cli)"
