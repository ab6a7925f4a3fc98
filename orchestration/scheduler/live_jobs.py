"""Scheduler glue for live data: outbound webhooks from the audit log, replies from the shared inbox.

    follow_audit_log (planner, every second)   audit entries -> one webhook delivery per subscription
    deliver_webhooks (job)                     post due deliveries, with retries and backoff
    plan_mailbox (planner, CRM_IMAP_POLL_SECONDS) enqueue a poll when CRM_IMAP_HOST is set
    poll_mailbox (job)                         read new mail, record replies against contacts and threads
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_core import jobqueue
from crm_core.db import session_factory, unit_of_work
from crm_core.mailbox import poller
from crm_core.models import AuditEntry, Job
from crm_core.services import idempotency
from crm_core.settings import get_settings
from crm_core.webhooks import outbound
from orchestration.scheduler.planners import _read_log

AUDIT_CURSOR = "audit:webhooks"
DELIVER_JOB = "deliver_webhooks"
MAILBOX_JOB = "poll_mailbox"


def follow_audit_log(session: Session) -> int:
    """New audit entries become deliveries in this unit of work; a delivery job is woken when any were made."""
    rows = _read_log(session, AUDIT_CURSOR, AuditEntry.id)
    if not rows:
        return 0
    created = outbound.enqueue_from_audit(session, [row[0] for row in rows])
    if created:
        jobqueue.enqueue(session, DELIVER_JOB, dedupe_key=DELIVER_JOB)
    return created


def deliver_webhooks(job: Job) -> dict[str, Any]:
    # Outside any transaction on purpose: each delivery is claimed, posted and recorded on its own.
    counts = outbound.deliver_due(session_factory(), get_settings())
    with unit_of_work() as session:
        counts["idempotency_keys_purged"] = idempotency.purge_old(session)
    return counts


def plan_mailbox(session: Session) -> int:
    if not get_settings().imap_host:
        return 0
    return 1 if jobqueue.enqueue(session, MAILBOX_JOB, dedupe_key=MAILBOX_JOB) else 0


def poll_mailbox(job: Job) -> dict[str, Any]:
    return poller.poll(get_settings()).model_dump()
