"""The closed vocabularies of the store. Each value has one meaning, written next to it."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REP = "rep"          # owns contacts and deals
    MANAGER = "manager"  # approves queued decisions, sees the whole team
    ADMIN = "admin"


class LifecycleStage(StrEnum):
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"          # outcome: converted (a won label for learning)
    DISQUALIFIED = "disqualified"  # outcome: will not convert (a lost label for learning)


OUTCOME_STAGES = (LifecycleStage.CUSTOMER, LifecycleStage.DISQUALIFIED)


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Risk(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class ActivityType(StrEnum):
    PAGE_VIEW = "page_view"
    CONTENT_DOWNLOAD = "content_download"
    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_REPLIED = "email_replied"
    CALL = "call"
    MEETING = "meeting"
    NOTE = "note"
    FORM_SUBMIT = "form_submit"
    STAGE_CHANGE = "stage_change"
    LINKEDIN_MESSAGE = "linkedin_message"


class EmailDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class DecisionStatus(StrEnum):
    PROPOSED = "proposed"              # stored, policy not yet applied
    AUTO_APPROVED = "auto_approved"    # policy let it run by itself
    QUEUED = "queued"                  # waits for a human
    APPROVED = "approved"              # a human approved it as proposed
    EDITED = "edited"                  # a human changed it, then approved
    REJECTED = "rejected"
    EXPIRED = "expired"                # nobody decided in time
    EXECUTED = "executed"
    FAILED = "failed"                  # reasoning or execution failed; nothing half-applied
    REVERTED = "reverted"


class Stakes(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"  # gave up after max attempts; last_error kept


class OutboxStatus(StrEnum):
    PENDING = "pending"      # scheduled for later, may still be cancelled
    HELD = "held"            # no sink configured: kept here, shown on the dashboard
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"
