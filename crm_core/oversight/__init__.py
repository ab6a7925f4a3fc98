"""Human oversight: policy, the approval queue, the audit log, revert, calibration.

Every service takes the caller's session and works inside its transaction: the caller commits
(`with unit_of_work() as session: ...`). Outgoing messages (email, webhook) leave the machine
only after that commit, through the sinks the unit of work carries (see `crm_core.actions.sinks`).

Decision states:
    proposed -> auto_approved | queued -> approved | edited | rejected | expired
             -> executed | failed -> reverted

Intake (agent runner, scheduler)
    submit(session, envelope, *, idempotency_key=None) -> list[int]
        One `Decision` per proposal, audited (`decision.created`), then policy: auto-approved
        decisions execute at once; the rest wait in the queue until `expires_at`.
    expire_stale(session) -> int
        Queued decisions past `expires_at` become `expired`; returns how many.
    calibration_report(session, *, target=0.95, min_decisions=5) -> list[CalibrationRow]
    dispatch_due(sessions=None, sinks=None, *, limit=100) -> int
        Sends scheduled emails whose time has come (pending outbox rows) through `sinks`
        (`crm_core.actions.sink`; default: the settings'). Opens its own units of work from
        `sessions`: call it outside any open transaction.

Queue (dashboard, CLI)
    approve(session, decision_id, *, actor, note=None, edited_actions=None) -> Decision
    reject(session, decision_id, *, actor, note=None) -> Decision
    bulk_approve(session, ids, *, actor, note=None) -> list[BulkResult]
    revert(session, decision_id, *, actor, note=None) -> Decision
    `actor` is a `crm_core.auth.Actor`; its rights are checked first (`crm_core.auth.rights`) and
    a refusal is `PermissionDenied` naming the missing right.
    Each transition is claimed by a conditional UPDATE: of two concurrent approvals one wins
    and executes; the other gets `InvalidTransition` naming the decision and its state.

Queries (dashboard)
    queue_items(session, *, agent=None, stakes=None, action_type=None, reason=None, limit=50, offset=0) -> list[QueueItem]
        Most urgent first (escalated, stakes, deal value, expiry); cards in plain words (`wording`).
    queue_entries(session, *, agent=None, ..., ids=None) -> list[QueueEntry]   (views; the whole queue, light)
    decided_feed(session, *, agent=None, status=None, limit=50) -> list[DecidedItem]
    decision_detail(session, decision_id) -> DecidedItem
    audit_entries(session, *, agent=None, subject_type=None, subject_id=None, actor=None,
                  event=None, decision_id=None, since=None, until=None, limit=200, offset=0) -> list[AuditView]
    outbox_messages(session, *, status=None, kind=None, limit=100) -> list[OutboxView]
    approval_stats(session, agent) -> dict[action_type, tuple[approved, decided]]  (read-only)
    approval_evidence(session, agent) -> the same with each kind's starting trust (starting_trust.py)
    queue_depth(session) -> int

Policy
    get_policies(session) -> list[PolicyView]          (creates the defaults on first use)
    update_policy(session, action_type, *, actor, threshold=None, stakes=None, always_ask=None) -> PolicyView
    set_supervised(session, agent, *, actor, until=None, decisions=None, off=False) -> SupervisionView
    supervision(session) -> list[SupervisionView]      (every agent; CRM_SUPERVISED=1 covers all)
"""
from crm_core.actions.sinks import dispatch_due
from crm_core.oversight.audit import audit_entries, record
from crm_core.oversight.calibration import calibration_report
from crm_core.oversight.intake import submit
from crm_core.oversight.policy import ensure_default_policies, get_policies, update_policy
from crm_core.oversight.queue import approve, bulk_approve, expire_stale, reject, revert
from crm_core.oversight.schemas import (
    ActionView,
    AuditView,
    BulkResult,
    CalibrationRow,
    DecidedItem,
    OutboxView,
    PolicyView,
    QueueItem,
    SupervisionView,
)
from crm_core.oversight.starting_trust import approval_evidence, trust_views
from crm_core.oversight.supervised import set_supervised, supervision
from crm_core.oversight.views import (
    approval_stats,
    decided_feed,
    decision_detail,
    outbox_messages,
    queue_depth,
    queue_items,
)

__all__ = [
    "ActionView", "AuditView", "BulkResult", "CalibrationRow", "DecidedItem", "OutboxView", "PolicyView",
    "QueueItem", "SupervisionView",
    "approval_evidence", "approval_stats", "approve", "audit_entries", "bulk_approve", "calibration_report", "decided_feed",
    "decision_detail", "dispatch_due", "ensure_default_policies", "expire_stale", "get_policies", "outbox_messages",
    "queue_depth", "queue_items", "record", "reject", "revert", "set_supervised", "submit", "supervision",
    "trust_views", "update_policy",
]
