"""Every reason the demo book's lead scores give reads the way the side it is listed on says."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import Decision
from orchestration.runner import run_agent
from reason_words import direction, sides


def test_every_lead_score_reason_on_the_demo_book_reads_the_way_its_side_says(sqlite_store):
    as_of = datetime(2025, 6, 10, 9, 0)
    seed_demo(as_of=as_of, scale=0.3, url=sqlite_store)
    with clock.frozen_at(as_of + timedelta(minutes=5)):
        assert run_agent("lead_scoring", provider="offline").failed == 0
    with unit_of_work(readonly=True) as s:
        texts = set(s.scalars(select(Decision.reasoning).where(Decision.agent == "lead_scoring")))
    learned = [t for t in texts if " learned on " in t]
    assert len(learned) >= 50, "the demo book must be scored by a learned model, whose typical lead is the reference"

    listed, pointing, against = 0, 0, []
    for text in texts:
        for side, reasons in sides(text).items():
            assert len(reasons) <= 3, text
            for words, points in reasons:
                listed += 1
                assert points * side > 0, (words, points)
                way = direction(words)
                pointing += way != 0
                if way == -side:
                    against.append(f"{'Raised' if side > 0 else 'Lowered'} by: {words} ({points:+d})")
    assert listed >= 300 and pointing >= 100, (listed, pointing)  # the check read real, directed reasons
    assert not against, f"{len(against)} reasons read against their side, e.g. {against[:5]}"
    # Plain words: no internal feature names reach a reason.
    assert not any("_" in words for text in texts for reasons in sides(text).values() for words, _ in reasons)
