"""The FastAPI application: routers, JSON errors, the body limit and CORS for the website snippet."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse

from api import errors
from api.limits import BodyLimit
from api.routes import events, integrations, queue, records
from crm_core.services.events import EventBatch, EventIn
from crm_core.settings import Settings, get_settings

SNIPPET = Path(__file__).resolve().parent / "static" / "crm-snippet.js"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Agentic CRM API",
        version="1",
        description="Events in (page views, form fills, email opens and clicks, replies, calls, meetings), "
                    "contacts, accounts and deals in and out with what the agents concluded, the approval queue, "
                    "and signed webhooks. Authenticate with a per-user API token: `Authorization: Bearer <token>`.",
    )
    errors.install(app)
    app.include_router(events.router)
    app.include_router(records.router)
    app.include_router(queue.router)
    app.include_router(integrations.router)

    @app.get("/health", tags=["meta"], summary="Liveness: answers without touching the store")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/snippet.js", tags=["meta"], summary="The website snippet that posts page views and form fills",
             response_class=FileResponse)
    def snippet() -> FileResponse:
        return FileResponse(SNIPPET, media_type="application/javascript")

    if settings.cors_origins:
        # Only the collect endpoint is meant for browsers; no credentials are ever sent cross-site.
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["POST", "GET"],
                           allow_headers=["Content-Type"], allow_credentials=False, max_age=600)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    _document_event_bodies(app)
    return app


def _document_event_bodies(app: FastAPI) -> None:
    """The event endpoints read their body themselves (one event or a batch); /docs still shows both models."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in (EventIn, EventBatch):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = schema
        return spec

    app.openapi = openapi
