"""CSV export: formula-safe cells, the columns a team needs, and a file that imports back unchanged."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER, add_user
from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.cli import main
from crm_core.db import unit_of_work
from crm_core.errors import PermissionDenied, UserError
from crm_core.exporting import escape_cell, export_bytes, export_csv
from crm_core.importing import apply_import, plan_import, read_csv
from crm_core.models import Account, Contact, Deal, Decision, User

FIXTURES = Path(__file__).parent / "fixtures" / "csv"


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1 415 555 0100", "'+1 415 555 0100"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"),
    ("plain text", "plain text"),
    (-5, -5),
    (Decimal("-12.50"), Decimal("-12.50")),
])
def test_cells_that_a_spreadsheet_would_run_are_escaped_and_numbers_are_not(value, expected):
    assert escape_cell(value) == expected


def seed_contact_with_formulas() -> None:
    with unit_of_work() as s:
        owner = User(name="=Owner()")
        acme = Account(name="@Acme", name_key="@acme", domain="acme.example")
        s.add_all([owner, acme])
        s.flush()
        s.add(Contact(first_name="=cmd|' /C calc'!A0", last_name="Doe", email="jane@acme.example",
                      email_normalized="jane@acme.example", phone="+1 415 555 0100", account_id=acme.id,
                      owner_id=owner.id, lifecycle_stage="sql", score=72, tier="hot",
                      attributes={"note": "-danger", "seats": 12}))
        s.add(Deal(name="+Expansion", stage="Proposal", amount=Decimal("-100.00"), account_id=acme.id,
                   owner_id=owner.id))


def test_contacts_export_escapes_every_text_cell_and_keeps_attributes(store):
    seed_contact_with_formulas()
    with unit_of_work(readonly=True) as s:
        data = export_bytes(s, "contacts", actor=MANAGER)
    assert data.startswith("\ufeff".encode())
    [row] = rows_of(data)
    assert row["first_name"] == "'=cmd|' /C calc'!A0"
    assert row["phone"] == "'+1 415 555 0100"
    assert (row["company"], row["owner"], row["company_domain"]) == ("'@Acme", "'=Owner()", "acme.example")
    assert (row["lifecycle_stage"], row["crm_score"], row["crm_tier"]) == ("sql", "72", "hot")
    assert (row["attributes.note"], row["attributes.seats"]) == ("'-danger", "12")
    assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


def test_deals_export_leaves_a_negative_amount_a_number(store):
    seed_contact_with_formulas()
    with unit_of_work(readonly=True) as s:
        [row] = rows_of(export_bytes(s, "deals", actor=MANAGER))
    assert (row["name"], row["amount"], row["owner"], row["account"]) == ("'+Expansion", "-100.00", "'=Owner()", "'@Acme")


def test_decisions_export_lists_cost_tokens_model_and_times(store):
    with unit_of_work() as s:
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=7, subject_label="Jane Doe",
                       status="executed", confidence=0.91, provider="anthropic", model="claude-haiku-5-5",
                       input_tokens=1200, output_tokens=300, cost_usd=Decimal("0.004200"),
                       actions=[{"type": "update_lead_score", "params": {}}, {"type": "create_task", "params": {}}],
                       reasoning="=2+2 pricing page visits", created_at=datetime(2025, 5, 1, 9, 0),
                       decided_at=datetime(2025, 5, 1, 9, 5), executed_at=datetime(2025, 5, 1, 9, 6)))
    with unit_of_work(readonly=True) as s:
        [row] = rows_of(export_bytes(s, "decisions", actor=MANAGER))
    assert {k: row[k] for k in ("id", "agent", "subject", "status", "confidence", "provider", "model", "input_tokens",
                                "output_tokens", "cost_usd", "created_at", "decided_at", "executed_at", "actions")} == {
        "id": "1", "agent": "lead_scoring", "subject": "Jane Doe", "status": "executed", "confidence": "0.91",
        "provider": "anthropic", "model": "claude-haiku-5-5", "input_tokens": "1200", "output_tokens": "300",
        "cost_usd": "0.004200", "created_at": "2025-05-01 09:00:00", "decided_at": "2025-05-01 09:05:00",
        "executed_at": "2025-05-01 09:06:00", "actions": "update_lead_score; create_task"}
    assert row["reasoning"] == "'=2+2 pricing page visits"


def test_exported_contacts_import_back_as_unchanged(store, tmp_path):
    with clock.frozen_at(datetime(2025, 1, 1)), unit_of_work() as s:
        plan = plan_import(s, "contacts", read_csv(FIXTURES / "hubspot_contacts.csv"))
        apply_import(s, plan)
    path = tmp_path / "contacts.csv"
    with unit_of_work(readonly=True) as s:
        assert export_csv(s, "contacts", path, actor=MANAGER) == 3
    with unit_of_work() as s:
        plan = plan_import(s, "contacts", read_csv(path))
        assert plan.errors == []
        assert (plan.counts.create, plan.counts.update, plan.counts.unchanged) == (0, 0, 3)


def _cli_user(monkeypatch, role: str = "manager") -> None:
    """The CLI acts as a real user, as a script would with CRM_USER."""
    with unit_of_work() as s:
        add_user(s, f"Exporting {role}", role)
    monkeypatch.setenv("CRM_USER", f"Exporting {role}")


def test_export_cli_writes_the_file_and_reports_the_count(store, tmp_path, capsys, monkeypatch):
    seed_contact_with_formulas()
    _cli_user(monkeypatch)
    target = tmp_path / "deals.csv"
    assert main(["export", "deals", str(target)]) == 0
    assert f"deals: 1 rows written to {target}" in capsys.readouterr().out
    assert rows_of(target.read_bytes())[0]["stage"] == "Proposal"


def test_exporting_into_a_directory_is_a_clear_error(store, tmp_path):
    with unit_of_work(readonly=True) as s, pytest.raises(UserError, match="is a directory; give a file name"):
        export_csv(s, "contacts", tmp_path, actor=MANAGER)


def test_export_to_standard_output(store, capsys, monkeypatch):
    seed_contact_with_formulas()
    _cli_user(monkeypatch)
    assert main(["export", "contacts", "-"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("crm_id,external_id,first_name")
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(Contact.email)) in out


def test_exported_deals_import_back_as_unchanged(store, tmp_path):
    with clock.frozen_at(datetime(2025, 1, 1)), unit_of_work() as s:
        apply_import(s, plan_import(s, "contacts", read_csv(FIXTURES / "hubspot_contacts.csv")))
    with clock.frozen_at(datetime(2025, 1, 2)), unit_of_work() as s:
        apply_import(s, plan_import(s, "deals", read_csv(FIXTURES / "pipedrive_deals.tsv.csv")))
    path = tmp_path / "deals.csv"
    with unit_of_work(readonly=True) as s:
        assert export_csv(s, "deals", path, actor=MANAGER) == 3
    with clock.frozen_at(datetime(2025, 2, 1)), unit_of_work() as s:
        plan = plan_import(s, "deals", read_csv(path))
        assert plan.errors == []
        assert (plan.counts.create, plan.counts.update, plan.counts.unchanged) == (0, 0, 3)


def test_a_reps_export_holds_their_own_records_and_the_decision_log_needs_view_all(store, tmp_path, capsys, monkeypatch):
    seed_contact_with_formulas()  # owned by "=Owner()"
    with unit_of_work() as s:
        rep = add_user(s, "Rita Rep", "rep")
        s.add(Contact(first_name="Own", email="own@rep.example", owner_id=rep.id))
        s.add(Deal(name="Rita's deal", stage="Proposal", owner_id=rep.id))
        rita = Actor(user_id=rep.id, name=rep.name, role="rep", via="cli")
    with unit_of_work(readonly=True) as s:
        assert [r["email"] for r in rows_of(export_bytes(s, "contacts", actor=rita))] == ["own@rep.example"]
        assert [r["name"] for r in rows_of(export_bytes(s, "deals", actor=rita))] == ["Rita's deal"]
        assert len(rows_of(export_bytes(s, "contacts", actor=MANAGER))) == 2
        with pytest.raises(PermissionDenied, match="view_all") as refused:
            export_bytes(s, "decisions", actor=rita)
    assert refused.value.right == "view_all"

    monkeypatch.delenv("CRM_USER", raising=False)
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    assert main(["export", "contacts", str(tmp_path / "c.csv")]) == 2  # nobody named: refused, nothing written
    assert "--as NAME" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()
    assert main(["export", "decisions", str(tmp_path / "d.csv"), "--as", "Rita Rep"]) == 2
    assert "view_all" in capsys.readouterr().err
