"""A worker process for the scheduler tests, with probe handlers instead of agents.

Usage: python tests/scheduler_probe.py WORKER_ID MODE [LEASE_SECONDS]
  MODE "drain": run jobs until none is due, then exit.
  MODE "forever": run until SIGTERM.
The `probe` handler records each run in the audit log (append-only, so nothing can hide a
double run) and sleeps `payload.sleep` seconds; `payload.fail_times` makes it fail that many
times first.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from crm_core.db import unit_of_work  # noqa: E402
from crm_core.models import AuditEntry, Job  # noqa: E402
from orchestration.scheduler.worker import Worker  # noqa: E402


def probe(job: Job) -> dict:
    payload = job.payload or {}
    with unit_of_work() as session:
        session.add(AuditEntry(actor=WORKER_ID, event="probe.started", subject_type="job", subject_id=job.id))
    time.sleep(float(payload.get("sleep", 0)))
    if job.attempts <= int(payload.get("fail_times", 0)):
        raise RuntimeError(f"probe failure on attempt {job.attempts}")
    with unit_of_work() as session:
        session.add(AuditEntry(actor=WORKER_ID, event="probe.done", subject_type="job", subject_id=job.id))
    return {}


if __name__ == "__main__":
    WORKER_ID, mode = sys.argv[1], sys.argv[2]
    lease = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    worker = Worker(WORKER_ID, handlers={"probe": probe}, lease_seconds=lease, poll_interval=0.05)
    worker.timers.clear()  # probes only: no agent planners in these tests
    worker.install_signal_handlers()
    if mode == "drain":
        while worker.process_one():
            pass
    else:
        print("ready", flush=True)
        worker.run_forever()
