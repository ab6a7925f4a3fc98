"""The HTTP API's events endpoint through a real uvicorn and httpx: auth, batches, idempotency, bad input."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from crm_core.db import unit_of_work
from crm_core.models import Activity, Contact, IdempotencyRecord
from tests.api_harness import client, make_user, running_api


def _count(model) -> int:
    with unit_of_work(readonly=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def api(store):
    user = make_user()
    with running_api() as base:
        yield base, user


def test_event_creates_lead_and_activity(api):
    base, user = api
    with client(base, user) as http:
        r = http.post("/v1/events", json={"type": "page_view", "email": "New.Visitor@Example.com", "url": "/pricing",
                                          "first_name": "Nia", "occurred_at": "2026-12-07T09:30:00+01:00"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["contacts_created"] == 1
    with unit_of_work(readonly=True) as session:
        contact = session.scalars(select(Contact)).one()
        activity = session.scalars(select(Activity)).one()
    assert contact.email_normalized == "new.visitor@example.com" and contact.lifecycle_stage == "lead"
    assert contact.first_name == "Nia"
    assert activity.type == "page_view" and activity.payload["url"] == "/pricing"
    assert activity.occurred_at.hour == 8  # stored as naive UTC
    assert contact.last_activity_at == activity.occurred_at


def test_batch_with_common_spellings_and_event_ids(api):
    base, user = api
    events = [{"type": "pageview", "email": "a@example.com", "event_id": "e1"},
              {"type": "reply", "email": "a@example.com", "body": "Ignore previous instructions", "event_id": "e2"},
              {"type": "form", "contact_external_id": "crm-77", "fields": {"plan": "pro"}}]
    with client(base, user) as http:
        first = http.post("/v1/events", json={"events": events})
        again = http.post("/v1/events", json={"events": events[:2]})
    assert first.status_code == 201, first.text
    assert first.json()["accepted"] == 3 and first.json()["contacts_created"] == 2
    assert again.status_code == 201 and again.json()["accepted"] == 0 and again.json()["duplicates"] == 2
    with unit_of_work(readonly=True) as session:
        types = sorted(session.scalars(select(Activity.type)))
    assert types == ["email_replied", "form_submit", "page_view"]


def test_idempotency_key_replays_and_refuses_a_different_body(api):
    base, user = api
    payload = {"type": "email_opened", "email": "b@example.com"}
    with client(base, user) as http:
        r1 = http.post("/v1/events", json=payload, headers={"Idempotency-Key": "k-1"})
        r2 = http.post("/v1/events", json=payload, headers={"Idempotency-Key": "k-1"})
        r3 = http.post("/v1/events", json={**payload, "type": "email_clicked"}, headers={"Idempotency-Key": "k-1"})
    assert r1.status_code == 201 and r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true" and r2.json() == r1.json()
    assert r3.status_code == 422 and "different request body" in r3.json()["error"]
    assert _count(Activity) == 1


@pytest.mark.parametrize("body, field", [
    (b'{"type": "page_view", "email": ', "body"),
    (json.dumps({"type": "page_view", "email": "x@example.com", "colour": "red"}).encode(), "events[0].colour"),
    (json.dumps({"type": "teleport", "email": "x@example.com"}).encode(), "events[0].type"),
    (json.dumps({"type": "page_view", "email": "not-an-email"}).encode(), "events[0].email"),
    (json.dumps({"type": "page_view"}).encode(), "events[0].email"),
    (json.dumps({"type": "stage_change", "email": "x@example.com"}).encode(), "events[0].type"),
    (json.dumps({"events": [{"type": "page_view", "email": "ok@example.com"}, {"type": "call"}]}).encode(), "events[1].email"),
])
def test_bad_input_is_a_clear_422_and_stores_nothing(api, body, field):
    base, user = api
    with client(base, user) as http:
        r = http.post("/v1/events", content=body, headers={"Content-Type": "application/json", "Idempotency-Key": "bad"})
    assert r.status_code == 422, r.text
    out = r.json()
    assert "nothing was stored" in out["error"]
    assert field in [p["field"] for p in out["problems"]], out
    assert "Traceback" not in r.text
    assert _count(Activity) == 0 and _count(Contact) == 0 and _count(IdempotencyRecord) == 0


def test_ten_megabyte_body_is_413(api):
    base, user = api
    big = json.dumps({"events": [{"type": "page_view", "email": "big@example.com", "body": "x" * 10_000}] * 1000}).encode()
    assert len(big) > 10_000_000
    with client(base, user) as http:
        r = http.post("/v1/events", content=big, headers={"Content-Type": "application/json"})

        def chunks():
            for start in range(0, len(big), 65536):
                yield big[start:start + 65536]
        chunked = http.post("/v1/events", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert chunked.status_code == 413
    assert _count(Activity) == 0 and _count(Contact) == 0


def test_no_token_or_a_wrong_one_is_401(api):
    base, _user = api
    with client(base) as http:
        missing = http.post("/v1/events", json={"type": "page_view", "email": "c@example.com"})
        wrong = http.post("/v1/events", json={"type": "page_view", "email": "c@example.com"},
                          headers={"Authorization": "Bearer crm_not-a-real-token"})
    assert missing.status_code == 401 and "Bearer" in missing.json()["error"]
    assert wrong.status_code == 401 and "unknown" in wrong.json()["error"]
    assert _count(Activity) == 0


def test_thousand_events_ten_clients_ten_percent_retried(api):
    """1,000 events by 10 concurrent clients, each request of 10 events; every 10th request is sent twice."""
    base, user = api
    requests = []
    for r in range(100):
        events = [{"type": "page_view", "email": f"visitor{(r * 10 + i) % 150}@example.com", "url": f"/p/{r}/{i}"}
                  for i in range(10)]
        requests.append((f"req-{r}", {"events": events}))
    retried = [requests[i] for i in range(0, 100, 10)]
    lock = threading.Lock()
    statuses: list[int] = []

    def send(item):
        key, body = item
        with httpx.Client(base_url=base, headers=user.headers, timeout=60) as http:
            r = http.post("/v1/events", json=body, headers={"Idempotency-Key": key})
        with lock:
            statuses.append(r.status_code)
        return r.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(send, requests + retried))
    assert statuses.count(201) == 110, statuses
    assert sum(r["accepted"] for r in results[:100]) == 1000
    assert _count(Activity) == 1000
    assert _count(Contact) == 150
    with unit_of_work(readonly=True) as session:
        urls = list(session.scalars(select(Activity.payload)))
    assert len({p["url"] for p in urls}) == 1000


def test_a_revoked_token_stops_at_once(api):
    from crm_core.auth.accounts import actor_for
    from crm_core.auth.tokens import list_tokens, revoke_token
    from crm_core.models import User

    base, user = api
    with client(base, user) as http:
        assert http.post("/v1/events", json={"type": "call", "email": "d@example.com"}).status_code == 201
        with unit_of_work() as session:
            [token] = list_tokens(session, user_id=user.user_id)
            revoke_token(session, token.id, actor=actor_for(session.get(User, user.user_id), "password"))
        refused = http.post("/v1/events", json={"type": "call", "email": "d@example.com"})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert _count(Activity) == 1
