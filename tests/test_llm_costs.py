"""Cost per decision from the usage the API returned, per agent, day, model and tier; the Agents page shows it."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from streamlit.testing.v1 import AppTest

from auth_helpers import add_user, sign_in
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import Decision
from crm_core.oversight.wording import agent_label
from crm_core.services.llm_costs import decision_costs

ROOT = Path(__file__).resolve().parent.parent


def _decision(agent: str, model: str, *, cost: str, local: bool = False, days_ago: int = 0, read: int = 0,
              written: int = 0, inputs: int = 1000) -> Decision:
    return Decision(agent=agent, subject_type="contact", subject_id=1, status="executed", provider="offline" if local else "anthropic",
                    model=model, is_local=local, input_tokens=inputs, output_tokens=100, cache_read_tokens=read,
                    cache_write_tokens=written, cost_usd=Decimal(cost), created_at=clock.now() - timedelta(days=days_ago))


def _book() -> None:
    with unit_of_work() as s:
        s.add_all([
            _decision("follow_up", "claude-sonnet-5-5", cost="0.0100", written=1500),
            _decision("follow_up", "claude-sonnet-5-5", cost="0.0060", read=1500),
            _decision("lead_scoring", "claude-haiku-5-5", cost="0.0020"),
            _decision("lead_scoring", "offline", cost="0", local=True),         # no model call: not counted
            _decision("lead_scoring", "claude-haiku-5-5", cost="0.0030", days_ago=1),
            _decision("pipeline", "claude-haiku-5-5", cost="0.0040", days_ago=40),  # outside the window
        ])


def test_cost_per_decision_per_agent_day_model_and_tier(store):
    _book()
    with unit_of_work(readonly=True) as s:
        costs = decision_costs(s, days=14)
    today, yesterday = clock.now().date(), clock.now().date() - timedelta(days=1)
    keyed = {(c.day, c.agent, c.model): c for c in costs}
    assert set(keyed) == {(today, "follow_up", "claude-sonnet-5-5"), (today, "lead_scoring", "claude-haiku-5-5"),
                          (yesterday, "lead_scoring", "claude-haiku-5-5")}
    follow_up = keyed[(today, "follow_up", "claude-sonnet-5-5")]
    assert (follow_up.tier, follow_up.decisions) == ("mid", 2)
    assert abs(follow_up.cost_per_decision - 0.008) < 1e-9
    assert abs(follow_up.cached_share - 1500 / (2000 + 3000)) < 1e-9
    assert keyed[(today, "lead_scoring", "claude-haiku-5-5")].tier == "small"
    assert keyed[(today, "lead_scoring", "claude-haiku-5-5")].cached_share == 0
    assert costs[0].day == today  # newest day first


def test_the_agents_page_shows_the_cost_per_decision(store):
    with unit_of_work() as s:
        add_user(s, "Maria Alvarez", "manager")
    _book()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    sign_in(at, "Maria Alvarez")
    at.run()
    at.switch_page("pages/agents_settings.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "Cost per decision" in d.value.columns)
    row = table[table["Agent"] == agent_label("follow_up")].iloc[0]
    assert row["Model"] == "claude-sonnet-5-5 (mid)" and row["Decisions"] == 2
    assert row["Cost per decision"] == "$0.0080" and row["Read from the prompt cache"] == "30%"
