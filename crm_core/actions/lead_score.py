"""update_lead_score: a contact's score, tier and next action, plus a score_history point."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import FieldUpdateAction
from crm_core.models import Contact, ScoreHistory
from crm_core.models.enums import Stakes


class UpdateLeadScoreParams(ActionParams):
    contact_id: int
    score: int = Field(ge=0, le=100)
    tier: Literal["hot", "warm", "cold"]
    next_action: str | None = Field(default=None, max_length=50)
    reason: str | None = Field(default=None, max_length=2000)


@register
class UpdateLeadScore(FieldUpdateAction):
    type = "update_lead_score"
    Params = UpdateLeadScoreParams
    # A number on a page, kept in the score history; the tasks proposed beside it still ask.
    stakes = Stakes.LOW
    default_threshold = 0.5
    reversible = True
    undo_note = "restores the previous score, tier and next action and removes the score-history point"
    entity = "contact"
    model = Contact
    id_param = "contact_id"
    written = ("score", "tier", "next_action", "score_updated_at")
    guarded = ("score", "tier", "next_action")
    aspect = "score"
    created_rows = (("score_history_id", ScoreHistory),)

    def summary(self, params: UpdateLeadScoreParams) -> str:
        nxt = f"; next action: {params.next_action}" if params.next_action else ""
        return f"Set lead score of contact {params.contact_id} to {params.score} ({params.tier}){nxt}"

    def apply(self, ctx: ActionContext, contact: Contact, params: UpdateLeadScoreParams) -> ExecResult:
        now = clock.now()
        contact.score = params.score
        contact.tier = params.tier
        contact.next_action = params.next_action
        contact.score_updated_at = now
        point = ScoreHistory(contact_id=contact.id, score=params.score, tier=params.tier, scored_at=now,
                             decision_id=ctx.decision.id, reason=params.reason)
        ctx.session.add(point)
        ctx.session.flush()
        return ExecResult(result={"score_history_id": point.id})

    def reverted(self, contact: Contact, before: dict[str, Any], params: UpdateLeadScoreParams) -> str:
        return f"contact {contact.id}: score {before['score']}, tier {before['tier']} restored; score-history point removed"
