"""The real datasets in ../shared/data import as they are, with the mapping files in mappings/.

Row counts are compared with the files themselves (read with the csv module), and those with
the counts SOURCE.md gives.
"""
from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from crm_core.db import unit_of_work
from crm_core.importing import ImportMapping, apply_import, plan_import, read_csv
from crm_core.models import Account, Contact, Deal, StageHistory, User

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def file_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(kind: str, path: Path, mapping: str):
    with unit_of_work() as session:
        plan = plan_import(session, kind, read_csv(path), ImportMapping.load(MAPPINGS / mapping))
        assert plan.errors == [] and plan.warnings == []
        return apply_import(session, plan)


def count(model, *where) -> int:
    with unit_of_work(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_maven_crm_accounts_and_pipeline_import_with_matching_counts(store, shared_data):
    folder = shared_data / "maven_crm"
    accounts = file_rows(folder / "accounts.csv")
    pipeline = file_rows(folder / "sales_pipeline.csv")
    assert (len(accounts), len(pipeline)) == (85, 8800)  # as SOURCE.md describes them

    summary = run("accounts", folder / "accounts.csv", "maven_accounts.json")
    assert summary.created == len(accounts) == count(Account)
    summary = run("deals", folder / "sales_pipeline.csv", "maven_pipeline.json")
    assert summary.created == len(pipeline) == count(Deal)
    assert summary.accounts_created == 0  # every pipeline account is in accounts.csv
    assert summary.users_created == len({r["sales_agent"] for r in pipeline}) == count(User)

    stages = Counter(r["deal_stage"] for r in pipeline)
    assert count(Deal, Deal.status == "won") == stages["Won"]
    assert count(Deal, Deal.status == "lost") == stages["Lost"]
    assert count(Deal, Deal.status == "open") == stages["Engaging"] + stages["Prospecting"]
    assert count(StageHistory) == len(pipeline)
    # kept as they are: the GTXPro spelling and a M/D/YYYY date read month first
    first = pipeline[1]
    with unit_of_work(readonly=True) as session:
        deal = session.scalars(select(Deal).where(Deal.external_id == first["opportunity_id"])).one()
        assert (deal.product, first["product"]) == ("GTXPro", "GTXPro")
        assert deal.opened_at == datetime.strptime(first["engage_date"], "%m/%d/%Y")
        assert deal.closed_at == datetime.strptime(first["close_date"], "%m/%d/%Y")
        acme = session.scalars(select(Account).where(Account.name_key == "acme corporation")).one()
        assert (acme.industry, acme.country, acme.attributes["year_established"]) == ("technolgy", "United States", 1996)
        assert str(acme.annual_revenue) == "1100040000.00"  # revenue is in USD millions in the file

    again = run("deals", folder / "sales_pipeline.csv", "maven_pipeline.json")
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(pipeline))


def test_olist_leads_and_closed_deals_import_and_closed_leads_become_customers(store, shared_data):
    folder = shared_data / "olist_funnel"
    leads = file_rows(folder / "olist_marketing_qualified_leads_dataset.csv")
    closed = file_rows(folder / "olist_closed_deals_dataset.csv")
    assert (len(leads), len(closed)) == (8000, 842)  # as SOURCE.md describes them

    summary = run("contacts", folder / "olist_marketing_qualified_leads_dataset.csv", "olist_leads.json")
    assert summary.created == len(leads) == count(Contact)
    assert summary.merge_proposals == []
    summary = run("deals", folder / "olist_closed_deals_dataset.csv", "olist_closed_deals.json")
    assert summary.created == len(closed) == count(Deal, Deal.status == "won")
    assert summary.contacts_made_customers == len(closed)
    assert count(Contact, Contact.lifecycle_stage == "customer") == len(closed)
    assert count(Contact, Contact.lifecycle_stage == "mql") == len(leads) - len(closed)

    lead, deal_row = leads[0], closed[0]
    with unit_of_work(readonly=True) as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == lead["mql_id"])).one()
        assert contact.created_at == datetime.fromisoformat(lead["first_contact_date"])
        assert (contact.source or "") == lead["origin"]
        assert contact.attributes == {"landing_page_id": lead["landing_page_id"]}
        deal = session.scalars(select(Deal).where(Deal.external_id == deal_row["seller_id"])).one()
        won_by = session.get(Contact, deal.primary_contact_id)
        assert won_by.external_id == deal_row["mql_id"]
        assert deal.closed_at == won_by.outcome_at == datetime.fromisoformat(deal_row["won_date"])
        assert deal.attributes["business_segment"] == deal_row["business_segment"]
        assert deal.attributes["declared_monthly_revenue"] == float(deal_row["declared_monthly_revenue"])

    # Re-importing the leads does not take the customers back to mql.
    again = run("contacts", folder / "olist_marketing_qualified_leads_dataset.csv", "olist_leads.json")
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(leads))
    assert count(Contact, Contact.lifecycle_stage == "customer") == len(closed)
