"""The approval queue over HTTP, with the dashboard's rights: the services check them against the token's owner."""
from __future__ import annotations

import inspect

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import authenticated
from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.services import approvals
from crm_core.services.approvals import Outcome, QueuePage

router = APIRouter(prefix="/v1/queue", tags=["queue"])


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="your reason, kept in the audit log")


def _who(func, actor: Actor) -> dict:
    # The services take the Actor (rights checked there); an older signature takes a user name.
    return {"actor": actor} if "actor" in inspect.signature(func).parameters else {"user": actor.audit_name}


@router.get("", response_model=QueuePage, summary="Queued decisions, soonest to expire first")
def list_queue(actor: Actor = Depends(authenticated), agent: str | None = None, stakes: str | None = None,
               limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)) -> QueuePage:
    kwargs = {"actor": actor} if "actor" in inspect.signature(approvals.approval_queue).parameters else {}
    with unit_of_work(readonly=True) as session:
        return approvals.approval_queue(session, agent=agent, stakes=stakes, limit=limit, offset=offset, **kwargs)


@router.post("/{decision_id}/approve", response_model=Outcome, summary="Approve a queued decision; it executes at once")
def approve(decision_id: int, body: DecideIn | None = None, actor: Actor = Depends(authenticated)) -> Outcome:
    with unit_of_work() as session:
        return approvals.approve_item(session, decision_id, note=body.note if body else None, **_who(approvals.approve_item, actor))


@router.post("/{decision_id}/reject", response_model=Outcome)
def reject(decision_id: int, body: DecideIn | None = None, actor: Actor = Depends(authenticated)) -> Outcome:
    with unit_of_work() as session:
        return approvals.reject_item(session, decision_id, note=body.note if body else None, **_who(approvals.reject_item, actor))


@router.post("/{decision_id}/revert", response_model=Outcome, summary="Undo an executed decision")
def revert(decision_id: int, body: DecideIn | None = None, actor: Actor = Depends(authenticated)) -> Outcome:
    with unit_of_work() as session:
        return approvals.revert_item(session, decision_id, note=body.note if body else None, **_who(approvals.revert_item, actor))
