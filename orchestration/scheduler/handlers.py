"""What a claimed job does. Each handler is idempotent: a job redone after a crash changes nothing twice."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core import clock, oversight
from crm_core.actions.sink import Sinks
from crm_core.db import session_factory, unit_of_work
from crm_core.models import AuditEntry, Job
from crm_core.quality.scheduling import run_scheduled_audit
from crm_core.settings import get_settings
from orchestration.runner import run_agent
from orchestration.scheduler import live_jobs
from orchestration.scheduler.learn_jobs import LEARN_JOB, run_learn_job

Handler = Callable[[Job], dict[str, Any]]


def run_agent_job(job: Job) -> dict[str, Any]:
    payload = job.payload or {}
    result = run_agent(
        payload["agent"],
        subject_ids=payload.get("subject_ids"),
        provider=payload.get("provider"),
        # The job id makes the decision's idempotency key: a job redone after its worker
        # died finds the decision already stored and executes nothing again.
        idempotency_key=f"job:{job.id}",
        skip_unchanged=True,
    )
    failed = [o for o in result.outcomes if o.failed]
    if result.outcomes and len(failed) == len(result.outcomes):
        raise RuntimeError(f"every subject failed; first error: {failed[0].error}")
    return {"decisions": len(result.decision_ids), "failed": len(failed), "skipped": sum(1 for o in result.outcomes if o.skipped)}


def expire_queue(job: Job) -> dict[str, Any]:
    with unit_of_work() as session:
        return {"expired": oversight.expire_stale(session)}


def calibration(job: Job) -> dict[str, Any]:
    with unit_of_work() as session:
        report = oversight.calibration_report(session)
        rows = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in report]
        session.add(AuditEntry(actor="scheduler", event="calibration.report", at=clock.now(), details={"rows": rows}))
    return {"action_types": len(rows)}


def dispatch_outbox(job: Job) -> dict[str, Any]:
    """Send the scheduled emails and notifications whose time has come.

    Called outside any open transaction on purpose: each message is claimed and sent in its own
    unit of work, so a slow SMTP server never holds a lock on the outbox.
    """
    # The worker opens these units of work, so it picks their store and sinks.
    return {"sent": oversight.dispatch_due(session_factory(), Sinks.from_settings(get_settings()))}


def data_audit(job: Job) -> dict[str, Any]:
    return run_scheduled_audit((job.payload or {}).get("trigger"))


HANDLERS: dict[str, Handler] = {
    "agent": run_agent_job,
    "data_audit": data_audit,
    "expire_queue": expire_queue,
    "calibration": calibration,
    "dispatch_outbox": dispatch_outbox,
    live_jobs.DELIVER_JOB: live_jobs.deliver_webhooks,
    live_jobs.MAILBOX_JOB: live_jobs.poll_mailbox,
    LEARN_JOB: run_learn_job,
}
