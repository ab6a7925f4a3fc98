"""move_deal_stage and set_deal_risk: pipeline changes with their history and exact undo."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, FieldRef, check_unchanged, delete_if_present, require, restore_row, snapshot
from crm_core.models import Activity, Deal, Decision, StageHistory


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


_STAGE_FIELDS = ["stage", "stage_entered_at", "status", "closed_at"]


@register
class MoveDealStage(CrmAction):
    type = "move_deal_stage"
    Params = MoveDealStageParams
    reversible = True
    undo_note = "puts the deal back in its previous stage (and status) and removes the stage-history entry"

    def summary(self, params: MoveDealStageParams) -> str:
        return f"Move deal {params.deal_id} to stage \u201c{params.to_stage}\u201d"

    def touched_fields(self, session: Session, params: MoveDealStageParams) -> list[FieldRef]:
        fields = ["stage"] + (["status"] if stage_outcome(params.to_stage) else [])
        return [FieldRef("deal", params.deal_id, f) for f in fields]

    def needs_human(self, session: Session, params: MoveDealStageParams) -> str | None:
        outcome = stage_outcome(params.to_stage)
        if outcome:
            return f"moving a deal to {outcome} always needs a human"
        deal = session.get(Deal, params.deal_id)
        if deal is not None and deal.status != "open":
            return f"deal {deal.id} is {deal.status}: reopening it needs a human"
        return None

    def problems(self, session: Session, decision: Decision, params: MoveDealStageParams) -> list[str]:
        deal = session.get(Deal, params.deal_id)
        if deal is None:
            return [f"deal {params.deal_id} not found"]
        if deal.stage == params.to_stage:
            return [f"deal {deal.id} is already in stage {deal.stage!r}"]
        return []

    def execute(self, ctx: ActionContext, params: MoveDealStageParams) -> ExecResult:
        session = ctx.session
        deal = require(session, Deal, params.deal_id, "deal")
        before = snapshot(deal, _STAGE_FIELDS + ["updated_at"])
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
        session.add_all([history, activity])
        session.flush()
        return ExecResult(
            before_image={"deal": before, "created": {"deal_stage_history": [history.id], "activities": [activity.id]}},
            result={"stage_history_id": history.id, "activity_id": activity.id, "after": snapshot(deal, _STAGE_FIELDS),
                    "updated_at": snapshot(deal, ["updated_at"])["updated_at"]},
        )

    def revert(self, ctx: ActionContext, params: MoveDealStageParams, done: ExecResult) -> str:
        deal = require(ctx.session, Deal, params.deal_id, "deal")
        check_unchanged(deal, done.result["after"], what=f"deal {deal.id} stage")
        restore_row(deal, done.before_image["deal"], done.result.get("updated_at"))
        delete_if_present(ctx.session, StageHistory, done.result.get("stage_history_id"))
        delete_if_present(ctx.session, Activity, done.result.get("activity_id"))
        ctx.session.flush()
        before = done.before_image["deal"]
        return f"deal {deal.id} back in stage {before['stage']!r} ({before['status']}); stage-history entry removed"


class SetDealRiskParams(ActionParams):
    deal_id: int
    risk: Literal["green", "amber", "red"]
    reason: str | None = Field(default=None, max_length=4000)
    action: str | None = Field(default=None, max_length=4000)  # the recommended next step


_RISK_FIELDS = ["risk", "risk_reason", "risk_action", "risk_updated_at"]


@register
class SetDealRisk(CrmAction):
    type = "set_deal_risk"
    Params = SetDealRiskParams
    reversible = True
    undo_note = "restores the previous risk flag, reason and recommended action"

    def summary(self, params: SetDealRiskParams) -> str:
        why = f": {params.reason}" if params.reason else ""
        return f"Flag deal {params.deal_id} as {params.risk}{why}"

    def touched_fields(self, session: Session, params: SetDealRiskParams) -> list[FieldRef]:
        return [FieldRef("deal", params.deal_id, f) for f in ("risk", "risk_reason", "risk_action")]

    def problems(self, session: Session, decision: Decision, params: SetDealRiskParams) -> list[str]:
        return [] if session.get(Deal, params.deal_id) else [f"deal {params.deal_id} not found"]

    def execute(self, ctx: ActionContext, params: SetDealRiskParams) -> ExecResult:
        deal = require(ctx.session, Deal, params.deal_id, "deal")
        before = snapshot(deal, _RISK_FIELDS + ["updated_at"])
        deal.risk = params.risk
        deal.risk_reason = params.reason
        deal.risk_action = params.action
        deal.risk_updated_at = clock.now()
        ctx.session.flush()
        return ExecResult(before_image={"deal": before},
                          result={"after": snapshot(deal, _RISK_FIELDS), "updated_at": snapshot(deal, ["updated_at"])["updated_at"]})

    def revert(self, ctx: ActionContext, params: SetDealRiskParams, done: ExecResult) -> str:
        deal = require(ctx.session, Deal, params.deal_id, "deal")
        check_unchanged(deal, done.result["after"], what=f"deal {deal.id} risk")
        restore_row(deal, done.before_image["deal"], done.result.get("updated_at"))
        ctx.session.flush()
        return f"deal {deal.id} risk back to {done.before_image['deal']['risk'] or 'unset'}"
