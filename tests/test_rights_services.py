"""Rights in the list, detail, snooze, exchange-rate, import and integration services (SQLite and PostgreSQL).

A rep sees and acts on the records they own; asking for anyone else's is refused naming the right
(`view_all` to see, `act_on_any` to act); imports and exchange rates need a manager, integrations
an admin. Every refusal changes nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from auth_helpers import actor_of, add_user
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.errors import PermissionDenied
from crm_core.models import AuditEntry, Contact, Deal, ExchangeRate, Meeting, ReportingCurrency
from crm_core.services import fx, imports, meetings, owners, pipeline, records
from crm_core.webhooks import outbound, sources

NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def team(store):
    """A manager, an admin and two reps; each rep owns a contact, a red deal and a meeting."""
    with unit_of_work() as s:
        people = {"mo": add_user(s, "Mo Manager", "manager"), "ada": add_user(s, "Ada Admin", "admin"),
                  "rita": add_user(s, "Rita Rep", "rep"), "sam": add_user(s, "Sam Rep", "rep")}
        ids: dict[str, object] = {k: actor_of(u) for k, u in people.items()}
        for who in ("rita", "sam"):
            owner = people[who].id
            contact = Contact(first_name=who.title(), last_name="Buyer", email=f"{who}.buyer@acme.example", owner_id=owner)
            s.add(contact)
            s.flush()
            deal = Deal(name=f"{who.title()}'s deal", stage="Demo", status="open", amount=Decimal(1000), currency="USD",
                        owner_id=owner, primary_contact_id=contact.id, risk="red", risk_reason="quiet",
                        stage_entered_at=NOW - timedelta(days=3))
            s.add(deal)
            s.flush()
            s.add(Meeting(uid=f"m-{who}", title=f"{who.title()}'s call", owner_id=owner, contact_id=contact.id, deal_id=deal.id,
                          starts_at=NOW + timedelta(days=1), ends_at=NOW + timedelta(days=1, hours=1)))
            ids[f"{who}_id"], ids[f"{who}_contact"], ids[f"{who}_deal"] = owner, contact.id, deal.id
    return ids


def refused(right: str):
    return pytest.raises(PermissionDenied, match=right)


def test_a_rep_sees_only_their_own_deals_and_a_manager_filters_by_owner(team):
    rita, mo = team["rita"], team["mo"]
    with unit_of_work(readonly=True) as s:
        mine = pipeline.pipeline_board(s, actor=rita)
        assert (mine.open_deals, [c.name for c in mine.red_list]) == (1, ["Rita's deal"])
        assert [c.name for c in pipeline.stage_deals(s, stage="Demo", actor=rita).rows] == ["Rita's deal"]
        assert pipeline.pipeline_board(s, team["rita_id"], actor=rita).open_deals == 1
        with refused("view_all") as caught:
            pipeline.pipeline_board(s, team["sam_id"], actor=rita)
        assert "Rita Rep (a rep) cannot see the pipeline of someone else" in str(caught.value)
        with refused("view_all"):
            pipeline.stage_deals(s, stage="Demo", owner_id=team["sam_id"], actor=rita)
        with refused("view_all"):
            pipeline.deal_card(s, team["sam_deal"], actor=rita)
        assert pipeline.deal_card(s, team["rita_deal"], actor=rita).name == "Rita's deal"
        assert pipeline.pipeline_board(s, actor=mo).open_deals == 2
        assert [c.name for c in pipeline.pipeline_board(s, team["sam_id"], actor=mo).red_list] == ["Sam's deal"]
        assert owners.owner_choices(s, actor=rita).model_dump() == {"everyone": False, "owners": [(team["rita_id"], "Rita Rep")]}
        picker = owners.owner_choices(s, actor=mo)
        assert picker.everyone and [name for _, name in picker.owners] == ["Ada Admin", "Mo Manager", "Rita Rep", "Sam Rep"]


def test_a_rep_snoozes_and_resumes_only_their_own_deals_flag_audited_as_them(team):
    rita, mo = team["rita"], team["mo"]
    until = NOW.date() + timedelta(days=5)
    with unit_of_work() as s:
        card = pipeline.snooze_deal(s, team["rita_deal"], until=until, reason="buyer away", actor=rita)
    assert card.risk == "snoozed" and card.snoozed_by == "Rita Rep"
    with unit_of_work() as s, refused("act_on_any") as caught:
        pipeline.snooze_deal(s, team["sam_deal"], until=until, reason="buyer away", actor=rita)
    assert "someone else's record" in str(caught.value)
    with unit_of_work() as s:
        pipeline.snooze_deal(s, team["sam_deal"], until=until, reason="covering for Sam", actor=mo)
    with unit_of_work() as s, refused("act_on_any"):
        pipeline.resume_deal_flag(s, team["sam_deal"], actor=rita)
    with unit_of_work() as s:
        pipeline.resume_deal_flag(s, team["rita_deal"], actor=rita)
    with unit_of_work(readonly=True) as s:
        entries = s.execute(select(AuditEntry.event, AuditEntry.actor, AuditEntry.subject_id)
                            .where(AuditEntry.event.like("deal.risk_%")).order_by(AuditEntry.id)).all()
        sam = s.get(Deal, team["sam_deal"])
        assert (sam.risk_snoozed_until, sam.risk_snoozed_by) == (until, "Mo Manager")  # Rita's resume changed nothing
    assert [tuple(e) for e in entries] == [
        ("deal.risk_snoozed", "Rita Rep (password)", team["rita_deal"]),
        ("deal.risk_snoozed", "Mo Manager (password)", team["sam_deal"]),
        ("deal.risk_unsnoozed", "Rita Rep (password)", team["rita_deal"]),
    ]


def test_a_rep_sees_only_their_own_meetings(team):
    with unit_of_work(readonly=True) as s:
        assert [m.title for m in meetings.meetings_overview(s, actor=team["rita"]).upcoming] == ["Rita's call"]
        with refused("view_all"):
            meetings.meetings_overview(s, actor=team["rita"], owner_id=team["sam_id"])
        assert meetings.meetings_overview(s, actor=team["mo"]).upcoming_total == 2
        assert [m.title for m in meetings.meetings_overview(s, actor=team["mo"], owner_id=team["sam_id"]).upcoming] == ["Sam's call"]


def test_a_rep_opening_someone_elses_record_is_refused_naming_view_all(team):
    rita, mo = team["rita"], team["mo"]
    with unit_of_work(readonly=True) as s:
        assert records.contact_detail(s, team["rita_contact"], actor=rita).name == "Rita Buyer"
        assert records.deal_detail(s, team["rita_deal"], actor=rita).owner == "Rita Rep"
        for call, record_id in ((records.contact_detail, team["sam_contact"]), (records.contact_timeline, team["sam_contact"]),
                                (records.deal_detail, team["sam_deal"]), (records.deal_timeline, team["sam_deal"])):
            with refused("view_all") as caught:
                call(s, record_id, actor=rita)
            assert "Rita Rep (a rep) cannot open this" in str(caught.value) and "Sam" not in str(caught.value)
        assert records.deal_detail(s, team["sam_deal"], actor=mo).owner == "Sam Rep"
        # Search finds a rep's own records only; a manager's search finds everyone's.
        assert {h.label for h in records.search_records(s, "buyer", actor=rita)} == {"Rita Buyer"}
        assert records.search_records(s, str(team["sam_deal"]), actor=rita) == []
        assert {h.label for h in records.search_records(s, "deal", actor=mo)} == {"Rita's deal", "Sam's deal"}


def test_exchange_rates_and_the_reporting_currency_need_edit_exchange_rates(team):
    rita, mo = team["rita"], team["mo"]
    with unit_of_work() as s, refused("edit_exchange_rates") as caught:
        fx.set_rate(s, "GBP", "0.85", rate_date=NOW.date(), actor=rita)
    assert "Rita Rep (a rep) cannot change an exchange rate" in str(caught.value)
    with unit_of_work() as s, refused("edit_exchange_rates"):
        fx.import_rates_csv(s, b"currency,units_per_eur,date\nGBP,0.85,2026-11-19\n", actor=rita, filename="ecb.csv")
    with unit_of_work() as s, refused("edit_exchange_rates"):
        fx.set_reporting_currency(s, "EUR", actor=rita)
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ExchangeRate)) == 0 and s.get(ReportingCurrency, 1) is None
    with unit_of_work() as s:
        fx.set_rate(s, "GBP", "0.85", rate_date=NOW.date(), actor=mo)
        fx.set_reporting_currency(s, "EUR", actor=mo)
    with unit_of_work(readonly=True) as s:
        actors = set(s.scalars(select(AuditEntry.actor).where(AuditEntry.event.like("fx.%"))))
        assert actors == {"Mo Manager (password)"} and fx.reporting_currency(s) == "EUR"


def test_an_import_and_a_saved_mapping_need_import_data(team, monkeypatch, tmp_path):
    monkeypatch.setattr(imports, "saved_mappings_dir", lambda: tmp_path / "mappings")
    table = imports.read_upload(b"Email,First Name\nnew@x.example,New\n", "people.csv")
    mapping = imports.mapping_from_choices(table.headers, {"Email": "email", "First Name": "first_name"})
    with unit_of_work(readonly=True) as s:
        plan = imports.dry_run(s, "contacts", table, mapping)
    with unit_of_work() as s, refused("import_data") as caught:
        imports.run_import(s, plan, actor=team["rita"])
    assert "Rita Rep (a rep) cannot import people.csv" in str(caught.value)
    with refused("import_data"):
        imports.save_mapping("Our contacts", mapping, kind="contacts", actor=team["rita"])
    assert not (tmp_path / "mappings").exists()
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Contact).where(Contact.email == "new@x.example")) == 0
    with unit_of_work() as s:
        assert imports.run_import(s, plan, actor=team["mo"]).created == 1
    assert imports.save_mapping("Our contacts", mapping, kind="contacts", actor=team["mo"]).source == "saved"


def test_webhook_sources_and_subscriptions_need_manage_integrations(team):
    with unit_of_work() as s, refused("manage_integrations") as caught:
        sources.create_source(s, "website", actor=team["mo"])
    assert "Mo Manager (a manager) cannot add a webhook source" in str(caught.value) and "an admin" in str(caught.value)
    with unit_of_work() as s, refused("manage_integrations"):
        outbound.create_subscription(s, "http://127.0.0.1:9/hook", ["decision.created"], actor=team["mo"])
    with unit_of_work() as s:
        view, secret = sources.create_source(s, "website", actor=team["ada"])
    assert view.active and secret.startswith("whsec_")


def test_a_rep_sees_only_their_own_leads_and_score_histories(team):
    from crm_core.services import leads

    rita, mo = team["rita"], team["mo"]
    with unit_of_work(readonly=True) as s:
        assert [r.name for r in leads.lead_table(s, leads.LeadFilters(), actor=rita).rows] == ["Rita Buyer"]
        assert sum(b.contacts for b in leads.score_distribution(s, leads.LeadFilters(), actor=rita).buckets) == 0
        assert leads.score_distribution(s, leads.LeadFilters(), actor=rita).unscored == 1
        with refused("view_all"):
            leads.lead_table(s, leads.LeadFilters(owner_ids=(team["sam_id"],)), actor=rita)
        with refused("view_all"):
            leads.score_history(s, team["sam_contact"], actor=rita)
        assert leads.score_history(s, team["rita_contact"], actor=rita).name == "Rita Buyer"
        assert {r.name for r in leads.lead_table(s, leads.LeadFilters(), actor=mo).rows} == {"Rita Buyer", "Sam Buyer"}
