"""What the oversight services return to the dashboard, the CLI and the scheduler: plain pydantic values."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ActionView(BaseModel):
    """One proposed action as a human sees it before (and after) approving."""

    position: int
    type: str
    params: dict[str, Any]
    reason: str = ""
    summary: str                      # e.g. "Set lead score to 82 (hot); next action: call"
    stakes: str | None = None         # the policy's stakes for this action type
    reversible: bool
    undo_note: str                    # e.g. "an email cannot be unsent"
    execution_status: str | None = None  # executed | failed | reverted, once it ran
    revert_note: str | None = None
    label: str = ""                   # the kind of action in plain words: "Task for the rep"
    headline: str = ""                # what it does, with names: "New score for Dana Smith (Acme): 82 (hot)"


class QueueItem(BaseModel):
    """A decision waiting for a human, with everything needed to judge it."""

    id: int
    agent: str
    status: str
    subject_type: str
    subject_id: int | None
    subject_label: str | None
    actions: list[ActionView]
    confidence: float | None
    model_confidence: float | None
    confidence_factors: dict[str, Any]
    reasoning: str | None
    escalation: str | None
    context_snapshot: dict[str, Any]
    stakes: str | None
    reversible: bool
    policy_reason: str | None
    provider: str | None
    model: str | None
    is_local: bool
    created_at: datetime
    expires_at: datetime | None
    # Plain words for the card (crm_core.oversight.wording): no ids, no internal names.
    agent_label: str = ""
    subject_name: str = ""
    why: list[str] = []               # every reason it waits, its numbers agreeing with its comparison
    reason_kind: str = "other"        # the most serious reason, see wording.REASON_LABELS
    decided_by_line: str = ""         # "Decided by the built-in reasoner"
    deal_value: float | None = None   # the deal's amount when the subject is a deal (urgency)
    deal_currency: str | None = None


class QueueEntry(BaseModel):
    """One queued decision in a few fields: enough to order, group, filter and preview hundreds."""

    id: int
    agent: str
    action_types: tuple[str, ...]
    stakes: str | None
    reversible: bool
    escalated: bool
    confidence: float | None
    reason_kind: str
    deal_value: float | None
    expires_at: datetime | None
    headline: str                     # the first action's headline, with names


class DecidedItem(BaseModel):
    """A decision that left the queue (or never entered it): who decided what, and what ran."""

    id: int
    agent: str
    status: str
    subject_type: str
    subject_id: int | None
    subject_label: str | None
    actions: list[ActionView]
    confidence: float | None
    stakes: str | None
    reversible: bool
    policy_verdict: str | None
    policy_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    executed_at: datetime | None
    reverted_at: datetime | None
    reverted_by: str | None
    error: str | None
    created_at: datetime
    agent_label: str = ""
    subject_name: str = ""


class AuditView(BaseModel):
    id: int
    at: datetime
    actor: str
    event: str
    decision_id: int | None
    subject_type: str | None
    subject_id: int | None
    details: dict[str, Any]


class OutboxView(BaseModel):
    id: int
    kind: str                 # email | notification
    decision_id: int | None
    contact_id: int | None
    recipient: str | None
    subject: str | None
    body: str | None
    attachment_names: list[str]
    status: str               # pending | held | sent | cancelled | failed
    sink: str | None          # smtp | webhook | outbox
    send_after: datetime | None
    created_at: datetime
    sent_at: datetime | None
    error: str | None


class PolicyView(BaseModel):
    action_type: str
    stakes: str
    threshold: float
    always_ask: bool
    reversible: bool | None   # None when no executor is registered for the type
    undo_note: str | None
    updated_at: datetime
    updated_by: str | None


class SupervisionView(BaseModel):
    agent: str
    supervised: bool
    reason: str | None        # why, in words: "until 2026-12-01 09:00", "for 3 more decisions", "CRM_SUPERVISED=1"
    until: datetime | None
    remaining: int | None


class BulkResult(BaseModel):
    id: int
    ok: bool
    status: str | None = None  # the decision's status afterwards
    error: str | None = None


class CalibrationRow(BaseModel):
    """Per action type: the lowest threshold whose past queued decisions humans approved at `target`."""

    action_type: str
    current_threshold: float | None
    suggested_threshold: float | None  # None: no threshold reaches the target with enough decisions
    target: float
    decided: int                       # human verdicts on queued decisions with this action type
    approved: int                      # of those, approved as proposed
    decided_at_suggested: int          # verdicts on decisions with confidence >= suggested threshold
    approved_at_suggested: int
    note: str
