"""The approval queue's transitions: approve, edit-then-approve, reject, bulk approve, expire, revert.

Each transition is claimed by one conditional UPDATE (`... WHERE id = :id AND status IN (...)`).
On PostgreSQL a second, concurrent claim waits on the row lock and then matches no row; on
SQLite writers are serialised by BEGIN IMMEDIATE. Either way exactly one caller wins and
executes; the other gets `InvalidTransition` saying what state the decision is in and who put
it there. The caller's transaction commits the claim together with the execution.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents.base import ACTION_TYPES
from crm_core import clock
from crm_core.actions import REGISTRY
from crm_core.auth.actor import Actor
from crm_core.auth.rights import authorize_decision
from crm_core.errors import InvalidTransition, NotFound, UserError
from crm_core.models import Decision
from crm_core.oversight.audit import record, record_as
from crm_core.oversight.execution import execute_decision, revert_decision
from crm_core.oversight.policy import parse_params
from crm_core.oversight.schemas import BulkResult
from crm_core.settings import get_settings

_DECIDABLE = ("queued",)


def _get(session: Session, decision_id: int) -> Decision:
    decision = session.get(Decision, decision_id, populate_existing=True)
    if decision is None:
        raise NotFound(f"decision {decision_id} not found")
    return decision


def _explain(decision: Decision, verb: str, allowed: Sequence[str]) -> str:
    who = ""
    if decision.status in ("approved", "edited", "rejected", "expired", "executed", "failed") and decision.decided_by:
        when = f" at {decision.decided_at:%Y-%m-%d %H:%M:%S} UTC" if decision.decided_at else ""
        who = f" (decided by {decision.decided_by}{when})"
    if decision.status == "reverted" and decision.reverted_by:
        who = f" (reverted by {decision.reverted_by} at {decision.reverted_at:%Y-%m-%d %H:%M:%S} UTC)"
    return f"cannot {verb} decision {decision.id}: it is {decision.status}{who}; only a {' or '.join(allowed)} decision can be {verb}d"


def _claim(session: Session, decision_id: int, allowed: Sequence[str], *, to: str, verb: str, **values: Any) -> Decision:
    claimed = session.execute(
        update(Decision)
        .where(Decision.id == decision_id, Decision.status.in_(tuple(allowed)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    decision = _get(session, decision_id)
    if claimed != 1:
        raise InvalidTransition(_explain(decision, verb, allowed))
    return decision


def _validated_edits(decision: Decision, edited_actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each edited action must be a listed type with parameters its Params accept."""
    if not isinstance(edited_actions, list):
        raise UserError(f"decision {decision.id}: edited actions must be a list of {{type, params}} objects")
    originals = decision.actions or []
    cleaned = []
    for i, action in enumerate(edited_actions):
        if not isinstance(action, dict):
            raise UserError(f"decision {decision.id}, edited action {i}: must be an object with type and params")
        action_type = action.get("type")
        where = f"decision {decision.id}, edited action {i} ({action_type})"
        if action_type not in ACTION_TYPES or action_type not in REGISTRY:
            raise UserError(f"{where}: unknown action type; allowed: {', '.join(sorted(REGISTRY))}")
        unknown = sorted(set(action) - {"type", "params", "reason"})
        if unknown:
            raise UserError(f"{where}: unknown keys {unknown}; an action has type, params and reason")
        params = parse_params(REGISTRY[action_type], action.get("params") or {}, where=where)
        reason = action.get("reason")
        if reason is None:
            reason = originals[i].get("reason", "") if i < len(originals) and originals[i].get("type") == action_type else ""
        cleaned.append({"type": action_type, "params": params.model_dump(mode="json"), "reason": str(reason)})
    return cleaned


def approve(
    session: Session,
    decision_id: int,
    *,
    actor: Actor,
    note: str | None = None,
    edited_actions: list[dict[str, Any]] | None = None,
) -> Decision:
    """queued -> approved (or edited, with `edited_actions`) -> executed | failed.

    The actor's rights are checked first (`crm_core.auth.rights.authorize_decision`: stakes,
    critical actions, who owns the record), against the edited actions when there are edits.
    Edits are validated against each action's Params before anything changes; the audit log
    keeps the actions before and after the edit. Returns the decision in its final state.
    """
    current = _get(session, decision_id)
    edits = None
    if edited_actions is not None:
        edits = _validated_edits(current, edited_actions)
    if current.status in _DECIDABLE:
        # A decided item falls through to the claim, which explains its state instead.
        authorize_decision(session, actor, current, "approve", actions=edits)
    user = actor.name
    now = clock.now()
    decision = _claim(session, decision_id, _DECIDABLE, to="edited" if edits is not None else "approved", verb="approve",
                      decided_at=now, decided_by=user, decision_note=note)
    if edits is not None:
        before = decision.actions
        decision.actions = edits
        decision.reversible = all(REGISTRY[a["type"]].reversible for a in edits)
        session.flush()
        record_as(session, "decision.edited", actor=actor, decision=decision, note=note, before=before, after=edits)
    else:
        record_as(session, "decision.approved", actor=actor, decision=decision, note=note)
    return execute_decision(session, decision, actor=actor.name, settings=get_settings())


def reject(session: Session, decision_id: int, *, actor: Actor, note: str | None = None) -> Decision:
    """queued -> rejected. Nothing runs; the note is kept as the human's reason."""
    current = _get(session, decision_id)
    if current.status in _DECIDABLE:
        authorize_decision(session, actor, current, "reject")
    decision = _claim(session, decision_id, _DECIDABLE, to="rejected", verb="reject",
                      decided_at=clock.now(), decided_by=actor.name, decision_note=note)
    record_as(session, "decision.rejected", actor=actor, decision=decision, note=note)
    return decision


def bulk_approve(session: Session, ids: Sequence[int], *, actor: Actor, note: str | None = None) -> list[BulkResult]:
    """Approve each id on its own: one that cannot be approved (or not by this actor) does not stop the others."""
    results = []
    for decision_id in ids:
        try:
            with session.begin_nested():
                decision = approve(session, decision_id, actor=actor, note=note)
        except UserError as exc:
            results.append(BulkResult(id=decision_id, ok=False, error=str(exc)))
            continue
        results.append(BulkResult(id=decision_id, ok=decision.status == "executed", status=decision.status, error=decision.error))
    return results


def expire_stale(session: Session) -> int:
    """Queued decisions past `expires_at` become expired (nothing runs). Returns how many."""
    now = clock.now()
    ids = list(session.scalars(select(Decision.id).where(Decision.status == "queued", Decision.expires_at <= now)))
    expired = 0
    for decision_id in ids:
        try:
            decision = _claim(session, decision_id, _DECIDABLE, to="expired", verb="expire", decided_at=now, decided_by="system")
        except InvalidTransition:
            continue  # a human decided it a moment ago
        record(session, "decision.expired", actor="system", decision=decision, expires_at=decision.expires_at)
        expired += 1
    return expired


def revert(session: Session, decision_id: int, *, actor: Actor, note: str | None = None) -> Decision:
    """executed -> reverted: every action undone to its before-image, newest first.

    An irreversible action (a sent email) undoes nothing and the audit log says so. If any
    revert fails (e.g. the record changed since), nothing is undone: the decision stays
    `executed` with `error` saying why, and the failure is audited; check `status`.
    """
    current = _get(session, decision_id)
    if current.status == "executed":
        authorize_decision(session, actor, current, "revert")
    now = clock.now()
    decision = _claim(session, decision_id, ("executed",), to="reverted", verb="revert", reverted_at=now, reverted_by=actor.name)
    ok, notes = revert_decision(session, decision, actor=actor.name, settings=get_settings())
    if not ok:
        decision.status = "executed"
        decision.reverted_at = None
        decision.reverted_by = None
        decision.error = f"revert failed, nothing was undone: {notes[0]['error']}"
        session.flush()
        record_as(session, "decision.revert_failed", actor=actor, decision=decision, note=note, error=notes[0]["error"])
        return decision
    not_undone = [n for n in notes if not n["reversible"] and "nothing was undone" in n["note"]]
    record_as(session, "decision.reverted", actor=actor, decision=decision, note=note, actions=notes,
           nothing_undone=[f"action {n['position']} ({n['action_type']}): {n['note']}" for n in not_undone])
    session.flush()
    return decision
