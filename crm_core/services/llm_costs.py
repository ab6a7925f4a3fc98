"""What each model decision cost: per agent, day, model and tier, from the usage the API returned.

Every decision row keeps the tokens and cost of the model call that made it (split evenly over the
proposals of one call by the oversight intake), so the cost per decision is read from the store,
never estimated. Only decisions a remote model made are counted: the offline reasoner and a local
model cost nothing per call. The cached share is the part of the input the API read from the
prompt cache (cache reads over all input tokens, reads and writes included).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.models import Decision
from crm_core.settings import get_settings


class DecisionCost(BaseModel):
    day: date
    agent: str
    model: str
    tier: str            # small, mid, large, or "other" for a model no tier names now
    decisions: int
    input_tokens: int    # billed at the full input price
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_usd: float

    @property
    def cost_per_decision(self) -> float:
        return self.cost_usd / self.decisions if self.decisions else 0.0

    @property
    def cached_share(self) -> float | None:
        total = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / total if total else None


def _day(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def decision_costs(session: Session, *, days: int = 14) -> list[DecisionCost]:
    """One row per day, agent and model over the last `days` days (UTC), newest day first."""
    settings = get_settings()
    tiers = {settings.model_small: "small", settings.model_mid: "mid", settings.model_large: "large"}
    start = datetime.combine(clock.now().date() - timedelta(days=days - 1), datetime.min.time())
    day = func.date(Decision.created_at)
    rows = session.execute(
        select(day, Decision.agent, Decision.model, func.count(), func.sum(Decision.input_tokens),
               func.sum(Decision.cache_read_tokens), func.sum(Decision.cache_write_tokens),
               func.sum(Decision.output_tokens), func.sum(Decision.cost_usd))
        .where(Decision.created_at >= start, Decision.is_local.is_(False), Decision.model.is_not(None))
        .group_by(day, Decision.agent, Decision.model)
    ).all()
    costs = [DecisionCost(day=_day(d), agent=agent, model=model, tier=tiers.get(model, "other"), decisions=int(n),
                          input_tokens=int(i or 0), cache_read_tokens=int(r or 0), cache_write_tokens=int(w or 0),
                          output_tokens=int(o or 0), cost_usd=float(c or 0))
             for d, agent, model, n, i, r, w, o, c in rows]
    return sorted(costs, key=lambda c: (-c.day.toordinal(), c.agent, c.model))
