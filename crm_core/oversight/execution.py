"""Running an approved decision's actions, and undoing them, each all-or-nothing.

All actions of a decision run inside one SAVEPOINT: if any fails, the savepoint rolls back (no
action half-applied) while the decision's `failed` status and error are still recorded in the
caller's transaction. Revert works the same way, newest action first.

Emails and notifications go to the session's sinks: those the caller attached when it opened
the unit of work (`crm_core.actions.sink.attach_sinks`), else the ones the settings configure.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions import ActionContext, ExecResult, get_spec
from crm_core.actions.sink import sinks_for
from crm_core.errors import UserError
from crm_core.models import ActionExecution, Decision
from crm_core.oversight.audit import record
from crm_core.oversight.jsonable import jsonable
from crm_core.oversight.policy import parse_params
from crm_core.settings import Settings


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def execute_decision(session: Session, decision: Decision, *, actor: str, settings: Settings) -> Decision:
    """approved/edited/auto_approved -> executed, or -> failed with nothing applied."""
    now = clock.now()
    ctx = ActionContext(session=session, decision=decision, actor=actor, settings=settings, sinks=sinks_for(session, settings))
    actions = list(decision.actions or [])
    position, action_type = -1, None
    try:
        with session.begin_nested():
            for position, action in enumerate(actions):
                action_type = action.get("type")
                where = f"decision {decision.id}, action {position} ({action_type})"
                try:
                    spec = get_spec(action_type)
                except KeyError as exc:
                    raise UserError(f"{where}: {exc.args[0]}") from None
                params = parse_params(spec, action.get("params") or {}, where=where)
                done = spec.execute(ctx, params)
                session.add(ActionExecution(
                    decision_id=decision.id, position=position, action_type=action_type,
                    params=params.model_dump(mode="json"), status="executed",
                    before_image=jsonable(done.before_image), result=jsonable(done.result), executed_at=now,
                ))
                session.flush()
                record(session, "action.executed", actor=actor, decision=decision, position=position,
                       action_type=action_type, params=params.model_dump(mode="json"),
                       before_image=done.before_image, result=done.result)
    except Exception as exc:  # noqa: BLE001 - any failure must leave a recorded, failed decision
        error = _describe(exc)
        if position >= 0:
            if f"action {position} (" not in error:
                error = f"action {position} ({action_type}): {error}"
            session.add(ActionExecution(
                decision_id=decision.id, position=position, action_type=action_type or "?",
                params=jsonable(actions[position].get("params") or {}), status="failed", error=error, executed_at=now,
            ))
        decision.status = "failed"
        decision.error = error
        session.flush()
        record(session, "decision.failed", actor=actor, decision=decision, error=error,
               note="execution rolled back: no action of this decision was applied")
        return decision
    decision.status = "executed"
    decision.executed_at = now
    decision.error = None
    session.flush()
    record(session, "decision.executed", actor=actor, decision=decision, actions=len(actions))
    return decision


def revert_decision(session: Session, decision: Decision, *, actor: str, settings: Settings) -> tuple[bool, list[dict]]:
    """Undo every executed action, newest first. (True, notes) or (False, [error]) with nothing undone."""
    now = clock.now()
    ctx = ActionContext(session=session, decision=decision, actor=actor, settings=settings, sinks=sinks_for(session, settings))
    executions = list(session.scalars(
        select(ActionExecution)
        .where(ActionExecution.decision_id == decision.id, ActionExecution.status == "executed")
        .order_by(ActionExecution.position.desc())
    ))
    notes: list[dict] = []
    where = "revert"
    try:
        with session.begin_nested():
            for exe in executions:
                where = f"action {exe.position} ({exe.action_type})"
                spec = get_spec(exe.action_type)
                params = spec.Params.model_validate(exe.params)
                note = spec.revert(ctx, params, ExecResult(before_image=exe.before_image or {}, result=exe.result or {}))
                exe.status = "reverted"
                exe.reverted_at = now
                exe.revert_note = note
                notes.append({"position": exe.position, "action_type": exe.action_type, "reversible": spec.reversible, "note": note})
                session.flush()
                record(session, "action.reverted", actor=actor, decision=decision, position=exe.position,
                       action_type=exe.action_type, reversible=spec.reversible, note=note)
    except Exception as exc:  # noqa: BLE001
        return False, [{"error": f"{where}: {_describe(exc)}"}]
    return True, notes
