"""update_lead_score: a contact's score, tier and next action, plus a score_history point."""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, FieldRef, check_unchanged, delete_if_present, require, restore_row, snapshot
from crm_core.models import Contact, Decision, ScoreHistory

_FIELDS = ["score", "tier", "next_action", "score_updated_at"]


class UpdateLeadScoreParams(ActionParams):
    contact_id: int
    score: int = Field(ge=0, le=100)
    tier: Literal["hot", "warm", "cold"]
    next_action: str | None = Field(default=None, max_length=50)
    reason: str | None = Field(default=None, max_length=2000)


@register
class UpdateLeadScore(CrmAction):
    type = "update_lead_score"
    Params = UpdateLeadScoreParams
    reversible = True
    undo_note = "restores the previous score, tier and next action and removes the score-history point"

    def summary(self, params: UpdateLeadScoreParams) -> str:
        nxt = f"; next action: {params.next_action}" if params.next_action else ""
        return f"Set lead score of contact {params.contact_id} to {params.score} ({params.tier}){nxt}"

    def touched_fields(self, session: Session, params: UpdateLeadScoreParams) -> list[FieldRef]:
        return [FieldRef("contact", params.contact_id, f) for f in ("score", "tier", "next_action")]

    def problems(self, session: Session, decision: Decision, params: UpdateLeadScoreParams) -> list[str]:
        return [] if session.get(Contact, params.contact_id) else [f"contact {params.contact_id} not found"]

    def execute(self, ctx: ActionContext, params: UpdateLeadScoreParams) -> ExecResult:
        contact = require(ctx.session, Contact, params.contact_id, "contact")
        before = snapshot(contact, _FIELDS + ["updated_at"])
        now = clock.now()
        contact.score = params.score
        contact.tier = params.tier
        contact.next_action = params.next_action
        contact.score_updated_at = now
        point = ScoreHistory(contact_id=contact.id, score=params.score, tier=params.tier, scored_at=now,
                             decision_id=ctx.decision.id, reason=params.reason)
        ctx.session.add(point)
        ctx.session.flush()
        return ExecResult(
            before_image={"contact": before},
            result={"score_history_id": point.id, "after": snapshot(contact, _FIELDS), "updated_at": snapshot(contact, ["updated_at"])["updated_at"]},
        )

    def revert(self, ctx: ActionContext, params: UpdateLeadScoreParams, done: ExecResult) -> str:
        contact = require(ctx.session, Contact, params.contact_id, "contact")
        check_unchanged(contact, done.result["after"], what=f"contact {contact.id} score")
        before = done.before_image["contact"]
        restore_row(contact, before, done.result.get("updated_at"))
        delete_if_present(ctx.session, ScoreHistory, done.result.get("score_history_id"))
        ctx.session.flush()
        return f"contact {contact.id}: score {before['score']}, tier {before['tier']} restored; score-history point removed"
