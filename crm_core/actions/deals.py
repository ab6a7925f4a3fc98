"""move_deal_stage and set_deal_risk: pipeline changes with their history and exact undo."""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import FieldRef, FieldUpdateAction
from crm_core.models import Activity, Deal, Decision, StageHistory
from crm_core.models.enums import Stakes


def stage_outcome(stage: str) -> Literal["won", "lost"] | None:
    """'Won', 'Closed Won', 'closed_won' -> won; likewise lost; any other stage is open."""
    words = set(re.split(r"[\s_\-/]+", stage.strip().lower()))
    if "won" in words:
        return "won"
    if "lost" in words:
        return "lost"
    return None


class MoveDealStageParams(ActionParams):
    deal_id: int
    to_stage: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)


@register
class MoveDealStage(FieldUpdateAction):
    type = "move_deal_stage"
    Params = MoveDealStageParams
    # Closing or reopening a deal always asks a person too: `crm_core.oversight.policy` says so.
    stakes = Stakes.HIGH
    default_threshold = 0.95
    reversible = True
    undo_note = "puts the deal back in its previous stage (and status) and removes the stage-history entry"
    entity = "deal"
    model = Deal
    id_param = "deal_id"
    written = ("stage", "stage_entered_at", "status", "closed_at")
    aspect = "stage"
    created_rows = (("stage_history_id", StageHistory), ("activity_id", Activity))

    def summary(self, params: MoveDealStageParams) -> str:
        return f"Move deal {params.deal_id} to stage \u201c{params.to_stage}\u201d"

    def touched_fields(self, session: Session, params: MoveDealStageParams) -> list[FieldRef]:
        fields = ["stage"] + (["status"] if stage_outcome(params.to_stage) else [])
        return [FieldRef("deal", params.deal_id, f) for f in fields]

    def problems(self, session: Session, decision: Decision, params: MoveDealStageParams) -> list[str]:
        deal = session.get(Deal, params.deal_id)
        if deal is None:
            return [f"deal {params.deal_id} not found"]
        if deal.stage == params.to_stage:
            return [f"deal {deal.id} is already in stage {deal.stage!r}"]
        return []

    def apply(self, ctx: ActionContext, deal: Deal, params: MoveDealStageParams) -> ExecResult:
        now = clock.now()
        from_stage = deal.stage
        deal.stage = params.to_stage
        deal.stage_entered_at = now
        outcome = stage_outcome(params.to_stage)
        if outcome:
            deal.status = outcome
            deal.closed_at = now
        elif deal.status != "open":
            deal.status = "open"
            deal.closed_at = None
        history = StageHistory(deal_id=deal.id, from_stage=from_stage, to_stage=params.to_stage, changed_at=now, changed_by=ctx.actor)
        activity = Activity(type="stage_change", occurred_at=now, deal_id=deal.id, contact_id=deal.primary_contact_id,
                            account_id=deal.account_id, source="agent",
                            payload={"from": from_stage, "to": params.to_stage, "decision_id": ctx.decision.id, "reason": params.reason})
        ctx.session.add_all([history, activity])
        ctx.session.flush()
        return ExecResult(before_image={"created": {"deal_stage_history": [history.id], "activities": [activity.id]}},
                          result={"stage_history_id": history.id, "activity_id": activity.id})

    def reverted(self, deal: Deal, before: dict[str, Any], params: MoveDealStageParams) -> str:
        return f"deal {deal.id} back in stage {before['stage']!r} ({before['status']}); stage-history entry removed"


class SetDealRiskParams(ActionParams):
    deal_id: int
    risk: Literal["green", "amber", "red"]
    reason: str | None = Field(default=None, max_length=4000)
    action: str | None = Field(default=None, max_length=4000)  # the recommended next step


@register
class SetDealRisk(FieldUpdateAction):
    type = "set_deal_risk"
    Params = SetDealRiskParams
    # A flag only informs the board; the tasks and escalations proposed beside it still ask.
    stakes = Stakes.LOW
    default_threshold = 0.45
    editable_fields = (("reason", True), ("action", True))
    reversible = True
    undo_note = "restores the previous risk flag, reason and recommended action"
    entity = "deal"
    model = Deal
    id_param = "deal_id"
    written = ("risk", "risk_reason", "risk_action", "risk_updated_at")
    guarded = ("risk", "risk_reason", "risk_action")
    aspect = "risk"

    def summary(self, params: SetDealRiskParams) -> str:
        why = f": {params.reason}" if params.reason else ""
        return f"Flag deal {params.deal_id} as {params.risk}{why}"

    def apply(self, ctx: ActionContext, deal: Deal, params: SetDealRiskParams) -> ExecResult:
        deal.risk = params.risk
        deal.risk_reason = params.reason
        deal.risk_action = params.action
        deal.risk_updated_at = clock.now()
        return ExecResult()

    def reverted(self, deal: Deal, before: dict[str, Any], params: SetDealRiskParams) -> str:
        return f"deal {deal.id} risk back to {before['risk'] or 'unset'}"
