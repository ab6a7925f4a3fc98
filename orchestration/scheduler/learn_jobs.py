"""The learn job: train the lead scorer and the pipeline weights, store them as snapshots, apart from any agent run.

Queued daily (time moves the maturity line and the newest period even when no outcome changes)
and by `planners.learn_when_outcomes_change` when the rows outcomes are read from change (an
import, a deal closed, a lead disqualified). The context builders only read what it stored.
"""
from __future__ import annotations

from typing import Any

from crm_core import clock
from crm_core.contexts.pipeline import learn_pipeline_model
from crm_core.db import unit_of_work
from crm_core.learning import learn_lead_scorer
from crm_core.models import Job

LEARN_JOB = "learn"


def run_learn_job(job: Job) -> dict[str, Any]:
    """Learn the lead scorer and the pipeline weights; `force` (the daily run) retrains even when
    the outcomes are the same. Each in its own unit of work: one failing keeps the other."""
    force = bool((job.payload or {}).get("force", False))
    with unit_of_work() as session:
        model = learn_lead_scorer(session, as_of=clock.now(), force=force)
        report = model.scorer.report if model.scorer is not None else None
        out: dict[str, Any] = {
            "lead_scorer": report.candidate if report else "prior",
            "validated_auc": report.holdout_auc if report else None,
            "snapshot_id": model.snapshot_id,
            "reason": model.reason,
        }
    with unit_of_work() as session:
        pipeline = learn_pipeline_model(session, as_of=clock.now(), force=force)
        out.update(pipeline_model="learned" if pipeline.model is not None else "prior",
                   pipeline_snapshot_id=pipeline.snapshot_id, pipeline_reason=pipeline.fallback_reason)
    return out
