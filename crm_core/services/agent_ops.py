"""Agents and settings: is the scheduler alive, how deep are the queues, what do the agents cost.

The spend per agent per day is summed in SQL over `decisions` (which carry each envelope's
tokens and cost, split across its proposals, so sums are exact). Model tiers and the provider
come from settings and are shown read-only: they change in the environment, not in a click.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES
from agents.registry import get_agent
from crm_core import clock
from crm_core.models import AgentSetting, Decision, Job, WorkerHeartbeat
from crm_core.oversight import queue_depth
from crm_core.settings import get_settings

# A worker beats every couple of seconds while it runs; a minute of silence means it is gone.
ALIVE_WITHIN = timedelta(seconds=60)
USAGE_COLUMNS = ["day", "agent", "decisions", "input_tokens", "output_tokens", "tokens", "cost_usd", "remote_decisions"]


class HeartbeatView(BaseModel):
    worker_id: str
    hostname: str | None
    pid: int | None
    status: str
    started_at: datetime
    last_seen_at: datetime
    seconds_since: float
    alive: bool
    current_job: str | None
    queue_depth: int
    jobs_done: int
    llm_tokens_today: int
    llm_cost_today_usd: float


class SchedulerStatus(BaseModel):
    workers_alive: int
    last_beat_at: datetime | None
    seconds_since_last_beat: float | None
    jobs_pending: int
    jobs_running: int
    jobs_dead: int
    decisions_queued: int


class AgentRuntime(BaseModel):
    agent: str
    tier: str | None            # small | mid | large, from the agent module
    model: str | None           # the configured model of that tier
    other_tiers: list[str] = []  # work sent to another tier, in words: "the whole-pipeline review: large (claude-…)"
    provider: str               # the agent's override, else the global provider
    enabled: bool
    daily_token_budget: int | None
    daily_cost_budget_usd: float | None


class RuntimeConfig(BaseModel):
    provider: str               # the effective global provider
    provider_reason: str
    model_small: str
    model_mid: str
    model_large: str
    anthropic_key_set: bool     # never the key itself
    anthropic_base_url: str | None
    ollama_host: str | None
    ollama_model: str
    supervised_all: bool
    queue_expiry_hours: int
    agents: list[AgentRuntime]


def heartbeats(session: Session) -> list[HeartbeatView]:
    now = clock.now()
    rows = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()).limit(50))
    out = []
    for hb in rows:
        since = (now - hb.last_seen_at).total_seconds()
        out.append(HeartbeatView(
            worker_id=hb.worker_id, hostname=hb.hostname, pid=hb.pid, status=hb.status, started_at=hb.started_at,
            last_seen_at=hb.last_seen_at, seconds_since=since,
            alive=since <= ALIVE_WITHIN.total_seconds() and hb.status not in ("stopped",),
            current_job=hb.current_job, queue_depth=hb.queue_depth, jobs_done=hb.jobs_done,
            llm_tokens_today=hb.llm_tokens_today, llm_cost_today_usd=hb.llm_cost_today_usd,
        ))
    return out


def scheduler_status(session: Session) -> SchedulerStatus:
    beats = heartbeats(session)
    jobs = dict(session.execute(
        select(Job.status, func.count()).where(Job.status.in_(("pending", "running", "dead"))).group_by(Job.status)).all())
    last = beats[0] if beats else None
    return SchedulerStatus(
        workers_alive=sum(1 for b in beats if b.alive),
        last_beat_at=last.last_seen_at if last else None,
        seconds_since_last_beat=last.seconds_since if last else None,
        jobs_pending=int(jobs.get("pending", 0)), jobs_running=int(jobs.get("running", 0)), jobs_dead=int(jobs.get("dead", 0)),
        decisions_queued=queue_depth(session),
    )


def _day(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def agent_usage_by_day(session: Session, *, days: int = 14) -> pd.DataFrame:
    """Decisions, tokens and LLM cost per agent per day over the last `days` days (UTC), zero days included."""
    today = clock.now().date()
    start = today - timedelta(days=days - 1)
    day = func.date(Decision.created_at)
    rows = session.execute(
        select(day, Decision.agent, func.count(), func.sum(Decision.input_tokens), func.sum(Decision.output_tokens),
               func.sum(Decision.cost_usd), func.sum(case((Decision.is_local.is_(False), 1), else_=0)))
        .where(Decision.created_at >= datetime.combine(start, datetime.min.time()))
        .group_by(day, Decision.agent)
    ).all()
    found = {(_day(d), agent): (n, i or 0, o or 0, float(c or 0), r or 0) for d, agent, n, i, o, c, r in rows}
    agents = sorted(set(AGENT_NAMES) | {a for _, a in found})
    records = []
    for offset in range(days):
        d = start + timedelta(days=offset)
        for agent in agents:
            n, i, o, c, r = found.get((d, agent), (0, 0, 0, 0.0, 0))
            records.append((d, agent, int(n), int(i), int(o), int(i) + int(o), c, int(r)))
    return pd.DataFrame.from_records(records, columns=USAGE_COLUMNS)


def _agent_tiers(name: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The agent's tier, and the work it sends to another tier (what, tier)."""
    agent = get_agent(name)
    return agent.tier, tuple(getattr(agent, "other_tiers", ()))  # other_tiers: optional, the pipeline's review


def runtime_config(session: Session) -> RuntimeConfig:
    settings = get_settings()
    stored = {s.agent: s for s in session.scalars(select(AgentSetting))}
    tiers = {"small": settings.model_small, "mid": settings.model_mid, "large": settings.model_large}
    if settings.llm_provider:
        reason = "CRM_LLM_PROVIDER is set"
    elif settings.anthropic_api_key:
        reason = "an Anthropic key is configured"
    else:
        reason = "no Anthropic key is configured: the built-in offline reasoner runs"
    agents = []
    for name in AGENT_NAMES:
        row = stored.get(name)
        tier, others = _agent_tiers(name)
        agents.append(AgentRuntime(
            agent=name, tier=tier, model=tiers.get(tier) if tier else None,
            other_tiers=[f"{what}: {t} ({tiers[t]})" if t in tiers else f"{what}: {t}" for what, t in others],
            provider=(row.provider if row and row.provider else settings.effective_provider),
            enabled=row.enabled if row else True,
            daily_token_budget=row.daily_token_budget if row else None,
            daily_cost_budget_usd=float(row.daily_cost_budget_usd) if row and row.daily_cost_budget_usd is not None else None,
        ))
    return RuntimeConfig(
        provider=settings.effective_provider, provider_reason=reason, model_small=settings.model_small,
        model_mid=settings.model_mid, model_large=settings.model_large, anthropic_key_set=bool(settings.anthropic_api_key),
        anthropic_base_url=settings.anthropic_base_url, ollama_host=settings.ollama_host, ollama_model=settings.ollama_model,
        supervised_all=settings.supervised, queue_expiry_hours=settings.queue_expiry_hours, agents=agents,
    )
