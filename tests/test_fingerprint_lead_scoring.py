"""The lead-scoring fingerprint: one more page view of many asks no model; whatever can change the decision does.

See agents/llm/fingerprint.py for the bound: the estimate's tier and 15-point band, the rules'
tests on tracking counts, every act of a person exactly.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agents import lead_scoring
from agents.lead_scoring import Context
from agents.llm import fingerprint as fp
from agents.llm.fingerprint import fingerprint
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import Activity
from orchestration.registry import builder
from orchestration.runner import run_agent

AS_OF = datetime(2026, 6, 1, 9, 0)


def lead(score: int = 40, *, engagement: dict | None = None, model: dict | None = None, **fields) -> Context:
    """A lead with a learned estimate (cut-offs: warm 19, hot 60) and a fortnight of browsing."""
    data = {
        "contact_id": 7, "as_of": AS_OF, "name": "Dana Reyes", "title": "Operations Manager", "seniority": "manager",
        "email_kind": "corporate", "source": "webinar", "lifecycle_stage": "mql",
        "owner": {"id": 3, "name": "Sam", "is_senior": False, "open_tasks": 4},
        "senior_reps": [{"id": 8, "name": "Kim", "is_senior": True, "open_tasks": 2}],
        "firmographics": {"industry": "software", "employee_count": 120, "country": "US"},
        "engagement": {"page_views_today": 2, "page_views_7d": 6, "page_views_30d": 14, "pricing_views_30d": 1,
                       "email_opens_30d": 3, "emails_sent_30d": 2, "web_recent": 4.18, "pricing_recent": 0.31,
                       "days_since_last_activity": 0.2, "total_actions": 31,
                       "recent_pages": ["/docs/setup", "/blog/forecasting", "/docs/api"], **(engagement or {})},
        "model": {"kind": "learned", "probability": score / 100, "score": score, "hot_min": 60, "warm_min": 19,
                  "holdout_auc": 0.81, "holdout_auc_low": 0.74, "coverage": 0.71, "trained_on": 220, "snapshot_id": 4,
                  "factors": [{"feature": "page_views_7d", "points": 9, "words": "viewed 6 pages in the last 7 days"},
                              {"feature": "industry", "points": 6, "words": "works in software"},
                              {"feature": "job_function", "points": -5, "words": "works in operations"}],
                  **(model or {})},
    }
    data.update(fields)
    return Context.model_validate(data)


def one_more_page_view(ctx: Context, *, score: int, page: str = "/docs/limits") -> Context:
    """What the builder gives after one more page view: every web count, sum, page list and point moves."""
    e = ctx.engagement
    engagement = e.model_copy(update={
        "page_views_today": e.page_views_today + 1, "page_views_7d": e.page_views_7d + 1,
        "page_views_30d": e.page_views_30d + 1, "web_recent": round(e.web_recent + 1, 4),
        "total_actions": e.total_actions + 1, "days_since_last_activity": 0.0,
        "recent_pages": [page, *e.recent_pages][:5]})
    factors = [f.model_copy(update={"points": f.points + 1, "words": "viewed 7 pages in the last 7 days"})
               if f.feature == "page_views_7d" else f for f in ctx.model.factors]
    model = ctx.model.model_copy(update={"score": score, "probability": score / 100, "factors": factors})
    return ctx.model_copy(update={"engagement": engagement, "model": model, "as_of": AS_OF + timedelta(seconds=8)})


def test_one_more_page_view_that_keeps_the_score_in_its_band_asks_no_model():
    before = lead(40)
    assert fingerprint("lead_scoring", one_more_page_view(before, score=43)) == fingerprint("lead_scoring", before)
    # A colleague's new task changes the reps' loads, not this lead's decision.
    busier = before.model_copy(update={"owner": before.owner.model_copy(update={"open_tasks": 9})})
    assert fingerprint("lead_scoring", busier) == fingerprint("lead_scoring", before)


@pytest.mark.parametrize("change", [
    pytest.param({"engagement": {"email_replies_30d": 1}}, id="a reply"),
    pytest.param({"engagement": {"forms_30d": 1}}, id="a form fill"),
    pytest.param({"engagement": {"emails_sent_30d": 3}}, id="a new email"),
    pytest.param({"engagement": {"demo_requests_30d": 1}}, id="a demo request"),
    pytest.param({"engagement": {"meetings_booked": 1}}, id="a meeting booked"),
    pytest.param({"engagement": {"calls_30d": 1}}, id="a call"),
    pytest.param({"engagement": {"downloads_30d": 1}}, id="a download"),
    pytest.param({"engagement": {"pricing_views_7d": 1}}, id="the pricing page read this week"),
    pytest.param({"engagement": {"days_since_last_activity": 31}}, id="quiet past the 30-day rule"),
    pytest.param({"engagement": {"days_since_last_activity": None, "total_actions": 0}}, id="nothing logged"),
    pytest.param({"lifecycle_stage": "sql"}, id="a stage change"),
    pytest.param({"title": "VP Operations", "seniority": "vp"}, id="a title change"),
    pytest.param({"owner": {"id": 5, "name": "Lee", "is_senior": True, "open_tasks": 4}}, id="a new owner"),
    pytest.param({"notes": "Asked for a quote on the phone"}, id="a note"),
    pytest.param({"firmographics": {"industry": "software", "employee_count": 900, "country": "US"}}, id="a larger account"),
    pytest.param({"model": {"score": 45, "probability": 0.45}}, id="a score-band crossing"),
    pytest.param({"model": {"snapshot_id": 5}}, id="a new model snapshot"),
    pytest.param({"model": {"kind": "prior"}}, id="the prior instead of the learned model"),
])
def test_whatever_can_change_the_decision_gives_a_new_fingerprint(change):
    base = lead(40)
    assert fingerprint("lead_scoring", lead(40, **change)) != fingerprint("lead_scoring", base)


def test_a_tier_cut_off_inside_a_band_still_counts():
    # 17 and 20 share the 15-29 band, but 19 is the warm cut-off this model learned.
    assert fingerprint("lead_scoring", lead(17)) != fingerprint("lead_scoring", lead(20))
    assert fingerprint("lead_scoring", lead(20)) == fingerprint("lead_scoring", lead(29))
    assert fp.score_band(20, 60, 19) == "warm 15-29" and fp.score_band(100, 60, 19) == "hot 90-100"


def test_without_a_model_estimate_every_count_still_matters():
    # The reasoner then scores the counts itself: nothing may be coarsened.
    bare = lead(40).model_copy(update={"model": None})
    more = bare.model_copy(update={"engagement": bare.engagement.model_copy(update={"page_views_7d": 7})})
    assert fingerprint("lead_scoring", bare) != fingerprint("lead_scoring", more)


def test_the_bounds_are_the_agents_own_figures():
    assert fp.SCORE_BAND_POINTS == lead_scoring.AGREE_POINTS  # a reused score still 'agrees' with a new one
    assert fp.INACTIVE_DAYS == lead_scoring.INACTIVE_DAYS


def test_on_a_real_book_a_page_view_changes_the_fingerprint_exactly_when_what_it_keeps_moves(store):
    """Contexts from the builder, before and after one page view for every open lead."""
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
        run_agent("lead_scoring", provider="offline", as_of=AS_OF)  # stores the model snapshot
    module = builder("lead_scoring")
    later = AS_OF + timedelta(minutes=1)

    def contexts(at: datetime) -> dict[int, Context]:
        with unit_of_work() as s:
            prepared = module.prepare(s, as_of=at)
        with unit_of_work(readonly=True) as s:
            return {c.contact_id: c for c in module.build(s, module.subjects(s, as_of=at), as_of=at, prepared=prepared)}

    before = contexts(later)
    with unit_of_work() as s:
        for cid in before:
            s.add(Activity(type="page_view", occurred_at=later, contact_id=cid, payload={"url": "/docs/setup"}, source="web"))
    after = contexts(later)

    def kept(c: Context) -> tuple:
        e = c.engagement
        quiet = None if e.days_since_last_activity is None else e.days_since_last_activity >= 30
        return fp.score_band(c.model.score, c.model.hot_min, c.model.warm_min), e.pricing_views_7d > 0, quiet
    same = [cid for cid in before if kept(before[cid]) == kept(after[cid])]
    moved = [cid for cid in before if cid not in same]
    assert same, "no lead kept its band: the test could not tell a coarse fingerprint from an exact one"
    assert all(before[cid].engagement.page_views_30d < after[cid].engagement.page_views_30d for cid in before)
    for cid in same:
        assert fingerprint("lead_scoring", before[cid]) == fingerprint("lead_scoring", after[cid]), cid
    for cid in moved:
        assert fingerprint("lead_scoring", before[cid]) != fingerprint("lead_scoring", after[cid]), cid
