"""What the scheduler sidecar keeps: jobs, leases, cursors, heartbeats, learned models."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after"),
        Index("ix_jobs_kind_key_status", "kind", "dedupe_key", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))  # e.g. agent:lead_scoring
    # Jobs with the same kind and key coalesce while pending (a burst of events, one rescoring).
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    run_after: Mapped[datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Cursor(Base):
    """How far a follower has read an append-only log (e.g. the activity log)."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None]
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    status: Mapped[str] = mapped_column(String(20), default="idle")  # idle | busy | stopping | stopped
    current_job: Mapped[str | None] = mapped_column(String(300))
    queue_depth: Mapped[int] = mapped_column(default=0)
    jobs_done: Mapped[int] = mapped_column(default=0)
    llm_cost_today_usd: Mapped[float] = mapped_column(default=0.0)
    llm_tokens_today: Mapped[int] = mapped_column(default=0)


class Lock(Base):
    """A named lease, e.g. the single-worker lock on SQLite."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class ModelSnapshot(Base):
    """A model the learn step trained on the store's history, with its validation report.

    The newest row per agent is the one the context builders read; older rows stay as history.
    """

    __tablename__ = "model_snapshots"
    __table_args__ = (Index("ix_model_snapshots_agent_trained", "agent", "trained_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(40))
    trained_at: Mapped[datetime] = mapped_column(default=clock.now)
    data_hash: Mapped[str] = mapped_column(String(64))  # hash of the outcomes it learned from
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. {"holdout_auc": 0.71}
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int | None]                                  # the learner's snapshot format
    kind: Mapped[str | None] = mapped_column(String(40))         # e.g. lead_scorer, pipeline_loss
    validation: Mapped[dict[str, Any] | None]                    # candidates, fold AUCs, the rule, the choice
    chosen: Mapped[str | None] = mapped_column(String(60))       # the candidate used, or "prior"
