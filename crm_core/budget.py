"""Daily LLM spend per agent, and whether an agent's budget for today is spent."""
from __future__ import annotations

from datetime import datetime, time

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.models import AgentSetting, Decision


class Spend(BaseModel):
    agent: str
    tokens: int
    cost_usd: float
    token_budget: int | None
    cost_budget_usd: float | None

    @property
    def exhausted(self) -> bool:
        if self.token_budget is not None and self.tokens >= self.token_budget:
            return True
        return self.cost_budget_usd is not None and self.cost_usd >= self.cost_budget_usd


def _start_of_day(at: datetime) -> datetime:
    return datetime.combine(at.date(), time.min)


def spend_today(session: Session, agent: str, *, at: datetime | None = None) -> Spend:
    at = at or clock.now()
    tokens, cost = session.execute(
        select(
            func.coalesce(func.sum(Decision.input_tokens + Decision.output_tokens), 0),
            func.coalesce(func.sum(Decision.cost_usd), 0),
        ).where(Decision.agent == agent, Decision.created_at >= _start_of_day(at), Decision.is_local.is_(False))
    ).one()
    setting = session.get(AgentSetting, agent)
    return Spend(
        agent=agent,
        tokens=int(tokens),
        cost_usd=float(cost),
        token_budget=setting.daily_token_budget if setting else None,
        cost_budget_usd=float(setting.daily_cost_budget_usd) if setting and setting.daily_cost_budget_usd is not None else None,
    )


def total_spend_today(session: Session, *, at: datetime | None = None) -> tuple[int, float]:
    at = at or clock.now()
    tokens, cost = session.execute(
        select(
            func.coalesce(func.sum(Decision.input_tokens + Decision.output_tokens), 0),
            func.coalesce(func.sum(Decision.cost_usd), 0),
        ).where(Decision.created_at >= _start_of_day(at))
    ).one()
    return int(tokens), float(cost)
