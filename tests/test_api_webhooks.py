"""Signed webhooks through a real uvicorn: inbound HMAC sources (replay, wrong signature), outbound subscriptions
delivered to a real receiver on loopback with retries, never twice, and the queue approved over HTTP."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from agents.base import DecisionEnvelope, Proposal, ProposedAction
from crm_core import clock, oversight
from crm_core.db import unit_of_work
from crm_core.models import Activity, Contact, Cursor, Deal, WebhookDelivery
from crm_core.webhooks import outbound, signing
from orchestration.scheduler import live_jobs
from tests.api_harness import client, make_user, running_api


def _count(model, *where) -> int:
    with unit_of_work(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def api(store):
    admin = make_user("Avery Admin", "admin")
    rep = make_user("Riley Rep", "rep")
    with running_api() as base:
        yield base, admin, rep


# ---- inbound ------------------------------------------------------------------------------

def _signed_post(http, source: str, secret: str, body: bytes, *, timestamp: int | None = None, signature: str | None = None):
    headers = signing.signed_headers(secret, body, timestamp=timestamp)
    if signature is not None:
        headers[signing.SIGNATURE_HEADER] = signature
    return http.post(f"/v1/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers})


def test_inbound_source_accepts_only_a_fresh_correct_signature(api):
    base, admin, rep = api
    with client(base, admin) as http:
        made = http.post("/v1/webhook-sources", json={"name": "typeform"})
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert client(base, rep).post("/v1/webhook-sources", json={"name": "other"}).status_code == 403

    body = json.dumps({"type": "form_submit", "email": "lead@example.com", "fields": {"company_size": "50-200"}}).encode()
    now = int(time.time())
    with client(base) as http:  # no token: the signature is the proof
        wrong = _signed_post(http, "typeform", secret, body, signature="v1=" + "0" * 64)
        other_secret = _signed_post(http, "typeform", "whsec_not-the-secret", body)
        expired = _signed_post(http, "typeform", secret, body, timestamp=now - 301)
        future = _signed_post(http, "typeform", secret, body, timestamp=now + 3600)
        unsigned = http.post("/v1/webhooks/typeform", content=body, headers={"Content-Type": "application/json"})
        unknown = _signed_post(http, "nosuch", secret, body)
        tampered_headers = signing.signed_headers(secret, body)
        tampered = http.post("/v1/webhooks/typeform", content=body.replace(b"lead@", b"evil@"),
                             headers={"Content-Type": "application/json", **tampered_headers})
        malformed = _signed_post(http, "typeform", secret, b'{"type": "form_submit", "email": ')
        unknown_field = _signed_post(http, "typeform", secret, json.dumps({"type": "form_submit", "email": "a@example.com",
                                                                           "admin": True}).encode())
        for r in (wrong, other_secret, expired, future, unsigned, unknown, tampered):
            assert r.status_code == 401, r.text
            assert "nothing was stored" in r.json()["error"]
        assert "replayed" in expired.json()["error"] and "does not match" in wrong.json()["error"]
        assert malformed.status_code == 422 and unknown_field.status_code == 422
        assert unknown_field.json()["problems"][0]["field"] == "events[0].admin"
        assert _count(Activity) == 0 and _count(Contact) == 0

        good = _signed_post(http, "typeform", secret, body)
    assert good.status_code == 201, good.text
    with unit_of_work(readonly=True) as s:
        activity = s.scalars(select(Activity)).one()
    assert activity.type == "form_submit" and activity.source == "webhook:typeform"
    assert activity.payload["fields"] == {"company_size": "50-200"}


# ---- outbound -----------------------------------------------------------------------------

class Receiver:
    """A webhook receiver on loopback that fails its first request, then verifies and keeps every call."""

    def __init__(self, secret_box: dict) -> None:
        self.calls: list[dict] = []
        self.fail_next = 1
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                signing.verify(secret_box["secret"], timestamp=self.headers[signing.TIMESTAMP_HEADER],
                               provided=self.headers[signing.SIGNATURE_HEADER], body=body, tolerance_s=300)
                outer.calls.append({"event": self.headers[signing.EVENT_HEADER], "id": self.headers[signing.EVENT_ID_HEADER],
                                    "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _queued_risk_flag() -> tuple[int, int]:
    with unit_of_work() as s:
        deal = Deal(name="Acme renewal", stage="Proposal", status="open", risk="green", external_id="D-1")
        s.add(deal)
        s.flush()
        proposal = Proposal(subject_type="deal", subject_id=deal.id, subject_label=deal.name, confidence=0.05,
                            reasoning="No reply in 21 days after the pricing call.",
                            actions=(ProposedAction(type="set_deal_risk", params={"deal_id": deal.id, "risk": "red",
                                                    "reason": "Silent for 21 days", "action": "Call the buyer"}),))
        envelope = DecisionEnvelope(agent="pipeline", proposals=(proposal,), prompt_version="test", provider="offline",
                                    model="offline", is_local=True, context_snapshot={"deal_id": deal.id})
        [decision_id] = oversight.submit(s, envelope)
        return deal.id, decision_id


def _follow() -> int:
    with unit_of_work() as s:
        return live_jobs.follow_audit_log(s)


def test_decisions_reach_a_subscriber_signed_retried_and_never_twice(api):
    base, admin, rep = api
    box: dict = {}
    receiver = Receiver(box)
    try:
        _follow()  # the follower starts at the end of the log, as on a first start
        with client(base, admin) as http:
            made = http.post("/v1/subscriptions", json={"url": receiver.url, "events": list(outbound.EVENT_TYPES)})
            assert made.status_code == 201, made.text
            box["secret"] = made.json()["secret"]
            bad = http.post("/v1/subscriptions", json={"url": "ftp://x", "events": ["decision.eaten"]})
            assert bad.status_code == 400
        deal_id, decision_id = _queued_risk_flag()

        with client(base, admin) as http:
            queue = http.get("/v1/queue").json()
            assert [i["id"] for i in queue["items"]] == [decision_id]
            approved = http.post(f"/v1/queue/{decision_id}/approve", json={"note": "agreed, call them"})
            assert approved.status_code == 200 and approved.json()["status"] == "executed", approved.text
            again = http.post(f"/v1/queue/{decision_id}/approve")
            assert again.status_code == 409 and "error" in again.json()
            deal = http.get(f"/v1/deals/{deal_id}").json()
        assert deal["risk"] == "red" and deal["latest_decisions"][0]["id"] == decision_id

        assert _follow() == 3  # queued, executed, risk changed
        start = clock.now()
        with clock.frozen_at(start):
            assert outbound.deliver_due() == {"delivered": 2, "retrying": 1, "failed": 0}
            assert outbound.deliver_due() == {"delivered": 0, "retrying": 0, "failed": 0}  # the retry waits its backoff
        with clock.frozen_at(start + timedelta(minutes=5)):
            assert outbound.deliver_due() == {"delivered": 1, "retrying": 0, "failed": 0}

        # Re-reading the whole log (a follower that lost its cursor) adds nothing: still once.
        with unit_of_work() as s:
            s.execute(update(Cursor).where(Cursor.name == live_jobs.AUDIT_CURSOR).values(position=0))
        assert _follow() == 0 and outbound.deliver_due()["delivered"] == 0
        assert sorted(c["event"] for c in receiver.calls) == ["deal.risk_changed", "decision.executed", "decision.queued"]
        assert len({c["id"] for c in receiver.calls}) == 3
        risk = next(c["body"] for c in receiver.calls if c["event"] == "deal.risk_changed")
        assert risk["data"]["deal"]["risk"] == "red" and risk["data"]["deal"]["previous_risk"] == "green"

        with client(base, admin) as http:
            reverted = http.post(f"/v1/queue/{decision_id}/revert", json={"note": "spoke to them today"})
            assert reverted.status_code == 200 and reverted.json()["status"] == "reverted", reverted.text
            log = http.get("/v1/webhook-deliveries").json()
        assert _follow() == 2
        outbound.deliver_due()
        assert [c["event"] for c in receiver.calls][-2:] == ["deal.risk_changed", "decision.reverted"] or \
            sorted(c["event"] for c in receiver.calls[-2:]) == ["deal.risk_changed", "decision.reverted"]
        assert {row["status"] for row in log} == {"delivered"} and all(row["summary"] for row in log)
        assert _count(WebhookDelivery, WebhookDelivery.status == "delivered") == 5
    finally:
        receiver.close()


def test_a_receiver_that_never_answers_is_given_up_after_the_attempts(api, monkeypatch):
    base, admin, _rep = api
    monkeypatch.setenv("CRM_WEBHOOK_MAX_ATTEMPTS", "2")
    _follow()
    with client(base, admin) as http:
        http.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/nothing-listens", "events": ["decision.queued"]})
    _queued_risk_flag()
    assert _follow() == 1
    assert outbound.deliver_due()["retrying"] == 1
    with clock.frozen_at(clock.now() + timedelta(hours=2)):
        assert outbound.deliver_due()["failed"] == 1
    with unit_of_work(readonly=True) as s:
        [view] = outbound.deliveries(s)
    assert view.status == "failed" and view.attempts == 2 and "could not reach" in view.last_error


def test_cli_manages_sources_and_subscriptions_with_rights(store, capsys):
    from crm_core.cli import main

    make_user("Avery Admin", "admin")
    make_user("Riley Rep", "rep")
    assert main(["webhooks", "source", "add", "crm-forms", "--as", "Avery Admin"]) == 0
    assert "whsec_" in capsys.readouterr().out
    assert main(["webhooks", "source", "add", "other", "--as", "Riley Rep"]) == 2
    assert "manage_integrations" in capsys.readouterr().err
    assert main(["webhooks", "subscribe", "https://hooks.example.com/crm", "--events", "decision.queued,deal.risk_changed",
                 "--as", "Avery Admin"]) == 0
    assert main(["webhooks", "subscriptions"]) == 0
    assert "decision.queued, deal.risk_changed" in capsys.readouterr().out
    assert main(["webhooks", "subscribe", "https://x.test", "--events", "decision.eaten", "--as", "Avery Admin"]) == 2


def test_the_activity_page_service_lists_deliveries_and_counts(store):
    from crm_core.auth.actor import Actor
    from crm_core.services import integrations

    with unit_of_work() as s:
        outbound.create_subscription(s, "https://hooks.example.com/crm", ["decision.queued"], actor=Actor(user_id=None, name="Ada Admin", role="admin", via="cli"))
    _follow()
    _queued_risk_flag()
    assert _follow() == 1
    with unit_of_work(readonly=True) as s:
        [row] = integrations.webhook_deliveries(s)
        assert integrations.webhook_delivery_counts(s) == {"pending": 1}
        assert [sub.url for sub in integrations.webhook_subscriptions(s)] == ["https://hooks.example.com/crm"]
    assert row.status == "pending" and row.event_type == "decision.queued" and row.summary == "pipeline decision on Acme renewal"
