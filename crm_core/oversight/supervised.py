"""Supervised mode: an agent's every decision goes to the queue, for a period or a number of decisions.

`CRM_SUPERVISED=1` (settings.supervised) supervises every agent, for trials.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES
from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.errors import UserError
from crm_core.models import AgentSetting
from crm_core.oversight.audit import record_as
from crm_core.oversight.schemas import SupervisionView
from crm_core.settings import Settings, get_settings


def _check_agent(agent: str) -> None:
    if agent not in AGENT_NAMES:
        raise UserError(f"agent {agent!r} is unknown; agents: {', '.join(AGENT_NAMES)}")


def _view(agent: str, setting: AgentSetting | None, settings: Settings) -> SupervisionView:
    now = clock.now()
    until = setting.supervised_until if setting else None
    remaining = setting.supervised_remaining if setting else None
    reasons = []
    if settings.supervised:
        reasons.append("CRM_SUPERVISED=1 supervises every agent")
    if until is not None and now < until:
        reasons.append(f"supervised until {until:%Y-%m-%d %H:%M} UTC")
    if remaining:
        reasons.append(f"supervised for {remaining} more decision{'s' if remaining != 1 else ''}")
    return SupervisionView(
        agent=agent, supervised=bool(reasons), reason="; ".join(reasons) or None,
        until=until if until is not None and now < until else None, remaining=remaining or None,
    )


def supervision(session: Session, agent: str | None = None) -> list[SupervisionView]:
    settings = get_settings()
    rows = {s.agent: s for s in session.scalars(select(AgentSetting))}
    agents = [agent] if agent else list(AGENT_NAMES)
    return [_view(a, rows.get(a), settings) for a in agents]


def set_supervised(
    session: Session,
    agent: str,
    *,
    actor: Actor,
    until: datetime | None = None,
    decisions: int | None = None,
    off: bool = False,
) -> SupervisionView:
    """Supervise `agent` until a time and/or for a number of decisions; `off=True` ends it (`agent_settings` right)."""
    require(actor, "agent_settings", doing=f"change how the {agent} agent is supervised")
    _check_agent(agent)
    if not off and until is None and decisions is None:
        raise UserError(f"supervise {agent}: give a time (until) or a number of decisions, or turn it off")
    if decisions is not None and decisions < 1:
        raise UserError(f"supervise {agent}: the number of decisions must be at least 1, got {decisions}")
    setting = session.get(AgentSetting, agent)
    if setting is None:
        setting = AgentSetting(agent=agent)
        session.add(setting)
    old = {"until": setting.supervised_until, "remaining": setting.supervised_remaining}
    if off:
        setting.supervised_until = None
        setting.supervised_remaining = None
    else:
        setting.supervised_until = clock.to_naive_utc(until) if until is not None else None
        setting.supervised_remaining = decisions
    setting.updated_at = clock.now()
    setting.updated_by = actor.name
    session.flush()
    new = {"until": setting.supervised_until, "remaining": setting.supervised_remaining}
    record_as(session, "agent.supervised" if not off else "agent.unsupervised", actor=actor,
           subject_type=None, agent=agent, old=old, new=new)
    return _view(agent, setting, get_settings())


def consume(session: Session, agent: str, settings: Settings) -> str | None:
    """Why this decision of `agent` must be supervised, or None. Counts it against a decision budget."""
    now = clock.now()
    reasons = []
    if settings.supervised:
        reasons.append("supervised mode: CRM_SUPERVISED=1")
    setting = session.get(AgentSetting, agent)
    if setting is not None and setting.supervised_until is not None and now < setting.supervised_until:
        reasons.append(f"supervised mode: agent {agent} is supervised until {setting.supervised_until:%Y-%m-%d %H:%M} UTC")
    if setting is not None and setting.supervised_remaining:
        # Conditional decrement: two runners at once never take the same slot twice.
        taken = session.execute(
            update(AgentSetting)
            .where(AgentSetting.agent == agent, AgentSetting.supervised_remaining > 0)
            .values(supervised_remaining=AgentSetting.supervised_remaining - 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.refresh(setting)
        if taken:
            left = setting.supervised_remaining or 0
            reasons.append(f"supervised mode: agent {agent} is supervised for a number of decisions ({left} left after this one)")
    return "; ".join(reasons) or None
