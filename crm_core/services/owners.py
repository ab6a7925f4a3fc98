"""The Owner picker of the list pages: whose records this person may choose to see."""
from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.auth.actor import Actor
from crm_core.auth.rights import visible_owner
from crm_core.models import User


class OwnerChoices(BaseModel):
    everyone: bool                    # "Everyone" may be chosen (the `view_all` right)
    owners: list[tuple[int, str]]     # (user id, name), by name; a rep gets only themselves


def owner_choices(session: Session, *, actor: Actor) -> OwnerChoices:
    own = visible_owner(actor)
    query = select(User.id, User.name).order_by(User.name, User.id)
    if own is not None:
        query = query.where(User.id == own)
    return OwnerChoices(everyone=own is None, owners=[(uid, name) for uid, name in session.execute(query)])
