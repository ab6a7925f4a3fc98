"""Every error as clear JSON: {"error": sentence, "problems": [{"field", "reason"}]}, never a traceback."""
from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.limits import BodyTooLarge
from crm_core.errors import InvalidTransition, NotFound, PermissionDenied, UserError
from crm_core.services.api_records import RecordRejected
from crm_core.services.events import EventsRejected
from crm_core.services.idempotency import IdempotencyConflict
from crm_core.webhooks.sources import RejectedRequest

log = logging.getLogger("crm.api")


def error_body(message: str, problems: list[dict] | None = None, **extra) -> dict:
    body = {"error": message}
    if problems:
        body["problems"] = problems
    body.update(extra)
    return body


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (("." if out else "") + p)
    return out or "body"


def problems_of(exc: RequestValidationError) -> list[dict]:
    problems = []
    for err in exc.errors():
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            reason = "is not a field of this request"
        elif err.get("type") == "json_invalid":
            reason = f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
        problems.append({"field": _field(tuple(err.get("loc", ()))), "reason": reason})
    return problems


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body("the request is invalid; nothing was stored", problems_of(exc)))

    @app.exception_handler(EventsRejected)
    async def _events(_request: Request, exc: EventsRejected) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body("some events are invalid; nothing was stored",
                                                                [p.model_dump() for p in exc.problems]))

    @app.exception_handler(RecordRejected)
    async def _record(_request: Request, exc: RecordRejected) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body("the record is invalid; nothing was stored",
                                                                [p.model_dump() for p in exc.problems]))

    @app.exception_handler(RejectedRequest)
    async def _signature(_request: Request, exc: RejectedRequest) -> JSONResponse:
        return JSONResponse(status_code=401, content=error_body(f"webhook refused: {exc}; nothing was stored"))

    @app.exception_handler(PermissionDenied)
    async def _denied(_request: Request, exc: PermissionDenied) -> JSONResponse:
        return JSONResponse(status_code=403, content=error_body(str(exc), right=exc.right))

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body(str(exc), [{"field": "Idempotency-Key", "reason": str(exc)}]))

    @app.exception_handler(UserError)
    async def _user(_request: Request, exc: UserError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, InvalidTransition) else 400
        return JSONResponse(status_code=status, content=error_body(str(exc)))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(status_code=413, content=error_body(str(exc)), headers={"Connection": "close"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; see /docs"
        return JSONResponse(status_code=exc.status_code, content=error_body(message), headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        if "locked" in str(exc).lower() or "could not serialize" in str(exc).lower():
            return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                                content=error_body("the store is busy; nothing was stored, retry in a moment"))
        return await _bug(request, exc)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        return JSONResponse(status_code=500, content=error_body(
            f"the server failed on this request (reference {ref}); nothing was half-stored, the error is in the server log"))
