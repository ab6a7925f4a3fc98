"""Importing deals: outcomes from stage names, stage history, owners, links, and won contacts."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.importing import ImportRejected, apply_import, plan_import, read_csv
from crm_core.models import Account, Contact, Deal, StageHistory, User

FIXTURES = Path(__file__).parent / "fixtures" / "csv"
NOW = datetime(2025, 6, 1, 12, 0)


def run(data: bytes | Path, kind: str = "deals", mapping=None, at: datetime = NOW, **kwargs):
    table = read_csv(data, None if isinstance(data, Path) else f"{kind}.csv")
    with clock.frozen_at(at), unit_of_work() as session:
        plan = plan_import(session, kind, table, mapping)
        return plan, apply_import(session, plan, **kwargs)


def deals() -> dict[str, Deal]:
    with unit_of_work(readonly=True) as session:
        return {d.external_id or d.name: d for d in session.scalars(select(Deal))}


def history() -> list[tuple[str, str | None, str, datetime]]:
    with unit_of_work(readonly=True) as session:
        rows = session.execute(select(Deal.external_id, StageHistory.from_stage, StageHistory.to_stage,
                                      StageHistory.changed_at).join(Deal, Deal.id == StageHistory.deal_id)
                               .order_by(StageHistory.id)).all()
        return [tuple(r) for r in rows]


def test_pipedrive_deals_link_contacts_accounts_and_owners_and_read_outcomes(store):
    run(FIXTURES / "hubspot_contacts.csv", kind="contacts")
    _, summary = run(FIXTURES / "pipedrive_deals.tsv.csv")
    assert (summary.created, summary.users_created, summary.accounts_created) == (3, 0, 0)
    rows = deals()
    open_deal, won, lost = rows["P-1"], rows["P-2"], rows["P-3"]
    assert (open_deal.status, open_deal.amount, open_deal.expected_close, open_deal.closed_at) == (
        "open", Decimal("12500.00"), date(2025, 9, 30), None)
    assert (won.status, won.currency, won.closed_at) == ("won", "EUR", datetime(2025, 5, 2, 14, 0))
    assert (lost.status, lost.stage, lost.closed_at) == ("lost", "Closed Lost", datetime(2025, 4, 11, 9, 0))
    assert won.stage_entered_at == won.closed_at and open_deal.stage_entered_at == NOW
    with unit_of_work(readonly=True) as session:
        ana = session.scalars(select(Contact).where(Contact.email_normalized == "ana.souza@acme.example")).one()
        assert open_deal.primary_contact_id == ana.id and open_deal.account_id == ana.account_id
        assert session.get(User, open_deal.owner_id).name == "Maria Rep"
    assert history() == [("P-1", None, "Negotiation", NOW), ("P-2", None, "Won", datetime(2025, 5, 2, 14, 0)),
                         ("P-3", None, "Closed Lost", datetime(2025, 4, 11, 9, 0))]


def test_a_won_deal_makes_its_primary_contact_a_customer(store):
    run(b"Email,Lifecycle Stage\nana@x.example,SQL\n", kind="contacts")
    _, summary = run(b"Deal ID,Deal Name,Contact Email,Stage,Close Date\nD1,Big one,ana@x.example,Closed Won,2025-03-04\n")
    assert summary.contacts_made_customers == 1
    with unit_of_work(readonly=True) as session:
        ana = session.scalars(select(Contact)).one()
        assert (ana.lifecycle_stage, ana.outcome_at) == ("customer", datetime(2025, 3, 4))
    _, again = run(b"Deal ID,Deal Name,Contact Email,Stage,Close Date\nD1,Big one,ana@x.example,Closed Won,2025-03-04\n")
    assert (again.unchanged, again.contacts_made_customers) == (1, 0)


def test_a_stage_change_on_reimport_writes_history_and_moves_stage_entered_at(store):
    run(b"Deal ID,Deal Name,Stage,Amount\nD1,Acme,Discovery,1000\n", at=datetime(2025, 1, 1))
    _, summary = run(b"Deal ID,Deal Name,Stage,Amount\nD1,Acme,Proposal,\n", at=datetime(2025, 2, 1))
    assert (summary.updated, summary.stage_changes) == (1, 1)
    deal = deals()["D1"]
    assert (deal.stage, deal.stage_entered_at, deal.amount) == ("Proposal", datetime(2025, 2, 1), Decimal("1000.00"))
    assert history() == [("D1", None, "Discovery", datetime(2025, 1, 1)), ("D1", "Discovery", "Proposal", datetime(2025, 2, 1))]
    _, lost = run(b"Deal ID,Deal Name,Stage\nD1,Acme,Lost\n", at=datetime(2025, 3, 1))
    deal = deals()["D1"]
    assert (deal.status, deal.closed_at, lost.stage_changes) == ("lost", datetime(2025, 3, 1), 1)


def test_importing_the_same_deals_twice_changes_nothing(store):
    run(FIXTURES / "hubspot_contacts.csv", kind="contacts")
    run(FIXTURES / "pipedrive_deals.tsv.csv")
    before = {k: d.updated_at for k, d in deals().items()}
    _, summary = run(FIXTURES / "pipedrive_deals.tsv.csv", at=datetime(2025, 7, 1))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 3)
    assert {k: d.updated_at for k, d in deals().items()} == before
    assert len(history()) == 3


def test_deals_without_external_id_match_on_name_at_the_same_account(store):
    data = b"Deal Name,Company,Stage\nRenewal,Acme,Proposal\nRenewal,Globex,Proposal\n"
    run(data)
    _, summary = run(data)
    assert (summary.created, summary.unchanged) == (0, 2)


def test_a_deal_for_an_unknown_contact_is_a_row_error_naming_the_column(store):
    with pytest.raises(ImportRejected, match=r"row 2, column 'mql_id': no contact with external id 'abc'; "
                                             r"import the contacts first"):
        run(b"mql_id,Deal Name,Stage\nabc,X,Won\n")


def test_a_non_number_amount_rejects_the_file(store):
    with pytest.raises(ImportRejected, match=r"row 3, column 'Amount': 'ten thousand' is not a number"):
        run(FIXTURES / "bad_amount.csv")
    with unit_of_work(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Deal)) == 0


def test_stage_and_status_that_disagree_are_a_row_error(store):
    with pytest.raises(ImportRejected, match="stage 'Closed Lost' says lost but status says won"):
        run(b"Deal ID,Deal Name,Stage,Status\nD1,X,Closed Lost,Won\n")


def test_a_status_column_alone_closes_deals(store):
    run(b"Deal ID,Deal Name,Status,Won Date\nD1,X,won,2025-01-02\nD2,Y,lost,\n")
    rows = deals()
    assert (rows["D1"].stage, rows["D1"].closed_at) == ("Closed Won", datetime(2025, 1, 2))
    assert (rows["D2"].stage, rows["D2"].closed_at) == ("Closed Lost", NOW)


def test_a_deal_name_is_made_from_account_and_product_when_absent(store):
    run(b"Opportunity ID,Account,Product,Deal Stage\nO1,Cancity,GTX Plus Basic,Engaging\nO2,,MG Special,Prospecting\n")
    rows = deals()
    assert rows["O1"].name == "Cancity \u2013 GTX Plus Basic"
    assert rows["O2"].name == "O2 \u2013 MG Special"
    with unit_of_work(readonly=True) as session:
        assert session.scalars(select(Account.name)).all() == ["Cancity"]
