"""Outbound webhook delivery with its store, settings and HTTP transport passed in: no socket, no server.

The same path against a real receiver on loopback, from real decisions and with the queue
approved over HTTP, is test_api_webhooks.py.
"""
from __future__ import annotations

import json
from datetime import timedelta

import httpx

from auth_helpers import ADMIN
from crm_core import clock
from crm_core.db import session_factory, unit_of_work
from crm_core.models import AuditEntry
from crm_core.settings import get_settings
from crm_core.webhooks import outbound, signing


def _subscribed_event(url: str) -> str:
    """A subscription to decision.queued and one such audit entry turned into its delivery; returns the secret."""
    with unit_of_work() as s:
        _view, secret = outbound.create_subscription(s, url, ["decision.queued"], actor=ADMIN)
        entry = AuditEntry(at=clock.now(), actor="agent:pipeline", event="decision.queued")
        s.add(entry)
        s.flush()
        assert outbound.enqueue_from_audit(s, [entry.id]) == 1
    return secret


def test_deliver_due_posts_signed_through_the_client_and_store_it_is_given(sqlite_store):
    secret = _subscribed_event("https://hooks.example/crm")
    requests: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503 if len(requests) == 1 else 204)

    with httpx.Client(transport=httpx.MockTransport(receiver)) as client:
        sessions, settings = session_factory(), get_settings()
        assert outbound.deliver_due(sessions, settings, client=client) == {"delivered": 0, "retrying": 1, "failed": 0}
        with unit_of_work(readonly=True) as s:
            [view] = outbound.deliveries(s)
        assert view.last_error == "the receiver answered HTTP 503"
        with clock.frozen_at(clock.now() + timedelta(minutes=5)):  # past the retry's backoff
            assert outbound.deliver_due(sessions, settings, client=client) == {"delivered": 1, "retrying": 0, "failed": 0}
    first, second = requests
    assert str(second.url) == "https://hooks.example/crm" and second.headers[signing.EVENT_HEADER] == "decision.queued"
    assert second.headers[signing.EVENT_ID_HEADER] == first.headers[signing.EVENT_ID_HEADER]  # the same event, retried
    signing.verify(secret, timestamp=second.headers[signing.TIMESTAMP_HEADER], provided=second.headers[signing.SIGNATURE_HEADER],
                   body=second.content, tolerance_s=300)
    assert json.loads(second.content)["data"]["by"] == "agent:pipeline"
    with unit_of_work(readonly=True) as s:
        [view] = outbound.deliveries(s)
    assert (view.status, view.attempts, view.response_status) == ("delivered", 2, 204)
