"""The heartbeat the dashboard reads: alive, busy or idle, queue depth and today's LLM spend."""
from __future__ import annotations

from decimal import Decimal

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import Decision, WorkerHeartbeat
from orchestration.scheduler import worker as worker_module
from orchestration.scheduler.worker import Worker


def _spend(tokens_in: int, cost: str) -> None:
    with unit_of_work() as s:
        s.add(Decision(agent="lead_scoring", subject_type="contact", status="executed", provider="anthropic", is_local=False,
                       input_tokens=tokens_in, output_tokens=0, cost_usd=Decimal(cost), created_at=clock.now()))


def _beat() -> WorkerHeartbeat:
    with unit_of_work(readonly=True) as s:
        return s.get(WorkerHeartbeat, "w1")


def test_the_heartbeat_reports_todays_spend_and_refreshes_it_every_so_often(store, monkeypatch):
    _spend(1200, "0.0100")
    w = Worker("w1", heartbeat_every=0)
    w.beat(force=True)
    assert (_beat().llm_tokens_today, float(_beat().llm_cost_today_usd)) == (1200, 0.01)
    assert _beat().status == "idle"

    _spend(800, "0.0050")
    w.beat()
    assert _beat().llm_tokens_today == 1200  # the sum is not redone on every beat
    monkeypatch.setattr(worker_module, "SPEND_EVERY", 0.0)
    w.beat()
    assert _beat().llm_tokens_today == 2000
