"""The people who use the dashboard: the sidebar's "who is clicking" picker reads them here."""
from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from crm_core.models import User


class UserView(BaseModel):
    id: int
    name: str
    role: str
    team: str | None


def list_users(session: Session) -> list[UserView]:
    """Managers first (they approve), then everyone else, by name."""
    managers_first = case((User.role == "manager", 0), (User.role == "admin", 1), else_=2)
    rows = session.scalars(select(User).order_by(managers_first, User.name))
    return [UserView(id=u.id, name=u.name, role=u.role, team=u.team) for u in rows]
