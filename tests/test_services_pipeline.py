"""Pipeline health services: weighted value from the store's win rates, flags, time in stage, snoozing."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from auth_helpers import MANAGER
from crm_core import clock
from crm_core.auth import Actor
from crm_core.db import unit_of_work
from crm_core.errors import NotFound, UserError
from crm_core.importing.history import STALE_MARK, STALE_NOTE
from crm_core.models import AuditEntry, Deal, StageHistory, User
from crm_core.services import pipeline

ANN = Actor(user_id=None, name="Ann", role="manager", via="password")

NOW = datetime(2026, 11, 20, 12, 0)
PATH = ("Qualify", "Demo", "Proposal")


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


def _deal(session, name, *, stage, status="open", amount=1000, owner=None, product="Core", risk=None,
          entered_days_ago=5.0, path=None, currency="USD", snoozed_until=None):
    """A deal with a stage history walking `path` (default: up to its stage), one stay per stage."""
    deal = Deal(name=name, stage=stage, status=status, amount=Decimal(amount), owner_id=owner, product=product, risk=risk,
                currency=currency, stage_entered_at=NOW - timedelta(days=entered_days_ago), risk_snoozed_until=snoozed_until,
                risk_reason=f"{name} reason" if risk else None, risk_action=f"{name} action" if risk else None)
    session.add(deal)
    session.flush()
    steps = path if path is not None else PATH[: PATH.index(stage) + 1] if stage in PATH else (stage,)
    at = NOW - timedelta(days=100)
    previous = None
    for step in steps:
        session.add(StageHistory(deal_id=deal.id, from_stage=previous, to_stage=step, changed_at=at))
        previous, at = step, at + timedelta(days=10)
    return deal


def _closed(session, n_won, n_lost, *, through):
    for i in range(n_won):
        _deal(session, f"won {through} {i}", stage="Closed Won", status="won", path=(*through, "Closed Won"))
    for i in range(n_lost):
        _deal(session, f"lost {through} {i}", stage="Closed Lost", status="lost", path=(*through, "Closed Lost"))


def test_weighted_value_uses_each_stage_historical_win_rate(store):
    with unit_of_work() as s:
        _closed(s, 6, 6, through=("Qualify",))                      # closed straight from Qualify
        _closed(s, 8, 2, through=("Qualify", "Demo", "Proposal"))  # reached Proposal: mostly won
        _deal(s, "open demo", stage="Demo", amount=10_000)
        _deal(s, "open proposal", stage="Proposal", amount=20_000)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    by_stage = {st.stage: st for st in board.stages}
    # Demo and Proposal were passed by the 10 late deals (8 won); Qualify by all 22 (14 won).
    assert by_stage["Demo"].win_rate == pytest.approx(8 / 10)
    assert by_stage["Proposal"].weighted == pytest.approx(20_000 * 0.8)
    assert board.weighted == pytest.approx(10_000 * 0.8 + 20_000 * 0.8)
    assert board.overall_win_rate == pytest.approx(14 / 22)
    assert [st.stage for st in board.stages] == ["Demo", "Proposal"]


def test_deals_a_history_import_closed_as_stale_weigh_no_stage(store):
    """Lost by the import's one-year rule, not by an event: the pipeline learner skips them, so do the win rates."""
    with unit_of_work() as s:
        _closed(s, 8, 2, through=("Qualify", "Demo"))
        for i in range(30):  # what `--as-history` writes for an open deal untouched for a year
            stale = _deal(s, f"stale {i}", stage="Demo", status="lost", path=("Qualify", "Demo"))
            stale.attributes = {"region": "EMEA", STALE_MARK: STALE_NOTE}
        lost = _deal(s, "lost with attributes", stage="Demo", status="lost", path=("Qualify", "Demo"))
        lost.attributes = {"region": "EMEA"}  # a real loss that carries other attributes still counts
        _deal(s, "open demo", stage="Demo", amount=10_000)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    demo = {st.stage: st for st in board.stages}["Demo"]
    assert demo.win_rate == pytest.approx(8 / 11) and demo.win_rate_basis == "8 of 11 closed deals through Demo were won"
    assert board.overall_win_rate == pytest.approx(8 / 11) and board.closed_deals == 11
    assert board.weighted == pytest.approx(10_000 * 8 / 11)


def test_stage_with_too_few_closed_deals_falls_back_to_the_book_rate_and_says_so(store):
    with unit_of_work() as s:
        _closed(s, 3, 1, through=("Qualify",))
        _deal(s, "open", stage="Qualify", amount=1000)
    with unit_of_work(readonly=True) as s:
        stage = pipeline.pipeline_board(s, actor=MANAGER).stages[0]
    assert stage.win_rate == pytest.approx(0.75)
    assert "book-wide" in stage.win_rate_basis and "fewer than" in stage.win_rate_basis


def test_no_closed_deals_leaves_weighted_unknown(store):
    with unit_of_work() as s:
        _deal(s, "only", stage="Qualify", amount=1000)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    assert board.stages[0].win_rate is None and board.stages[0].weighted is None
    assert board.weighted == 0 and board.amount == 1000


def test_stages_follow_the_order_deals_move_through_them(store):
    with unit_of_work() as s:
        _deal(s, "c", stage="Proposal")
        _deal(s, "a", stage="Qualify")
        _deal(s, "b", stage="Demo")
        _deal(s, "no history", stage="Aardvark", path=())
    with unit_of_work(readonly=True) as s:
        assert [st.stage for st in pipeline.pipeline_board(s, actor=MANAGER).stages] == ["Qualify", "Demo", "Proposal", "Aardvark"]


def test_flags_are_counted_per_stage_and_snoozed_flags_leave_the_red_list(store):
    with unit_of_work() as s:
        _deal(s, "red big", stage="Demo", risk="red", amount=9000)
        _deal(s, "red small", stage="Demo", risk="red", amount=100)
        _deal(s, "red snoozed", stage="Demo", risk="red", amount=50_000, snoozed_until=NOW.date() + timedelta(days=3))
        _deal(s, "red snooze over", stage="Demo", risk="red", amount=10, snoozed_until=NOW.date())
        _deal(s, "amber", stage="Demo", risk="amber")
        _deal(s, "none", stage="Demo")
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    demo = board.stages[0]
    assert (demo.red, demo.amber, demo.green, demo.snoozed, demo.unassessed) == (3, 1, 0, 1, 1)
    assert board.flags == {"red": 3, "amber": 1, "green": 0, "unassessed": 1, "snoozed": 1}
    assert [c.name for c in board.red_list] == ["red big", "red small", "red snooze over"]
    assert board.red_total == 3
    assert board.red_list[0].risk_reason == "red big reason" and board.red_list[0].risk_action == "red big action"


def test_board_filters_by_owner(store):
    with unit_of_work() as s:
        ann, bob = User(name="Ann"), User(name="Bob")
        s.add_all([ann, bob])
        s.flush()
        _deal(s, "ann's", stage="Demo", owner=ann.id, amount=100, risk="red")
        _deal(s, "bob's", stage="Demo", owner=bob.id, amount=200, risk="red")
        ann_id = ann.id
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, ann_id, actor=MANAGER)
    assert board.open_deals == 1 and board.amount == 100 and [c.name for c in board.red_list] == ["ann's"]
    assert board.red_list[0].owner == "Ann"


def test_totals_are_converted_to_the_reporting_currency_and_originals_kept(store):
    with unit_of_work() as s:
        _closed(s, 8, 2, through=("Qualify", "Demo"))
        _deal(s, "usd 1", stage="Demo", amount=100)
        _deal(s, "usd 2", stage="Demo", amount=100)
        _deal(s, "eur", stage="Demo", amount=5000, currency="EUR")
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    # The built-in ECB rates of 2024-06-28: 1 EUR = 1.0705 USD.
    assert board.currency == "USD" and board.amount == pytest.approx(200 + 5000 * 1.0705)
    assert board.other_currency_deals == 1 and board.open_deals == 3 and board.unconverted_deals == 0
    assert board.weighted == pytest.approx((200 + 5000 * 1.0705) * 0.8)
    assert board.rates_as_of == date(2024, 6, 28) and board.rates_built_in
    assert board.stages[0].amounts == {"USD": 200, "EUR": 5000}
    assert board.stages[0].weighted_amounts == pytest.approx({"USD": 160, "EUR": 4000})
    assert [(t.currency, t.open_deals, t.amount, t.weighted) for t in board.by_currency] == [
        ("USD", 2, 200, pytest.approx(160)), ("EUR", 1, 5000, pytest.approx(4000))]
    assert [t.converted for t in board.by_currency] == pytest.approx([200, 5352.5])


def test_time_in_stage_is_compared_with_similar_deals_then_the_whole_stage(store):
    with unit_of_work() as s:
        # Completed stays in Demo: five "Core" deals of 10 days, one "Edge" deal of 10 days.
        for i in range(5):
            _deal(s, f"done {i}", stage="Proposal", product="Core")
        _deal(s, "edge done", stage="Proposal", product="Edge")
        _deal(s, "core now", stage="Demo", product="Core", entered_days_ago=30)
        _deal(s, "edge now", stage="Demo", product="Edge", entered_days_ago=4)
    with unit_of_work(readonly=True) as s:
        rows = {c.name: c for c in pipeline.stage_deals(s, actor=MANAGER, stage="Demo").rows}
    core, edge = rows["core now"], rows["edge now"]
    assert core.days_in_stage == pytest.approx(30) and core.similar_avg_days == pytest.approx(10)
    assert core.similar_basis.startswith("Core deals in Demo (5 stays)")
    # One Edge stay is too few to compare with: the whole stage is the yardstick.
    assert edge.similar_basis.startswith("all deals in Demo (6 stays)")


def test_stage_deals_put_the_worst_flag_first_and_page(store):
    with unit_of_work() as s:
        _deal(s, "green", stage="Demo", risk="green", amount=999_999)
        _deal(s, "amber", stage="Demo", risk="amber", amount=10)
        _deal(s, "red", stage="Demo", risk="red", amount=5)
        _deal(s, "other stage", stage="Qualify", risk="red")
    with unit_of_work(readonly=True) as s:
        first = pipeline.stage_deals(s, actor=MANAGER, stage="Demo", limit=2)
        second = pipeline.stage_deals(s, actor=MANAGER, stage="Demo", limit=2, offset=2)
        reds = pipeline.stage_deals(s, actor=MANAGER, stage="Demo", risk="red")
    assert first.total == 3 and [c.name for c in first.rows] == ["red", "amber"]
    assert [c.name for c in second.rows] == ["green"]
    assert [c.name for c in reds.rows] == ["red"]


def test_snoozing_hides_the_flag_until_the_resume_date_and_is_audited(store):
    with unit_of_work() as s:
        deal_id = _deal(s, "late", stage="Demo", risk="red").id
    resume = NOW.date() + timedelta(days=7)
    with unit_of_work() as s:
        card = pipeline.snooze_deal(s, deal_id, until=resume, reason="buyer on holiday", actor=ANN)
    assert card.risk == "snoozed" and card.flag == "red" and card.snoozed_by == "Ann"
    with unit_of_work(readonly=True) as s:
        assert pipeline.pipeline_board(s, actor=MANAGER).red_total == 0
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "deal.risk_snoozed")).one()
    assert entry.actor == "Ann (password)" and entry.details["via"] == "password" and entry.subject_id == deal_id and entry.details["reason"] == "buyer on holiday"
    with clock.frozen_at(datetime.combine(resume, datetime.min.time())), unit_of_work(readonly=True) as s:
        # On the resume date the flag is back.
        assert pipeline.pipeline_board(s, actor=MANAGER).red_total == 1


def test_resume_ends_a_snooze_now(store):
    with unit_of_work() as s:
        deal_id = _deal(s, "late", stage="Demo", risk="amber", snoozed_until=NOW.date() + timedelta(days=3)).id
    with unit_of_work() as s:
        card = pipeline.resume_deal_flag(s, deal_id, actor=ANN)
    assert card.risk == "amber" and card.snoozed_until is None
    with unit_of_work() as s, pytest.raises(UserError, match="not snoozed"):
        pipeline.resume_deal_flag(s, deal_id, actor=ANN)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"until": NOW.date(), "reason": "x", "actor": ANN}, "must be after today"),
    ({"until": NOW.date() + timedelta(days=400), "reason": "x", "actor": ANN}, "more than 180 days"),
    ({"until": NOW.date() + timedelta(days=3), "reason": "  ", "actor": ANN}, "give a reason"),
])
def test_snooze_refuses_bad_input_with_a_clear_message(store, kwargs, message):
    with unit_of_work() as s:
        deal_id = _deal(s, "late", stage="Demo", risk="red").id
    with unit_of_work() as s, pytest.raises(UserError, match=message):
        pipeline.snooze_deal(s, deal_id, **kwargs)


def test_snooze_refuses_green_unflagged_closed_and_missing_deals(store):
    with unit_of_work() as s:
        green = _deal(s, "fine", stage="Demo", risk="green").id
        closed = _deal(s, "won", stage="Closed Won", status="won", risk="red", path=("Closed Won",)).id
    until = NOW.date() + timedelta(days=2)
    with unit_of_work() as s, pytest.raises(UserError, match="only amber or red"):
        pipeline.snooze_deal(s, green, until=until, reason="x", actor=ANN)
    with unit_of_work() as s, pytest.raises(UserError, match="it is won"):
        pipeline.snooze_deal(s, closed, until=until, reason="x", actor=ANN)
    with unit_of_work() as s, pytest.raises(NotFound, match="deal 999999 not found"):
        pipeline.snooze_deal(s, 999_999, until=until, reason="x", actor=ANN)


def test_snooze_until_is_a_date(store):
    with unit_of_work() as s:
        deal_id = _deal(s, "late", stage="Demo", risk="red").id
    with unit_of_work() as s:
        pipeline.snooze_deal(s, deal_id, until=date(2026, 11, 25), reason="call booked", actor=ANN)
    with unit_of_work(readonly=True) as s:
        assert s.get(Deal, deal_id).risk_snoozed_until == date(2026, 11, 25)
