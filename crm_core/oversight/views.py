"""Read-only queries for the dashboard: the queue, the decided feed, the outbox, approval stats.

Nothing here writes: these run in read-only units of work (dashboard pages, the agent runner).
"""
from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from crm_core.actions import REGISTRY
from crm_core.errors import NotFound
from crm_core.models import ActionExecution, AuditEntry, Decision, OutboxMessage, Policy
from crm_core.oversight.defaults import DEFAULT_POLICIES
from crm_core.oversight.policy import FALLBACK_POLICY, validation_message
from crm_core.oversight.schemas import ActionView, DecidedItem, OutboxView, QueueItem

# A human verdict: someone (not policy, not expiry) decided a queued decision.
_HUMAN_DECIDED = ("approved", "edited", "rejected", "executed", "failed", "reverted")


def _stakes_by_type(session: Session) -> dict[str, str]:
    stored = {p.action_type: p.stakes for p in session.scalars(select(Policy))}
    return {t: stored.get(t, d.stakes) for t, d in DEFAULT_POLICIES.items()} | stored


def _action_views(decision: Decision, stakes: dict[str, str], executions: dict[int, ActionExecution]) -> list[ActionView]:
    views = []
    for i, action in enumerate(decision.actions or []):
        action_type = action.get("type", "?")
        raw = action.get("params") or {}
        spec = REGISTRY.get(action_type)
        if spec is None:
            summary, reversible, undo = f"{action_type}: no executor is registered", False, "cannot run: unknown action type"
        else:
            reversible, undo = spec.reversible, spec.undo_note
            try:
                params = spec.Params.model_validate(raw)
                summary = spec.summary(params) if hasattr(spec, "summary") else f"{action_type} {raw}"
            except Exception as exc:  # noqa: BLE001 - shown, not raised: a human must see bad params
                message = validation_message(exc) if hasattr(exc, "errors") else str(exc)
                summary = f"{action_type} with invalid parameters ({message})"
        exe = executions.get(i)
        views.append(ActionView(
            position=i, type=action_type, params=raw, reason=action.get("reason", ""), summary=summary,
            stakes=stakes.get(action_type, FALLBACK_POLICY.stakes), reversible=reversible, undo_note=undo,
            execution_status=exe.status if exe else None, revert_note=exe.revert_note if exe else None,
        ))
    return views


def _executions(session: Session, ids: list[int]) -> dict[int, dict[int, ActionExecution]]:
    out: dict[int, dict[int, ActionExecution]] = {}
    if ids:
        for exe in session.scalars(select(ActionExecution).where(ActionExecution.decision_id.in_(ids)).order_by(ActionExecution.id)):
            out.setdefault(exe.decision_id, {})[exe.position] = exe
    return out


def queue_items(session: Session, *, agent: str | None = None, stakes: str | None = None,
                limit: int = 50, offset: int = 0) -> list[QueueItem]:
    """Queued decisions, the soonest to expire first."""
    q = select(Decision).where(Decision.status == "queued")
    if agent:
        q = q.where(Decision.agent == agent)
    if stakes:
        q = q.where(Decision.stakes == stakes)
    q = q.order_by(Decision.expires_at.is_(None), Decision.expires_at, Decision.id).limit(limit).offset(offset)
    rows = list(session.scalars(q))
    stakes_map = _stakes_by_type(session)
    return [
        QueueItem(
            id=d.id, agent=d.agent, status=d.status, subject_type=d.subject_type, subject_id=d.subject_id,
            subject_label=d.subject_label, actions=_action_views(d, stakes_map, {}), confidence=d.confidence,
            model_confidence=d.model_confidence, confidence_factors=d.confidence_factors or {}, reasoning=d.reasoning,
            escalation=d.escalation, context_snapshot=d.context_snapshot or {}, stakes=d.stakes, reversible=d.reversible,
            policy_reason=d.policy_reason, provider=d.provider, model=d.model, is_local=d.is_local,
            created_at=d.created_at, expires_at=d.expires_at,
        )
        for d in rows
    ]


def _decided(d: Decision, stakes_map: dict[str, str], executions: dict[int, ActionExecution]) -> DecidedItem:
    return DecidedItem(
        id=d.id, agent=d.agent, status=d.status, subject_type=d.subject_type, subject_id=d.subject_id,
        subject_label=d.subject_label, actions=_action_views(d, stakes_map, executions), confidence=d.confidence,
        stakes=d.stakes, reversible=d.reversible, policy_verdict=d.policy_verdict, policy_reason=d.policy_reason,
        decided_by=d.decided_by, decided_at=d.decided_at, decision_note=d.decision_note, executed_at=d.executed_at,
        reverted_at=d.reverted_at, reverted_by=d.reverted_by, error=d.error, created_at=d.created_at,
    )


def decided_feed(session: Session, *, agent: str | None = None, status: str | None = None, limit: int = 50) -> list[DecidedItem]:
    """Decisions out of the queue (run alone, approved, rejected, expired, failed, reverted), newest first."""
    last = func.coalesce(Decision.reverted_at, Decision.executed_at, Decision.decided_at, Decision.created_at)
    q = select(Decision).where(Decision.status.not_in(("proposed", "queued")))
    if agent:
        q = q.where(Decision.agent == agent)
    if status:
        q = q.where(Decision.status == status)
    rows = list(session.scalars(q.order_by(last.desc(), Decision.id.desc()).limit(limit)))
    stakes_map = _stakes_by_type(session)
    executions = _executions(session, [d.id for d in rows])
    return [_decided(d, stakes_map, executions.get(d.id, {})) for d in rows]


def decision_detail(session: Session, decision_id: int) -> DecidedItem:
    d = session.get(Decision, decision_id)
    if d is None:
        raise NotFound(f"decision {decision_id} not found")
    return _decided(d, _stakes_by_type(session), _executions(session, [d.id]).get(d.id, {}))


def outbox_messages(session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[OutboxView]:
    q = select(OutboxMessage)
    if status:
        q = q.where(OutboxMessage.status == status)
    if kind:
        q = q.where(OutboxMessage.kind == kind)
    rows = session.scalars(q.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit))
    return [
        OutboxView(
            id=m.id, kind=m.kind, decision_id=m.decision_id, contact_id=m.contact_id, recipient=m.recipient,
            subject=m.subject, body=m.body, attachment_names=[a.get("filename", "?") for a in (m.attachments or [])],
            status=m.status, sink=m.sink, send_after=m.send_after, created_at=m.created_at, sent_at=m.sent_at, error=m.error,
        )
        for m in rows
    ]


def human_verdicts(session: Session, agent: str | None = None) -> list[tuple[Decision, bool]]:
    """(decision, approved as proposed) for every queued decision a human decided.

    Edited counts as decided but not approved: the proposal was not right as it stood.
    """
    edited = exists(select(AuditEntry.id).where(AuditEntry.decision_id == Decision.id, AuditEntry.event == "decision.edited"))
    q = select(Decision, edited).where(
        Decision.policy_verdict == "queue",
        Decision.decided_by.is_not(None),
        Decision.decided_by != "system",
        Decision.status.in_(_HUMAN_DECIDED),
    )
    if agent:
        q = q.where(Decision.agent == agent)
    out = []
    for decision, was_edited in session.execute(q):
        approved = decision.status != "rejected" and decision.status != "edited" and not was_edited
        out.append((decision, approved))
    return out


def approval_stats(session: Session, agent: str) -> dict[str, tuple[int, int]]:
    """Per action type: (approved as proposed, decided by a human) over the agent's queued decisions."""
    stats: dict[str, list[int]] = {}
    for decision, approved in human_verdicts(session, agent):
        for action_type in {a.get("type") for a in decision.actions or [] if a.get("type")}:
            counts = stats.setdefault(action_type, [0, 0])
            counts[0] += int(approved)
            counts[1] += 1
    return {t: (a, d) for t, (a, d) in sorted(stats.items())}


def queue_depth(session: Session, *, agent: str | None = None) -> int:
    q = select(func.count()).select_from(Decision).where(Decision.status == "queued")
    if agent:
        q = q.where(Decision.agent == agent)
    return int(session.scalar(q) or 0)

