"""Who is acting: the one value every service that changes something receives.

A page passes the signed-in user, the CLI the user named by `--as`/`CRM_USER`, the HTTP API the
owner of the token, the scheduler `Actor.system()`. Services check rights against it
(`crm_core.auth.rights`) and record `name` and `via` in the audit log, so the log says both who
acted and how they proved it.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Via = Literal["password", "oidc", "token", "cli", "system"]


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: int | None
    name: str
    role: Literal["rep", "manager", "admin", "system"]
    via: Via

    @classmethod
    def system(cls, name: str = "scheduler") -> Actor:
        """The agents and the scheduler: they propose and run what policy lets run alone."""
        return cls(user_id=None, name=name, role="system", via="system")

    @property
    def audit_name(self) -> str:
        return self.name if self.via == "system" else f"{self.name} ({self.via})"
