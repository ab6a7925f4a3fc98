"""Patterns across the whole pipeline: a rep whose deals stall in one stage, a stage holding most of
the stuck value; one escalation per pattern for the manager, never repeated within a week."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from auth_helpers import MANAGER
from agents.llm import reason
from agents.pipeline import AGENT, Decision, OpenDeal, Person, Review, binomial_tail, find_patterns
from crm_core.contexts import pipeline as builder
from crm_core.db import unit_of_work
from crm_core.models import Deal, Decision as DecisionRow, StageHistory, Task, User
from tests.fakes.anthropic_server import fake_anthropic  # noqa: F401

NOW = datetime(2025, 6, 10, 9, 0)
SAM, ALEX, KIM = Person(id=3, name="Sam"), Person(id=4, name="Alex"), Person(id=5, name="Kim")
MARIA = Person(id=1, name="Maria")


def _deals(rows: list[tuple[Person, str, float, float | None]]) -> list[OpenDeal]:
    return [OpenDeal(deal_id=i + 1, owner=o, manager=MARIA, stage=st, time_in_stage_ratio=r, amount=a)
            for i, (o, st, r, a) in enumerate(rows)]


def _stalling_book(sam_stalled: int = 4, sam_moving: int = 0, team_stalled: int = 1) -> Review:
    rows = [(SAM, "Demo", 3.5, 10_000.0)] * sam_stalled + [(SAM, "Demo", 0.6, 10_000.0)] * sam_moving
    rows += [(ALEX, "Demo", 2.5, 10_000.0)] * team_stalled + [(ALEX, "Demo", 0.8, 10_000.0)] * (4 - team_stalled)
    rows += [(KIM, "Demo", 0.5, 10_000.0)] * 4 + [(SAM, "Proposal", 0.9, 10_000.0)] * 3
    return Review(as_of=NOW, deals=_deals(rows), managers=[MARIA])


def test_a_rep_whose_deals_all_stall_in_one_stage_is_a_pattern_with_its_figures_in_words():
    [p] = find_patterns(_stalling_book())
    assert p.kind == "rep_stalls_in_stage" and p.key == "rep_stalls_in_stage:3:Demo" and p.reviewer == MARIA
    assert p.figures["rep_stalled"] == 4 and p.figures["rep_deals"] == 4 and p.figures["team_stalled"] == 1
    assert p.words.startswith("Sam: 4 of 4 open deals in Demo (100%) have sat there at least 2x as long as similar deals")
    assert "1 of 8 (12%) for the rest of the team" in p.words


@pytest.mark.parametrize("book", [
    _stalling_book(sam_stalled=2),                             # too few to be more than chance
    _stalling_book(sam_stalled=3, sam_moving=4),               # under half of the rep's deals
    Review(as_of=NOW, deals=_deals([(SAM, "Demo", 3.0, None)] * 4 + [(SAM, "Demo", 0.5, None)]    # the whole team
                                   + [(ALEX, "Demo", 2.2, None)] * 3 + [(ALEX, "Demo", 0.7, None)]   # stalls there
                                   + [(KIM, "Demo", 2.6, None)] * 3 + [(KIM, "Demo", 0.9, None)])),  # alike
])
def test_no_pattern_below_the_minimum_counts_or_at_the_teams_rate(book):
    assert find_patterns(book) == []


def test_a_stage_holding_most_of_the_stuck_value_is_a_pattern():
    rows = [(SAM, "Negotiation", 2.4, 200_000.0), (ALEX, "Negotiation", 3.0, 150_000.0), (KIM, "Negotiation", 2.1, 90_000.0),
            (KIM, "Demo", 0.5, 50_000.0), (ALEX, "Demo", 1.2, 60_000.0), (SAM, "Negotiation", 0.4, 40_000.0)]
    [p] = find_patterns(Review(as_of=NOW, deals=_deals(rows), managers=[MARIA], currency="EUR"))
    assert p.key == "value_stuck_in_stage:Negotiation" and p.figures["stuck_deals"] == 3
    assert p.words.startswith("75% of the open pipeline's value (440,000 of 590,000 EUR) is in 3 deals that have sat in Negotiation")


def test_each_pattern_is_one_escalation_for_the_manager_and_a_reported_one_is_not_repeated():
    review = _stalling_book()
    decision = AGENT.offline_decide(review)
    assert decision.kind == "review" and decision.escalate == ["rep_stalls_in_stage:3:Demo"]
    [p] = AGENT.proposals(review, decision)
    assert p.subject_type == "pipeline" and p.subject_id is None and p.escalation.startswith("pipeline pattern for Maria: Sam: 4 of 4")
    [task] = p.actions
    assert task.type == "create_task" and task.params["owner_id"] == MARIA.id and "deal_id" not in task.params
    assert task.params["title"] == "Pipeline pattern: Sam's deals stall in Demo"
    assert p.decision["pattern"] == "rep_stalls_in_stage:3:Demo"
    reported = review.model_copy(update={"recent_patterns": ["rep_stalls_in_stage:3:Demo"]})
    again = AGENT.offline_decide(reported)
    assert again.escalate == [] and "Already reported" in again.reasoning
    # Even a reasoner that insists gets nothing through: one proposal, no action.
    [quiet] = AGENT.proposals(reported, decision)
    assert quiet.actions == () and quiet.escalation is None and quiet.decision["already_reported"] == ["rep_stalls_in_stage:3:Demo"]


def test_a_review_decision_cannot_invent_a_pattern_and_a_deal_decision_needs_its_flag():
    review = _stalling_book()
    invented = Decision(kind="review", escalate=["rep_stalls_in_stage:99:Won", "x"], confidence=0.9, reasoning="r")
    [only] = AGENT.proposals(review, invented)
    assert only.actions == ()
    with pytest.raises(ValidationError):
        Decision(kind="deal", confidence=0.5, reasoning="no flag")
    with pytest.raises(ValidationError):
        Decision(risk="red", loss_probability=80, recommended_action="agree_next_step", escalate=["k"], confidence=0.5, reasoning="r")
    env = reason(AGENT, review, provider="offline")
    assert not env.failed and [p.subject_type for p in env.proposals] == ["pipeline"]


def test_binomial_tail():
    assert binomial_tail(0, 5, 0.3) == pytest.approx(1.0)
    assert binomial_tail(4, 4, 0.5) == pytest.approx(1 / 16)


# -- on both backends: a book where one rep's deals stall in Demo ----------------------------------
def _write_stalling_book() -> dict[str, int]:
    with unit_of_work() as s:
        boss = User(name="Maria", role="manager")
        s.add(boss)
        s.flush()
        reps = {}
        for name in ("Sam", "Alex", "Kim"):
            u = User(name=name, role="rep", manager_id=boss.id)
            s.add(u)
            s.flush()
            reps[name] = u.id

        def deal(name, owner, entered_demo, closed=None, status="open", demo_days=None):
            opened = entered_demo - timedelta(days=5)
            d = Deal(name=name, stage="Demo" if status == "open" else "Won", status=status, opened_at=opened, closed_at=closed,
                     owner_id=reps[owner], product="Growth", amount=10_000, created_at=opened)
            s.add(d)
            s.flush()
            s.add(StageHistory(deal_id=d.id, from_stage=None, to_stage="Qualify", changed_at=opened))
            s.add(StageHistory(deal_id=d.id, from_stage="Qualify", to_stage="Demo", changed_at=entered_demo))
            if demo_days is not None:
                s.add(StageHistory(deal_id=d.id, from_stage="Demo", to_stage="Won", changed_at=entered_demo + timedelta(days=demo_days)))
            return d.id

        # Closed deals: a Demo stay of about 10 days is the norm.
        for i in range(8):
            entered = NOW - timedelta(days=120 - 5 * i)
            deal(f"won {i}", ("Sam", "Alex", "Kim")[i % 3], entered, closed=entered + timedelta(days=10), status="won", demo_days=10)
        stalled = [deal(f"Sam stuck {i}", "Sam", NOW - timedelta(days=40 + i)) for i in range(4)]
        for i in range(3):
            deal(f"Alex moving {i}", "Alex", NOW - timedelta(days=3 + i))
            deal(f"Kim moving {i}", "Kim", NOW - timedelta(days=4 + i))
        return {"boss": boss.id, "sam": reps["Sam"], "stalled": stalled}


def _pattern_decisions() -> list[DecisionRow]:
    with unit_of_work(readonly=True) as s:
        return list(s.scalars(select(DecisionRow).where(DecisionRow.agent == "pipeline", DecisionRow.subject_type == "pipeline")
                              .order_by(DecisionRow.id)))


def test_one_reps_stall_in_demo_is_escalated_once_and_not_again_within_a_week(store):
    from orchestration.runner import run_agent
    from crm_core import clock

    ids = _write_stalling_book()
    with clock.frozen_at(NOW):
        first = run_agent("pipeline", provider="offline")
    assert first.failed == 0
    reviews = _pattern_decisions()
    escalations = [d for d in reviews if d.escalation]
    assert len(reviews) == 1 and len(escalations) == 1
    [esc] = escalations
    assert esc.status == "queued" and esc.subject_id is None and esc.decision["pattern"] == f"rep_stalls_in_stage:{ids['sam']}:Demo"
    assert "Sam: 4 of 4 open deals in Demo (100%)" in esc.escalation and "0 of 6 (0%) for the rest of the team" in esc.escalation
    assert esc.actions[0]["type"] == "create_task" and esc.actions[0]["params"]["owner_id"] == ids["boss"]

    with clock.frozen_at(NOW + timedelta(days=2)):
        second = run_agent("pipeline", provider="offline")
    assert second.failed == 0 and any(o.subject_key.startswith("pipeline:batch") for o in second.outcomes)  # reviewed again
    after = _pattern_decisions()
    assert len(after) == 2 and [d.id for d in after if d.escalation] == [esc.id]
    assert after[-1].actions == [] and after[-1].decision["already_reported"] == [esc.decision["pattern"]]

    # Approved, the task lands with the manager.
    from crm_core import oversight

    with unit_of_work() as s:
        oversight.approve(s, esc.id, actor=MANAGER)
    with unit_of_work(readonly=True) as s:
        [task] = s.scalars(select(Task).where(Task.title.like("Pipeline pattern%"))).all()
        assert task.owner_id == ids["boss"] and task.deal_id is None


def test_the_review_runs_once_per_freshness_window_and_a_pattern_is_reported_again_after_a_week(sqlite_store):
    from orchestration.runner import run_agent
    from crm_core import clock
    from crm_core.models import Decision as Row

    _write_stalling_book()
    with clock.frozen_at(NOW):
        run_agent("pipeline", provider="offline")
    with unit_of_work(readonly=True) as s:
        assert builder.REVIEW_ID not in builder.subjects(s, as_of=NOW + timedelta(hours=1))
        assert builder.REVIEW_ID in builder.subjects(s, as_of=NOW + timedelta(hours=21))
    with unit_of_work() as s:  # the manager rejected it: no longer pending
        for row in s.scalars(select(Row).where(Row.subject_type == "pipeline")):
            row.status = "rejected"
    with unit_of_work(readonly=True) as s:
        assert builder.recent_patterns(s, NOW + timedelta(days=6)) != []
        assert builder.recent_patterns(s, NOW + timedelta(days=8)) == []


def test_a_model_reviewing_the_pipeline_may_drop_a_pattern_but_never_add_one(fake_anthropic):  # noqa: F811
    from crm_core.settings import Settings
    from tests.fakes.anthropic_server import reply_json

    settings = Settings(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=fake_anthropic.url, llm_timeout_s=5.0,
                        llm_max_retries=0, ollama_host=None, llm_provider=None)
    fake_anthropic.script(reply_json({"kind": "review", "escalate": ["rep_stalls_in_stage:3:Demo", "rep_stalls_in_stage:4:Demo"],
                                      "confidence": 0.9, "reasoning": "Sam's demos stall."}))
    env = reason(AGENT, _stalling_book(), provider="anthropic", settings=settings)
    assert not env.failed and env.provider == "anthropic"
    [p] = env.proposals
    assert p.decision["pattern"] == "rep_stalls_in_stage:3:Demo" and p.confidence_factors["offline_agrees"] is False
    [req] = fake_anthropic.message_requests
    assert "rep_stalls_in_stage:3:Demo" in str(req.body) and "<data-" in str(req.body)
