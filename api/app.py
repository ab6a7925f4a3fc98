"""The FastAPI application: routers, JSON errors, the body limit and CORS for the website snippet."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse

from api import errors
from api.limits import BodyLimit
from api.routes import events, integrations, queue, records
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
    return app
