"""Contacts, accounts and deals over HTTP: upsert by external id, read with what the agents concluded, cursor lists."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from crm_core.db import unit_of_work
from crm_core.models import Account, Contact, Decision, StageHistory
from tests.api_harness import client, make_user, running_api


@pytest.fixture
def http(store):
    user = make_user("Avery Admin", "admin")
    with running_api() as base, client(base, user) as c:
        yield c


def test_contact_upsert_by_external_id_then_read_with_score_and_decisions(http):
    made = http.post("/v1/contacts", json={"external_id": "hs-1", "name": "Jane Doe", "email": "Jane@Acme.test",
                                           "account": "Acme", "account_domain": "https://www.acme.test/", "owner": "Avery Admin",
                                           "lifecycle_stage": "Marketing Qualified Lead", "attributes": {"plan": "pro"}})
    assert made.status_code == 201, made.text
    contact_id = made.json()["id"]
    updated = http.post("/v1/contacts", json={"external_id": "hs-1", "title": "CFO", "attributes": {"seats": 40}})
    assert updated.status_code == 200 and updated.json() == {"id": contact_id, "created": False}
    patched = http.patch(f"/v1/contacts/{contact_id}", json={"phone": "(415) 555-0100"})
    assert patched.status_code == 200
    with unit_of_work() as s:
        contact = s.get(Contact, contact_id)
        contact.score, contact.tier, contact.next_action = 82, "hot", "senior_rep"
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=contact_id, status="executed",
                       confidence=0.7, actions=[{"type": "update_lead_score", "reason": "Pricing page twice this week"}]))
    got = http.get(f"/v1/contacts/{contact_id}").json()
    assert (got["first_name"], got["last_name"], got["email"], got["title"], got["owner"]) == ("Jane", "Doe", "Jane@Acme.test", "CFO", "Avery Admin")
    assert got["lifecycle_stage"] == "mql" and got["account_name"] == "Acme"
    assert (got["score"], got["tier"], got["next_action"]) == (82, "hot", "senior_rep")
    assert got["attributes"] == {"plan": "pro", "seats": 40}
    assert got["latest_decisions"][0]["summary"] == "Pricing page twice this week"
    with unit_of_work(readonly=True) as s:
        account = s.scalars(select(Account)).one()
        assert account.domain == "acme.test"
        assert set(s.get(Contact, contact_id).manual_fields) >= {"title", "phone", "email"}


def test_bad_records_are_clear_422s_naming_the_field(http):
    cases = [
        ({"email": "not an email"}, "email"),
        ({"name": "X", "colour": "red"}, "colour"),
        ({"name": "X", "owner": "Nobody Here"}, "owner"),
        ({"name": "X", "lifecycle_stage": "sleeping"}, "lifecycle_stage"),
        ({}, "body"),
    ]
    for body, field in cases:
        r = http.post("/v1/contacts", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [p["field"] for p in r.json()["problems"]], (body, r.json())
    assert http.get("/v1/contacts/999").status_code == 404
    assert http.get("/v1/contacts", params={"cursor": "garbage!"}).status_code == 422
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_lists_page_by_cursor_with_filters(http):
    for i in range(7):
        http.post("/v1/contacts", json={"external_id": f"c{i}", "email": f"p{i}@example.com",
                                        "lifecycle_stage": "lead" if i % 2 else "sql"})
    seen, cursor = [], None
    while True:
        page = http.get("/v1/contacts", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["external_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"c{i}" for i in range(7)]
    sql = http.get("/v1/contacts", params={"lifecycle_stage": "sql"}).json()["items"]
    assert [c["external_id"] for c in sql] == ["c0", "c2", "c4", "c6"]


def test_deal_upsert_moves_stage_with_history_and_reads_risk(http):
    http.post("/v1/contacts", json={"external_id": "k1", "email": "buyer@globex.test"})
    made = http.post("/v1/deals", json={"external_id": "opp-9", "name": "Globex platform", "stage": "Discovery",
                                        "amount": 48000, "currency": "eur", "contact_email": "buyer@globex.test",
                                        "account": "Globex"})
    assert made.status_code == 201, made.text
    deal_id = made.json()["id"]
    moved = http.post("/v1/deals", json={"external_id": "opp-9", "stage": "Proposal"})
    assert moved.status_code == 200
    won = http.patch(f"/v1/deals/{deal_id}", json={"stage": "Closed Won"})
    assert won.status_code == 200
    deal = http.get(f"/v1/deals/{deal_id}").json()
    assert (deal["stage"], deal["status"], deal["currency"], deal["amount"]) == ("Closed Won", "won", "EUR", 48000.0)
    assert deal["primary_contact_id"] is not None and deal["risk"] is None
    contact = http.get(f"/v1/contacts/{deal['primary_contact_id']}").json()
    assert contact["open_deals"] == []  # won now
    http.post("/v1/deals", json={"external_id": "opp-11", "name": "Globex add-on", "stage": "Discovery",
                                 "contact_external_id": "k1"})
    [open_deal] = http.get(f"/v1/contacts/{deal['primary_contact_id']}").json()["open_deals"]
    assert (open_deal["name"], open_deal["stage"], open_deal["risk"]) == ("Globex add-on", "Discovery", None)
    with unit_of_work(readonly=True) as s:
        stages = [h.to_stage for h in s.scalars(select(StageHistory).where(StageHistory.deal_id == deal_id).order_by(StageHistory.id))]
    assert stages == ["Discovery", "Proposal", "Closed Won"]
    bad = http.post("/v1/deals", json={"external_id": "opp-10", "stage": "Proposal", "contact_email": "nobody@x.test"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "contact_email"
    assert http.get("/v1/deals", params={"status": "won"}).json()["items"][0]["id"] == deal_id


def test_docs_and_unknown_routes(http):
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"] and "/v1/queue/{decision_id}/approve" in spec["paths"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert {"EventIn", "EventBatch"} <= refs and refs <= set(spec["components"]["schemas"])
    missing = http.get("/v1/nothing")
    assert missing.status_code == 404 and "docs" in missing.json()["error"]


def test_a_reps_token_sees_own_and_unowned_records_only(store):
    admin = make_user("Avery Admin", "admin")
    rep = make_user("Riley Rep", "rep")
    make_user("Sasha Rep", "rep")
    with running_api() as base, client(base, admin) as boss, client(base, rep) as riley:
        mine = boss.post("/v1/contacts", json={"external_id": "m", "name": "Mine", "owner": "Riley Rep"}).json()["id"]
        theirs = boss.post("/v1/contacts", json={"external_id": "t", "name": "Theirs", "owner": "Sasha Rep"}).json()["id"]
        boss.post("/v1/contacts", json={"external_id": "u", "name": "Unowned"})
        assert sorted(c["external_id"] for c in riley.get("/v1/contacts").json()["items"]) == ["m", "u"]
        assert len(boss.get("/v1/contacts").json()["items"]) == 3
        assert riley.get(f"/v1/contacts/{mine}").status_code == 200
        denied = riley.get(f"/v1/contacts/{theirs}")
        assert denied.status_code == 403 and denied.json()["right"] == "view_all"
        assert riley.patch(f"/v1/contacts/{theirs}", json={"title": "CEO"}).status_code == 403
        assert riley.post("/v1/contacts", json={"external_id": "t", "title": "CEO"}).status_code == 403
    with unit_of_work(readonly=True) as s:
        assert s.get(Contact, theirs).title is None


def test_accounts_upsert_by_external_id_or_domain(http):
    made = http.post("/v1/accounts", json={"external_id": "a-1", "name": "Initech", "domain": "initech.test",
                                           "employee_count": 120, "annual_revenue": 2500000})
    assert made.status_code == 201
    by_domain = http.post("/v1/accounts", json={"domain": "https://initech.test/about", "industry": "Software"})
    assert by_domain.status_code == 200 and by_domain.json()["id"] == made.json()["id"]
    account = http.get(f"/v1/accounts/{made.json()['id']}").json()
    assert (account["name"], account["industry"], account["employee_count"]) == ("Initech", "Software", 120)
    assert http.get("/v1/accounts", params={"domain": "initech.test"}).json()["items"][0]["external_id"] == "a-1"
    bad = http.post("/v1/accounts", json={"employee_count": -3, "name": "X"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "employee_count"
