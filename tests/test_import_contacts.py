"""Importing contacts into the store: upsert keys, never erasing, outcomes, links, duplicates."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.importing import ImportRejected, apply_import, plan_import, read_csv, write_rejects
from crm_core.models import Account, AuditEntry, Contact, Decision, User

FIXTURES = Path(__file__).parent / "fixtures" / "csv"
NOW = datetime(2025, 6, 1, 12, 0)


def run(data: bytes | Path, kind: str = "contacts", mapping=None, **kwargs):
    table = read_csv(data, None if isinstance(data, Path) else "contacts.csv")
    with clock.frozen_at(NOW), unit_of_work() as session:
        plan = plan_import(session, kind, table, mapping)
        return plan, apply_import(session, plan, **kwargs)


def contacts() -> dict[str, Contact]:
    with unit_of_work(readonly=True) as session:
        return {c.email_normalized or c.external_id or c.first_name: c for c in session.scalars(select(Contact))}


def count(model) -> int:
    with unit_of_work(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_hubspot_export_creates_contacts_accounts_and_owners(store):
    plan, summary = run(FIXTURES / "hubspot_contacts.csv")
    assert (summary.created, summary.updated, summary.accounts_created, summary.users_created) == (3, 0, 3, 2)
    rows = contacts()
    ana = rows["ana.souza@acme.example"]
    assert (ana.external_id, ana.first_name, ana.title, ana.lifecycle_stage) == ("101", "Ana", "VP Sales", "mql")
    assert ana.phone == "(415) 555-0101" and ana.phone_normalized == "+14155550101"
    assert ana.created_at == datetime(2024, 1, 15, 9, 30)
    assert ana.attributes == {"lead_status": "Open", "number_of_employees": 250}
    assert ana.account.name == "Acme Corp" and ana.account.domain == "acme.example"
    bill = rows["bill@globex.example"]
    assert (bill.lifecycle_stage, bill.outcome_at) == ("customer", datetime(2024, 6, 30))
    assert rows["chloe@initech.example"].first_name == "Chloé"
    with unit_of_work(readonly=True) as session:
        assert sorted(session.scalars(select(User.name))) == ["Maria Rep", "Tom Rep"]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.event == "import.applied")).one()
        assert audit.details["created"] == 3 and audit.details["file"] == "hubspot_contacts.csv"
    assert plan.date_formats["Create Date"] == "ISO"


def test_importing_the_same_file_twice_changes_nothing(store):
    run(FIXTURES / "hubspot_contacts.csv")
    before = {k: (c.updated_at, c.attributes, c.lifecycle_stage) for k, c in contacts().items()}
    plan, summary = run(FIXTURES / "hubspot_contacts.csv")
    assert (plan.counts.create, plan.counts.update, plan.counts.unchanged) == (0, 0, 3)
    assert (summary.created, summary.updated, summary.unchanged, summary.accounts_created) == (0, 0, 3, 0)
    assert {k: (c.updated_at, c.attributes, c.lifecycle_stage) for k, c in contacts().items()} == before
    assert count(Account) == 3


def test_email_matches_case_insensitively_and_an_empty_cell_never_erases(store):
    run(b"Email,First Name,Job Title,Phone\nAna@Acme.example,Ana,VP Sales,+351 21 000 0000\n")
    _, summary = run(b"Email,First Name,Job Title,Phone\nana@ACME.example,,CRO,\n")
    assert (summary.created, summary.updated) == (0, 1)
    ana = contacts()["ana@acme.example"]
    assert (ana.first_name, ana.title, ana.phone, ana.email) == ("Ana", "CRO", "+351 21 000 0000", "Ana@Acme.example")


def test_external_id_wins_over_email_and_an_email_change_is_applied(store):
    run(b"Prospect ID,Email,First Name\nP1,old@x.example,Ana\n")
    _, summary = run(b"Prospect ID,Email,First Name\nP1,new@x.example,Ana\n")
    assert summary.updated == 1
    assert set(contacts()) == {"new@x.example"}


def test_a_known_email_without_external_id_gets_the_external_id_from_the_file(store):
    run(b"Email,First Name\nana@x.example,Ana\n")
    _, summary = run(b"Contact ID,Email\nC-9,ana@x.example\n")
    assert summary.updated == 1
    assert contacts()["ana@x.example"].external_id == "C-9"


def test_an_email_owned_by_another_external_id_is_a_row_error(store):
    run(b"Contact ID,Email\nC-1,ana@x.example\n")
    with pytest.raises(ImportRejected, match="belongs to contact #1 whose external id is 'C-1', not 'C-2'"):
        run(b"Contact ID,Email\nC-2,ana@x.example\n")


def test_contacts_with_only_a_name_are_matched_by_name_at_the_same_company(store):
    data = b"Name,Company\nJane Doe,Acme\nJohn Roe,\n"
    run(data)
    _, summary = run(data)
    assert (summary.created, summary.unchanged) == (0, 2)
    assert count(Contact) == 2


def test_outcome_stages_apply_and_earlier_stages_never_move_a_contact_back(store):
    run(b"Email,Lifecycle Stage\na@x.example,SQL\nb@x.example,Customer\nc@x.example,MQL\n")
    _, summary = run(b"Email,Lifecycle Stage\na@x.example,Lead\nb@x.example,Lead\nc@x.example,Unqualified\n")
    rows = contacts()
    assert rows["a@x.example"].lifecycle_stage == "sql"
    assert rows["b@x.example"].lifecycle_stage == "customer"
    assert rows["b@x.example"].outcome_at == NOW
    assert (rows["c@x.example"].lifecycle_stage, rows["c@x.example"].outcome_at) == ("disqualified", NOW)
    assert summary.updated == 1


def test_custom_attributes_merge_key_by_key(store):
    run(b"Email,Segment,Seats\na@x.example,SMB,10\n")
    run(b"Email,Region\na@x.example,EMEA\n")
    assert contacts()["a@x.example"].attributes == {"segment": "SMB", "seats": 10, "region": "EMEA"}


def test_a_bad_email_rejects_the_whole_file_and_names_row_and_column(store):
    with pytest.raises(ImportRejected) as info:
        run(FIXTURES / "bad_email.csv")
    assert "bad_email.csv: 1 error(s) in 1 row(s), nothing imported: row 3, column 'Email': " \
           "'bill-at-globex' is not an email address" in str(info.value)
    assert count(Contact) == 0


def test_skip_invalid_imports_the_good_rows_and_the_rejects_keep_the_bad_ones(store, tmp_path):
    plan, summary = run(FIXTURES / "bad_email.csv", skip_invalid=True)
    assert (summary.created, summary.skipped_invalid) == (2, 1)
    assert count(Contact) == 2
    rejects = tmp_path / "rejects.csv"
    assert write_rejects(plan, rejects, summary.errors) == 1
    text = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert text[0] == "row,errors,First Name,Last Name,Email"
    assert text[1] == "3,Email: 'bill-at-globex' is not an email address,Bill,Meyer,bill-at-globex"


def test_a_row_without_name_email_or_external_id_is_refused(store):
    with pytest.raises(ImportRejected, match="row 3: a contact needs a name, an email or an external id"):
        run(b"Email,First Name,Title\na@x.example,Ana,CEO\n,,CTO\n")


def test_duplicate_rows_in_one_file_are_refused(store):
    with pytest.raises(ImportRejected, match=r"row 4: duplicate row: email 'ANA@acme.example' is also on row 2"):
        run(FIXTURES / "bad_duplicate_rows.csv")
    assert count(Contact) == 0


def test_a_dry_run_plan_writes_nothing(store):
    table = read_csv(FIXTURES / "hubspot_contacts.csv")
    with unit_of_work(readonly=True) as session:
        plan = plan_import(session, "contacts", table)
    assert (plan.counts.create, plan.counts.accounts_create, plan.counts.users_create) == (3, 3, 2)
    assert count(Contact) == 0 and count(Account) == 0


def test_a_plan_applied_in_a_later_transaction_matches_the_store_again(store):
    table = read_csv(b"Email\na@x.example\n", "c.csv")
    with unit_of_work(readonly=True) as session:
        plan = plan_import(session, "contacts", table)
    run(b"Email\na@x.example\n")  # someone imports the same rows meanwhile
    with unit_of_work() as session:
        summary = apply_import(session, plan)
    assert (summary.created, summary.unchanged) == (0, 1)


def test_progress_is_reported_while_writing(store):
    seen: list[tuple[float, str]] = []
    run(FIXTURES / "hubspot_contacts.csv", progress=lambda f, m: seen.append((f, m)))
    assert seen[-1][0] == 1.0
    assert any("contacts: 3 of 3 rows written" in m for _, m in seen)


# ---- likely duplicates -------------------------------------------------------------------------

DUPES = b"""Email,First Name,Last Name,Company,Phone
jane.doe@acme.example,Jane,Doe,Acme,
janedoe+news@acme.example,Jane,Doe,Other Co,
jon.smith@acme.example,Jon,Smith,Acme,
jonathan.s@acme.example,Jonathan,Smith,Acme,
pat@a.example,Pat,Lee,,+1 415 555 0100
patrick@b.example,Patrick,Li,,(415) 555-0100
"""


def test_likely_duplicates_are_listed_in_the_plan_and_never_merged(store):
    plan, summary = run(DUPES)
    reasons = {(d.row, d.other_row): d.reasons for d in plan.duplicates}
    assert reasons == {(2, 3): ["email_variant"], (4, 5): ["similar_name"], (6, 7): ["same_phone"]}
    assert count(Contact) == 6
    assert len(summary.merge_proposals) == 3


def test_merge_proposals_are_queued_decisions_with_an_audit_entry(store):
    _, summary = run(DUPES)
    with unit_of_work(readonly=True) as session:
        decisions = session.scalars(select(Decision).order_by(Decision.id)).all()
        ids = {c.email_normalized: c.id for c in session.scalars(select(Contact))}
        first = decisions[0]
        assert (first.agent, first.subject_type, first.status, first.policy_verdict) == ("import", "contact", "queued", "queue")
        target, source = ids["jane.doe@acme.example"], ids["janedoe+news@acme.example"]
        assert first.subject_id == target
        assert first.actions == [{"type": "merge_contacts",
                                  "params": {"source_contact_id": source, "target_contact_id": target},
                                  "reason": "likely the same person: jane.doe@acme.example and "
                                            "janedoe+news@acme.example are one mailbox"}]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.event == "decision.created")).all()
        assert sorted(a.decision_id for a in audit) == sorted(summary.merge_proposals)


def test_an_existing_contact_and_a_new_row_with_the_same_phone_are_proposed_once(store):
    run(b"Email,Name,Phone\nann@a.example,Ann Old,+44 20 7946 0000\n")
    plan, summary = run(b"Email,Name,Phone\nann.new@b.example,Ann New,+442079460000\n")
    [dup] = plan.duplicates
    assert (dup.row, dup.other_contact_id, dup.reasons) == (2, 1, ["same_phone"])
    assert len(summary.merge_proposals) == 1
    _, again = run(b"Email,Name,Phone\nann.new@b.example,Ann New,+442079460000\n")
    assert again.merge_proposals == [] and count(Decision) == 1


def test_a_switchboard_number_shared_by_many_contacts_is_not_a_duplicate_signal(store):
    rows = "".join(f"p{i}@x.example,Person {i},+1 212 555 0000\n" for i in range(6))
    plan, _ = run(("Email,Name,Phone\n" + rows).encode())
    assert plan.duplicates == []


def test_a_semicolon_windows_1252_export_with_day_first_dates_and_european_numbers(store):
    plan, summary = run(FIXTURES / "salesforce_leads_semicolon_cp1252.csv")
    assert summary.created == 2
    assert plan.date_formats == {"Created Date": "D/M/YYYY"}
    assert plan.attribute_types == {"annual_revenue": "number"}
    jose = contacts()["jose@andes.example"]
    assert (jose.external_id, jose.first_name, jose.last_name, jose.source) == ("00Q1", "José", "Muñoz", "Web")
    assert jose.created_at == datetime(2024, 3, 25)
    assert jose.attributes == {"annual_revenue": 1250000.5}
    assert jose.account.name == "Andes Café"
    assert contacts()["francoise@loire.example"].created_at == datetime(2024, 4, 3)
