"""ORM classes, one module per aggregate. Import from here."""
from crm_core.models.auth import ApiToken, AuthSession, UserAccount
from crm_core.models.api import IdempotencyRecord, MailMessage, WebhookDelivery, WebhookSource, WebhookSubscription
from crm_core.models.base import Base
from crm_core.models.deals import Deal, StageHistory
from crm_core.models.engagement import Activity, Email, Meeting, Task
from crm_core.models.fx import ExchangeRate, ReportingCurrency
from crm_core.models.import_batches import ImportBatch
from crm_core.models.enums import (
    ActivityType,
    DealStatus,
    DecisionStatus,
    EmailDirection,
    JobStatus,
    LifecycleStage,
    MeetingStatus,
    OutboxStatus,
    Risk,
    Role,
    Stakes,
    TaskStatus,
    Tier,
)
from crm_core.models.oversight import ActionExecution, AgentSetting, AuditEntry, Decision, OutboxMessage, Policy
from crm_core.models.people import Account, Contact, ScoreHistory, User
from crm_core.models.quality import QualityAudit, QualityFieldScore
from crm_core.models.runtime import Cursor, Job, Lock, ModelSnapshot, WorkerHeartbeat

__all__ = [
    "IdempotencyRecord", "MailMessage", "WebhookDelivery", "WebhookSource", "WebhookSubscription",
    "ExchangeRate", "ImportBatch", "ReportingCurrency",
    "Account", "ActionExecution", "ApiToken", "AuthSession", "Activity", "ActivityType", "AgentSetting", "AuditEntry", "Base",
    "Contact", "Cursor", "Deal", "DealStatus", "Decision", "DecisionStatus", "Email", "EmailDirection",
    "Job", "JobStatus", "LifecycleStage", "Lock", "Meeting", "MeetingStatus", "ModelSnapshot",
    "OutboxMessage", "OutboxStatus", "Policy", "QualityAudit", "QualityFieldScore", "Risk", "Role", "ScoreHistory", "Stakes",
    "StageHistory", "Task", "TaskStatus", "Tier", "User", "UserAccount", "WorkerHeartbeat",
]
