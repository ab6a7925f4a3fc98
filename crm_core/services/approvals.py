"""The approval queue as the dashboard uses it: thin wrappers over `crm_core.oversight`.

The oversight package owns the rules (policy, the state machine, execution, audit); this module
adds what a screen needs on top: a total for paging, which parameters a human may edit before
approving, and one sentence saying what happened after a click.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES
from crm_core import oversight
from crm_core.actions import REGISTRY
from crm_core.auth.actor import Actor
from crm_core.auth.rights import visible_owner
from crm_core.models import Account, Contact, Deal, Decision, Meeting
from crm_core.oversight import BulkResult, DecidedItem, QueueItem
from crm_core.oversight.defaults import STAKES_ORDER

AGENTS: tuple[str, ...] = AGENT_NAMES
STAKES: tuple[str, ...] = STAKES_ORDER

# The text a human may change before approving, per action type, as each spec declares it; the
# rest (recipient, record ids, amounts) stays as the agent derived it from the store. Multi-line
# fields are marked True.
EDITABLE_TEXT: dict[str, tuple[tuple[str, bool], ...]] = {
    action_type: spec.editable_fields for action_type, spec in REGISTRY.items() if spec.editable_fields
}


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int


class Outcome(BaseModel):
    """What one click did, in a sentence the page shows as is."""

    decision_id: int
    status: str
    ok: bool
    message: str


def _owned_by(owner_id: int):
    """Decisions about a record this user owns (contact, deal, account or meeting)."""
    return or_(*(and_(Decision.subject_type == subject_type,
                      Decision.subject_id.in_(select(model.id).where(model.owner_id == owner_id)))
                 for subject_type, model in (("contact", Contact), ("deal", Deal), ("account", Account), ("meeting", Meeting))))


def approval_queue(session: Session, *, agent: str | None = None, stakes: str | None = None,
                   limit: int = 20, offset: int = 0, actor: Actor | None = None) -> QueuePage:
    """Queued decisions (the most urgent first) and how many wait under these filters.

    With an `actor` lacking the `view_all` right (a rep), only decisions about their own records.
    """
    count = select(func.count()).select_from(Decision).where(Decision.status == "queued")
    if agent:
        count = count.where(Decision.agent == agent)
    if stakes:
        count = count.where(Decision.stakes == stakes)
    owner = visible_owner(actor) if actor is not None else None
    if owner is not None:
        owned = set(session.scalars(count.with_only_columns(Decision.id).where(_owned_by(owner))))
        everything = oversight.queue_items(session, agent=agent, stakes=stakes, limit=int(session.scalar(count) or 0))
        mine = [item for item in everything if item.id in owned]
        return QueuePage(items=mine[offset:offset + limit], total=len(mine))
    items = oversight.queue_items(session, agent=agent, stakes=stakes, limit=limit, offset=offset)
    return QueuePage(items=items, total=int(session.scalar(count) or 0))


def decided(session: Session, *, agent: str | None = None, status: str | None = None, limit: int = 30) -> list[DecidedItem]:
    return oversight.decided_feed(session, agent=agent, status=status, limit=limit)


def editable_fields(action_type: str) -> tuple[tuple[str, bool], ...]:
    return EDITABLE_TEXT.get(action_type, ())


def edited_actions(item: QueueItem, edits: dict[int, dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The item's actions with the human's text edits applied; None when nothing changed.

    `edits` maps an action's position to {param: new text}. Only fields listed in
    EDITABLE_TEXT are taken; anything else in `edits` is ignored.
    """
    changed = False
    out = []
    for action in item.actions:
        params = dict(action.params)
        for field, _multiline in editable_fields(action.type):
            new = (edits.get(action.position) or {}).get(field)
            if new is None:
                continue
            new = new if new.strip() else None
            if new != params.get(field):
                params[field] = new
                changed = True
        out.append({"type": action.type, "params": params, "reason": action.reason})
    return out if changed else None


def _outcome(decision: Decision, verb: str, user: str) -> Outcome:
    label = decision.subject_label or f"{decision.subject_type} {decision.subject_id}"
    head = f"Decision {decision.id} ({decision.agent} on {label})"
    if decision.status == "executed":
        return Outcome(decision_id=decision.id, status=decision.status, ok=True, message=f"{head} {verb} by {user} and executed.")
    if decision.status == "rejected":
        return Outcome(decision_id=decision.id, status=decision.status, ok=True, message=f"{head} rejected by {user}; nothing ran.")
    if decision.status == "failed":
        return Outcome(decision_id=decision.id, status=decision.status, ok=False,
                       message=f"{head} {verb} by {user} but failed, nothing was applied: {decision.error}")
    if decision.status == "reverted":
        return Outcome(decision_id=decision.id, status=decision.status, ok=True, message=f"{head} reverted by {user}.")
    if decision.error:
        return Outcome(decision_id=decision.id, status=decision.status, ok=False, message=f"{head}: {decision.error}")
    return Outcome(decision_id=decision.id, status=decision.status, ok=True, message=f"{head} is now {decision.status}.")


def approve_item(session: Session, decision_id: int, *, actor: Actor, note: str | None = None,
                 edited: list[dict[str, Any]] | None = None) -> Outcome:
    decision = oversight.approve(session, decision_id, actor=actor, note=note or None, edited_actions=edited)
    return _outcome(decision, "edited and approved" if edited is not None else "approved", actor.name)


def reject_item(session: Session, decision_id: int, *, actor: Actor, note: str | None = None) -> Outcome:
    return _outcome(oversight.reject(session, decision_id, actor=actor, note=note or None), "rejected", actor.name)


def bulk_approve_items(session: Session, ids: Sequence[int], *, actor: Actor) -> list[BulkResult]:
    return oversight.bulk_approve(session, list(ids), actor=actor)


def revert_item(session: Session, decision_id: int, *, actor: Actor, note: str | None = None) -> Outcome:
    decision = oversight.revert(session, decision_id, actor=actor, note=note or None)
    if decision.status != "reverted":
        return Outcome(decision_id=decision.id, status=decision.status, ok=False,
                       message=f"Decision {decision.id} was not reverted: {decision.error}")
    return _outcome(decision, "reverted", actor.name)
