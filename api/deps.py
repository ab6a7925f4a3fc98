"""Who is calling: the owner of a per-user API token (Authorization: Bearer <token>)."""
from __future__ import annotations

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from crm_core.auth.actor import Actor
from crm_core.auth.tokens import verify_token
from crm_core.db import unit_of_work

bearer = HTTPBearer(auto_error=False, description="A per-user API token (issued on the settings page or with the CLI)")


def authenticated(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials.strip():
        raise HTTPException(401, "send an API token as 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
    with unit_of_work() as session:
        actor = verify_token(session, credentials.credentials.strip())
    if actor is None:
        raise HTTPException(401, "the API token is unknown, revoked, or its user is deactivated",
                            headers={"WWW-Authenticate": "Bearer"})
    return actor
