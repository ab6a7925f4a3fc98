"""Read-only queries for the dashboard: the queue, the decided feed, the outbox, approval stats.

Nothing here writes: these run in read-only units of work (dashboard pages, the agent runner).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from crm_core.actions import REGISTRY
from crm_core.errors import NotFound
from crm_core.models import Account, ActionExecution, AuditEntry, Contact, Deal, Decision, Meeting, OutboxMessage, Policy, User
from crm_core.oversight import wording
from crm_core.oversight.defaults import DEFAULT_POLICIES, stakes_rank
from crm_core.oversight.policy import FALLBACK_POLICY, validation_message
from crm_core.oversight.schemas import ActionView, DecidedItem, OutboxView, QueueEntry, QueueItem

# A human verdict: someone (not policy, not expiry) decided a queued decision.
_HUMAN_DECIDED = ("approved", "edited", "rejected", "executed", "failed", "reverted")


def _stakes_by_type(session: Session) -> dict[str, str]:
    stored = {p.action_type: p.stakes for p in session.scalars(select(Policy))}
    return {t: stored.get(t, d.stakes) for t, d in DEFAULT_POLICIES.items()} | stored


def policy_thresholds(session: Session) -> dict[str, float]:
    stored = {p.action_type: p.threshold for p in session.scalars(select(Policy))}
    return {t: d.threshold for t, d in DEFAULT_POLICIES.items()} | stored


# Params keys that name a record, by the kind of record they name.
_ID_KEYS = {"contact_id": "contact", "source_contact_id": "contact", "target_contact_id": "contact", "deal_id": "deal",
            "meeting_id": "meeting", "owner_id": "user", "account_id": "account"}


def _wanted_ids(decisions: Iterable[Decision]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {"contact": set(), "deal": set(), "meeting": set(), "user": set(), "account": set()}

    def take(kind: str | None, value: Any) -> None:
        if kind in wanted and isinstance(value, int):
            wanted[kind].add(value)

    for d in decisions:
        take(d.subject_type, d.subject_id)
        for action in d.actions or []:
            params = action.get("params") or {}
            for key, kind in _ID_KEYS.items():
                take(kind, params.get(key))
            if params.get("entity") in ("contact", "account"):
                take(params["entity"], params.get("entity_id"))
            for item in params.get("items") or []:
                if isinstance(item, dict):
                    take("user", item.get("owner_id"))
    return wanted


def _contact_label(contact: Contact, accounts: dict[int, str]) -> str:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.email or "a contact with no name"
    company = accounts.get(contact.account_id) if contact.account_id else None
    if not company and isinstance(contact.attributes, dict):
        company = contact.attributes.get("company")
    return f"{name} ({company})" if company else name


def names_for(session: Session, decisions: Iterable[Decision], *, extra: dict[str, set[int]] | None = None) -> wording.Names:
    """Display names for every record the decisions mention: one query per kind of record."""
    wanted = _wanted_ids(decisions)
    for kind, ids in (extra or {}).items():
        wanted.setdefault(kind, set()).update(ids)
    names = wording.Names()
    contacts = list(session.scalars(select(Contact).where(Contact.id.in_(wanted["contact"])))) if wanted["contact"] else []
    deals = list(session.scalars(select(Deal).where(Deal.id.in_(wanted["deal"])))) if wanted["deal"] else []
    account_ids = wanted["account"] | {c.account_id for c in contacts if c.account_id} | {d.account_id for d in deals if d.account_id}
    if account_ids:
        names.accounts = dict(session.execute(select(Account.id, Account.name).where(Account.id.in_(account_ids))).all())
    names.contacts = {c.id: _contact_label(c, names.accounts) for c in contacts}
    names.emails = {c.id: c.email for c in contacts if c.email}
    names.deals = {d.id: d.name or f"a deal with {names.accounts.get(d.account_id, 'no account')}" for d in deals}
    if wanted["meeting"]:
        names.meetings = {m.id: f"{m.title} ({m.starts_at:%d %b %H:%M})"
                          for m in session.scalars(select(Meeting).where(Meeting.id.in_(wanted["meeting"])))}
    if wanted["user"]:
        names.users = dict(session.execute(select(User.id, User.name).where(User.id.in_(wanted["user"]))).all())
    return names


def subject_name(decision: Decision, names: wording.Names) -> str:
    label = wording.plain(decision.subject_label) if decision.subject_label else ""
    return label or names.record(decision.subject_type, decision.subject_id) or "the whole pipeline"


def _action_views(decision: Decision, stakes: dict[str, str], executions: dict[int, ActionExecution],
                  names: wording.Names | None = None) -> list[ActionView]:
    names = names or wording.Names()
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
            label=wording.action_label(action_type), headline=wording.headline(action_type, raw, names),
        ))
    return views


def _executions(session: Session, ids: list[int]) -> dict[int, dict[int, ActionExecution]]:
    out: dict[int, dict[int, ActionExecution]] = {}
    if ids:
        for exe in session.scalars(select(ActionExecution).where(ActionExecution.decision_id.in_(ids)).order_by(ActionExecution.id)):
            out.setdefault(exe.decision_id, {})[exe.position] = exe
    return out


def _deal_values(session: Session, decisions: Iterable[Decision]) -> dict[int, tuple[float | None, str | None]]:
    ids = {d.subject_id for d in decisions if d.subject_type == "deal" and d.subject_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Deal.id, Deal.amount, Deal.currency).where(Deal.id.in_(ids)))
    return {i: (float(a) if a is not None else None, c) for i, a, c in rows}


def urgency_key(stakes: str | None, escalated: bool, deal_value: float | None, expires_at: datetime | None, decision_id: int):
    """Most urgent first: escalated by the agent (a red deal), higher stakes, bigger deal, sooner to expire.

    Deal amounts are compared as stored (no currency conversion): the ordering is a triage, not a total.
    """
    return (not escalated, -stakes_rank(stakes), -(deal_value or 0.0), expires_at or datetime.max, decision_id)


def _queued(session: Session, *, agent: str | None, stakes: str | None, ids: Iterable[int] | None = None) -> list[Decision]:
    q = select(Decision).where(Decision.status == "queued")
    if agent:
        q = q.where(Decision.agent == agent)
    if stakes:
        q = q.where(Decision.stakes == stakes)
    if ids is not None:
        q = q.where(Decision.id.in_(list(ids)))
    return list(session.scalars(q))


def owned_by(owner_id: int):
    """Decisions about a record this user owns (contact, deal, account or meeting)."""
    return or_(*(and_(Decision.subject_type == subject_type,
                      Decision.subject_id.in_(select(model.id).where(model.owner_id == owner_id)))
                 for subject_type, model in (("contact", Contact), ("deal", Deal), ("account", Account), ("meeting", Meeting))))


def queue_entries(session: Session, *, agent: str | None = None, stakes: str | None = None,
                  action_type: str | None = None, reason: str | None = None,
                  ids: Iterable[int] | None = None, owner_id: int | None = None) -> list[QueueEntry]:
    """Every queued decision under these filters in a few fields, the most urgent first.

    `owner_id`: only decisions about records this user owns (a rep's view; see rights.visible_owner).
    Loads the whole queue (without context snapshots) once: hundreds to a few thousand rows, so
    grouping and ordering stay one query and a sort, and a page of cards loads only its own rows.
    """
    q = (select(Decision.id, Decision.agent, Decision.actions, Decision.stakes, Decision.reversible, Decision.escalation,
                Decision.confidence, Decision.policy_reason, Decision.expires_at, Decision.subject_type, Decision.subject_id,
                Deal.amount)
         .outerjoin(Deal, (Decision.subject_type == "deal") & (Deal.id == Decision.subject_id))
         .where(Decision.status == "queued"))
    if agent:
        q = q.where(Decision.agent == agent)
    if stakes:
        q = q.where(Decision.stakes == stakes)
    if ids is not None:
        q = q.where(Decision.id.in_(list(ids)))
    if owner_id is not None:
        q = q.where(owned_by(owner_id))
    rows = session.execute(q).all()
    kept = []
    for row in rows:
        types = tuple(a.get("type", "?") for a in row.actions or [])
        kind = wording.main_reason(row.policy_reason)
        if action_type and action_type not in types:
            continue
        if reason and kind != reason:
            continue
        kept.append((row, types, kind))
    decisions = [_Light(r.subject_type, r.subject_id, r.actions) for r, _, _ in kept]
    names = names_for(session, decisions)
    out = []
    for row, types, kind in kept:
        first = (row.actions or [{}])[0] if row.actions else {}
        out.append(QueueEntry(
            id=row.id, agent=row.agent, action_types=types, stakes=row.stakes, reversible=row.reversible,
            escalated=bool(row.escalation), confidence=row.confidence, reason_kind=kind,
            deal_value=float(row.amount) if row.amount is not None else None, expires_at=row.expires_at,
            headline=wording.headline(first.get("type", ""), first.get("params") or {}, names) if first
            else f"A look at {names.record(row.subject_type, row.subject_id) or 'the pipeline'}",
        ))
    out.sort(key=lambda e: urgency_key(e.stakes, e.escalated, e.deal_value, e.expires_at, e.id))
    return out


class _Light:
    """The three fields of a decision `names_for` reads, from a column query."""

    def __init__(self, subject_type: str | None, subject_id: int | None, actions: list[dict[str, Any]] | None):
        self.subject_type, self.subject_id, self.actions = subject_type, subject_id, actions


def queue_items_by_id(session: Session, ids: list[int]) -> list[QueueItem]:
    """Full cards for these queued decisions, in the order given (ids no longer queued are left out)."""
    rows = {d.id: d for d in _queued(session, agent=None, stakes=None, ids=ids)} if ids else {}
    ordered = [rows[i] for i in ids if i in rows]
    stakes_map = _stakes_by_type(session)
    thresholds = policy_thresholds(session)
    names = names_for(session, ordered)
    values = _deal_values(session, ordered)
    return [_queue_item(d, stakes_map, thresholds, names, values) for d in ordered]


def _queue_item(d: Decision, stakes_map: dict[str, str], thresholds: dict[str, float], names: wording.Names,
                values: dict[int, tuple[float | None, str | None]]) -> QueueItem:
    value, currency = values.get(d.subject_id, (None, None)) if d.subject_type == "deal" else (None, None)
    return QueueItem(
        id=d.id, agent=d.agent, status=d.status, subject_type=d.subject_type, subject_id=d.subject_id,
        subject_label=d.subject_label, actions=_action_views(d, stakes_map, {}, names), confidence=d.confidence,
        model_confidence=d.model_confidence, confidence_factors=d.confidence_factors or {}, reasoning=d.reasoning,
        escalation=d.escalation, context_snapshot=d.context_snapshot or {}, stakes=d.stakes, reversible=d.reversible,
        policy_reason=d.policy_reason, provider=d.provider, model=d.model, is_local=d.is_local,
        created_at=d.created_at, expires_at=d.expires_at,
        agent_label=wording.agent_label(d.agent), subject_name=subject_name(d, names),
        why=wording.why_waiting(d.policy_reason, d.confidence, thresholds), reason_kind=wording.main_reason(d.policy_reason),
        decided_by_line=wording.provider_line(d.provider, d.model, d.is_local), deal_value=value, deal_currency=currency,
    )


def queue_items(session: Session, *, agent: str | None = None, stakes: str | None = None, action_type: str | None = None,
                reason: str | None = None, limit: int = 50, offset: int = 0) -> list[QueueItem]:
    """Queued decisions, the most urgent first (stakes, escalation, deal value, expiry)."""
    entries = queue_entries(session, agent=agent, stakes=stakes, action_type=action_type, reason=reason)
    return queue_items_by_id(session, [e.id for e in entries[offset:offset + limit]])


def _decided(d: Decision, stakes_map: dict[str, str], executions: dict[int, ActionExecution],
             names: wording.Names | None = None) -> DecidedItem:
    names = names or wording.Names()
    return DecidedItem(
        agent_label=wording.agent_label(d.agent), subject_name=subject_name(d, names),
        id=d.id, agent=d.agent, status=d.status, subject_type=d.subject_type, subject_id=d.subject_id,
        subject_label=d.subject_label, actions=_action_views(d, stakes_map, executions, names), confidence=d.confidence,
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
    names = names_for(session, rows)
    return [_decided(d, stakes_map, executions.get(d.id, {}), names) for d in rows]


def decision_detail(session: Session, decision_id: int) -> DecidedItem:
    d = session.get(Decision, decision_id)
    if d is None:
        raise NotFound(f"decision {decision_id} not found")
    return _decided(d, _stakes_by_type(session), _executions(session, [d.id]).get(d.id, {}), names_for(session, [d]))


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

