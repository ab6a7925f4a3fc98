"""POST /v1/events (token), /v1/webhooks/{source} (HMAC-signed), /v1/collect/{source} (the website snippet)."""
from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from api.deps import authenticated
from api.errors import error_body
from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.services import idempotency
from crm_core.services.events import (
    EventBatch,
    EventIn,
    EventsRejected,
    FieldProblem,
    IngestResult,
    ingest_events,
)
from crm_core.settings import get_settings
from crm_core.webhooks import sources

router = APIRouter(prefix="/v1", tags=["events"])
BROWSER_TYPES = {"page_view", "pageview", "form_submit", "form", "content_download", "download"}

_EXAMPLE = {"events": [{"type": "page_view", "email": "jane@example.com", "url": "/pricing",
                        "occurred_at": "2026-12-07T09:30:00Z", "event_id": "web-81723"}]}
_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [{"$ref": "#/components/schemas/EventIn"}, {"$ref": "#/components/schemas/EventBatch"}]},
    "example": _EXAMPLE}}}}


def _parse(body: bytes) -> list[EventIn]:
    """One event object or {"events": [...]}; problems named by their place in the body."""
    settings = get_settings()
    try:
        data: Any = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventsRejected([FieldProblem(field="body", reason=f"is not valid JSON ({exc})")]) from None
    if not isinstance(data, dict):
        raise EventsRejected([FieldProblem(field="body", reason="must be an event object or {\"events\": [...]}")])
    try:
        if "events" in data:
            if isinstance(data["events"], list) and len(data["events"]) > settings.api_max_batch:
                raise EventsRejected([FieldProblem(field="events", reason=f"holds {len(data['events']):,} events; "
                                                   f"send at most {settings.api_max_batch:,} per request")])
            return EventBatch.model_validate(data).events
        return [EventIn.model_validate(data)]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            if "events" not in data:
                loc = ["events", "0", *loc]
            field = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:]) if loc else "body"
            reason = "is not a field of an event" if err.get("type") == "extra_forbidden" else \
                str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(FieldProblem(field=field, reason=reason))
        raise EventsRejected(problems) from None


# SQLite has one writer at a time: the API's own threads queue here, in order, instead of all
# spinning on the store's busy timeout while the scheduler also writes.
_SQLITE_WRITES = threading.Lock()
LOCKED_RETRIES = 3


def _store(body: bytes, *, source: str, scope: str, key: str | None) -> JSONResponse:
    events = _parse(body)
    for attempt in range(LOCKED_RETRIES):
        try:
            with _SQLITE_WRITES if get_settings().is_sqlite else contextlib.nullcontext():
                return _store_once(body, events, source=source, scope=scope, key=key)
        except OperationalError as exc:
            # The whole unit of work rolled back (idempotency key included), so trying again is safe.
            if "locked" not in str(exc).lower() or attempt == LOCKED_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _store_once(body: bytes, events: list[EventIn], *, source: str, scope: str, key: str | None) -> JSONResponse:
    with unit_of_work() as session:
        record = None
        if key is not None:
            record, replay = idempotency.claim(session, scope=scope, key=key, body_hash=idempotency.request_hash(body))
            if replay:
                return JSONResponse(status_code=record.status_code, content=record.response, headers={"Idempotent-Replayed": "true"})
        result = ingest_events(session, events, source=source)
        content = result.model_dump(mode="json")
        if record is not None:
            idempotency.remember(record, 201, content)
    return JSONResponse(status_code=201, content=content)


@router.post("/events", status_code=201, response_model=IngestResult, openapi_extra=_BODY_DOC,
             summary="Record one event or a batch (page view, download, form fill, email open/click, reply, call, meeting)")
async def post_events(request: Request, actor: Actor = Depends(authenticated),
                      idempotency_key: str | None = Header(None, alias="Idempotency-Key",
                                                           description="a retried POST with the same key stores nothing twice")):
    body = await request.body()
    scope = f"user:{actor.user_id}" if actor.user_id is not None else f"actor:{actor.name}"
    return await run_in_threadpool(_store, body, source="api", scope=scope, key=idempotency_key)


@router.post("/webhooks/{source}", status_code=201, response_model=IngestResult, openapi_extra=_BODY_DOC,
             summary="Events from a signed source: X-CRM-Timestamp and X-CRM-Signature (HMAC-SHA256 of '<timestamp>.<body>')")
async def post_webhook(source: str, request: Request,
                       idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    body = await request.body()
    settings = get_settings()
    def verify_and_store() -> JSONResponse:
        with unit_of_work() as session:
            sources.verify_signed(session, source, timestamp=request.headers.get("x-crm-timestamp"),
                                  signature=request.headers.get("x-crm-signature"), body=body,
                                  tolerance_s=settings.webhook_tolerance_seconds)
        return _store(body, source=f"webhook:{source}", scope=f"source:{source}", key=idempotency_key)

    return await run_in_threadpool(verify_and_store)


@router.post("/collect/{source}", status_code=201, summary="Page views, downloads and form fills from the website snippet",
             openapi_extra=_BODY_DOC)
async def collect(source: str, request: Request):
    body = await request.body()
    def verify_and_store() -> JSONResponse:
        try:
            data = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse(status_code=422, content=error_body("the body is not valid JSON; nothing was stored"))
        if not isinstance(data, dict):
            return JSONResponse(status_code=422, content=error_body("the body must be a JSON object; nothing was stored"))
        site_key = data.pop("site_key", None)
        origin = request.headers.get("origin")
        allowed = get_settings().cors_origins
        if origin is not None and origin.rstrip("/") not in allowed:
            return JSONResponse(status_code=403, content=error_body(f"the origin {origin[:200]!r} is not allowed to send events "
                                                                     "(CRM_API_CORS_ORIGINS)"))
        with unit_of_work() as session:
            sources.verify_browser(session, source, site_key=site_key if isinstance(site_key, str) else None)
        events = data.get("events") if "events" in data else [data]
        if isinstance(events, list):
            for index, event in enumerate(events):
                if isinstance(event, dict) and str(event.get("type", "")).strip().lower() not in BROWSER_TYPES:
                    return JSONResponse(status_code=422, content=error_body(
                        "a website may send only page views, downloads and form fills; nothing was stored",
                        [{"field": f"events[{index}].type", "reason": "is not page_view, content_download or form_submit"}]))
        return _store(json.dumps(data).encode(), source=f"web:{source}", scope=f"source:{source}", key=None)

    return await run_in_threadpool(verify_and_store)
