"""Who reviews a red deal: the manager for a deal that matters for this book (largest quarter of open
deals by amount, in the reporting currency) or one red for two weeks; the owner for the rest."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from agents.evals import EVALS_DIR
from agents.pipeline import AGENT, Context
from agents.pipeline.routing import RED_DAYS_FOR_MANAGER, DealSize, review_route, top_quarter_from
from crm_core import clock
from crm_core.contexts import pipeline as builder
from crm_core.contexts.pipeline_routing import red_history
from crm_core.db import unit_of_work
from crm_core.models import Deal, Decision, ReportingCurrency, StageHistory, User
from tests.test_pipeline_store import write_quiet_book

NOW = datetime(2025, 6, 10, 9, 0)


def make(**kw) -> Context:
    """The golden red deal (42,000 USD, owner Sam Rep, manager Maria Manager), changed by `kw`."""
    case = json.loads((EVALS_DIR / "pipeline" / "a_red_deal_is_flagged_escalated_to_the_manager_and_gets_a_task.json").read_text())
    return Context.model_validate({**case["context"], **kw})


def size(amount: float | None, line: float | None, n: int = 40, currency: str = "USD") -> dict:
    return {"currency": currency, "amount": amount, "top_quarter_from": line, "open_deals_with_amount": n}


def props(ctx: Context):
    return AGENT.proposals(ctx, AGENT.offline_decide(ctx))


def test_the_top_quarter_is_the_largest_quarter_of_the_amounts_at_any_size():
    assert top_quarter_from([]) is None and top_quarter_from([0, 0]) is None
    assert top_quarter_from([5_000]) == 5_000                        # one deal: it is the pipeline
    assert top_quarter_from([10, 20, 30, 40]) == 40                  # the largest 1 of 4
    assert top_quarter_from([10, 20, 30, 40, 50]) == 40              # the largest 2 of 5
    assert top_quarter_from([7, 7, 7, 7, 7, 7, 7, 7]) == 7           # ties: every one of them is in
    assert top_quarter_from(list(range(1, 101))) == 76               # the largest 25 of 100


def test_the_same_deal_matters_in_one_book_and_not_in_another():
    in_small_book = props(make(size=size(42_000, 40_000)))
    in_large_book = props(make(size=size(42_000, 90_000)))
    escalation = [p for p in in_small_book if p.escalation]
    assert len(escalation) == 1 and escalation[0].actions[0].params["owner_id"] == 1  # Maria Manager
    assert escalation[0].reasoning.startswith("Sent to Maria Manager because at 42,000 USD it is among the largest "
                                              "quarter of this book's 40 open deals by amount (40,000 USD and up).")
    assert escalation[0].decision["review_by"] == "manager"
    assert not [p for p in in_large_book if p.escalation]
    flag, review = in_large_book
    [task] = review.actions
    assert task.type == "create_task" and task.params["owner_id"] == 3 and task.params["title"].startswith("Review red deal")
    why = ("Left with Sam Rep rather than the manager because at 42,000 USD it is below the largest quarter of this "
           f"book's 40 open deals by amount, which starts at 90,000 USD; it goes to the manager if it stays red for "
           f"{RED_DAYS_FOR_MANAGER} days.")
    assert review.reasoning.startswith(why) and task.params["description"].startswith(why)
    assert review.decision["review_by"] == "owner" and review.escalation is None
    assert why not in flag.actions[0].params["reason"]  # the flag's own reason on the board stays about the deal


def test_a_deal_in_another_currency_is_weighed_in_the_reporting_currency():
    ctx = make(amount=150_000.0, currency="EUR", size=size(160_575.0, 90_000))
    [escalation] = [p for p in props(ctx) if p.escalation]
    assert "at 150,000 EUR (about 160,575 USD) it is among the largest quarter" in escalation.reasoning


def test_a_deal_whose_size_cannot_be_weighed_stays_with_its_owner_and_says_why():
    cases = {
        "no amount is recorded on it": make(amount=None, size=size(None, 40_000)),
        "its amount in XAU has no exchange rate to USD": make(currency="XAU", size=size(None, 40_000)),
        "this book records no amounts on open deals": make(amount=None, size=size(None, None, n=0)),
        "its size against the rest of the open pipeline is not known": make(size=None),
    }
    for words, ctx in cases.items():
        proposals = props(ctx)
        assert not [p for p in proposals if p.escalation], words
        assert words in proposals[-1].reasoning and proposals[-1].decision["review_by"] == "owner", words


def test_a_deal_red_for_two_weeks_reaches_the_manager_once_whatever_its_size():
    red = {"risk": "red", "action": "older", "updated_at": NOW - timedelta(days=3)}
    small = size(5_000, 90_000)
    young = make(current=red, size=small, red_since=NOW - timedelta(days=RED_DAYS_FOR_MANAGER - 1))
    assert not [p for p in props(young) if p.escalation]
    old = make(current=red, size=small, red_since=NOW - timedelta(days=RED_DAYS_FOR_MANAGER + 2))
    [escalation] = [p for p in props(old) if p.escalation]
    assert escalation.reasoning.startswith(f"Sent to Maria Manager because it has been red for {RED_DAYS_FOR_MANAGER + 2} "
                                           "days (since 25 May)")
    told = old.model_copy(update={"manager_review_at": NOW - timedelta(days=1)})
    assert not [p for p in props(told) if p.escalation]
    # A material deal the manager already has in this run of red flags is not sent again either.
    pending = make(size=size(42_000, 40_000), red_since=NOW - timedelta(days=1), manager_review_at=NOW - timedelta(days=1))
    assert review_route(pending, "red") is None
    assert review_route(make(size=size(42_000, 40_000)), "amber") is None


# -- on a store ------------------------------------------------------------------------------------
def _people(s) -> tuple[User, User]:
    boss = User(name="Maria", role="manager")
    s.add(boss)
    s.flush()
    rep = User(name="Sam", role="rep", manager_id=boss.id)
    s.add(rep)
    s.flush()
    return boss, rep


def _open_deal(s, rep: User, name: str, amount: float | None, currency: str = "USD") -> int:
    d = Deal(name=name, stage="Proposal", status="open", opened_at=NOW - timedelta(days=20), owner_id=rep.id,
             amount=amount, currency=currency, created_at=NOW - timedelta(days=20))
    s.add(d)
    s.flush()
    s.add(StageHistory(deal_id=d.id, from_stage=None, to_stage="Proposal", changed_at=NOW - timedelta(days=20)))
    return d.id


def _sizes(ids: dict[str, int]) -> dict[str, DealSize]:
    with unit_of_work(readonly=True) as s:
        by_id = {c.deal_id: c.size for c in builder.build(s, list(ids.values()), as_of=NOW)}
    return {name: by_id[i] for name, i in ids.items()}


def test_the_builder_ranks_amounts_converted_into_the_reporting_currency(store):
    with unit_of_work() as s:
        _, rep = _people(s)
        ids = {f"usd{i}": _open_deal(s, rep, f"USD deal {i}", 10_000 * (i + 1)) for i in range(6)}  # 10k .. 60k USD
        ids["eur"] = _open_deal(s, rep, "Euro deal", 100_000, "EUR")     # about 107,050 USD
        ids["gbp"] = _open_deal(s, rep, "Pound deal", 20_000, "GBP")     # about 25,300 USD
        ids["gold"] = _open_deal(s, rep, "No rate", 900_000, "XAU")      # no rate: never guessed
        ids["blank"] = _open_deal(s, rep, "No amount", None)
        s.add(ReportingCurrency(id=1, currency="USD"))
    sizes = _sizes(ids)
    eur = sizes["eur"]
    assert eur.currency == "USD" and round(eur.amount) == 107_050 and eur.open_deals_with_amount == 8
    assert eur.top_quarter_from == 60_000  # the largest 2 of 8: 107,050 and 60,000
    assert sizes["gold"].amount is None and sizes["blank"].amount is None
    assert round(sizes["gbp"].amount) == round(20_000 / 0.84638 * 1.0705)
    material = {n for n, z in sizes.items() if z.amount is not None and z.amount >= z.top_quarter_from}
    assert material == {"eur", "usd5"}
    # Reported in euros, the same deals are the largest quarter: the line moves with the currency, not the choice.
    with unit_of_work() as s:
        s.get(ReportingCurrency, 1).currency = "EUR"
    in_euros = _sizes(ids)
    assert in_euros["eur"].amount == 100_000 and round(in_euros["eur"].top_quarter_from) == round(60_000 / 1.0705)
    assert {n for n, z in in_euros.items() if z.amount is not None and z.amount >= z.top_quarter_from} == material


def test_a_book_that_records_no_amounts_on_open_deals_gives_sizes_without_amounts(store):
    with unit_of_work() as s:
        _, rep = _people(s)
        ids = {f"d{i}": _open_deal(s, rep, f"Deal {i}", None) for i in range(4)}
    sizes = _sizes(ids)
    assert all(z.amount is None and z.top_quarter_from is None and z.open_deals_with_amount == 0 for z in sizes.values())


def test_red_history_is_the_current_run_of_red_and_the_last_review_sent_to_the_manager(store):
    with unit_of_work() as s:
        _, rep = _people(s)
        deal = _open_deal(s, rep, "Deal", 10_000)
        other = _open_deal(s, rep, "Other", 10_000)

        def decided(deal_id, days_ago, risk, escalation=None, status="executed"):
            s.add(Decision(agent="pipeline", subject_type="deal", subject_id=deal_id, status=status,
                           decision={"risk": risk, "evidence": ["long"] * 5}, escalation=escalation,
                           created_at=NOW - timedelta(days=days_ago)))

        decided(deal, 30, "red", escalation="red deal for Maria")
        decided(deal, 20, "amber")
        decided(deal, 10, "red")
        decided(deal, 9, "red", escalation="red deal for Maria", status="failed")  # failed: never reached anyone
        decided(deal, 2, "red")
        decided(other, 5, "red")
        decided(other, 1, "green")
        decided(deal, -1, "amber")  # after as_of: not read
    with unit_of_work(readonly=True) as s:
        history = red_history(s, [deal, other], NOW)
    assert history[deal] == (NOW - timedelta(days=10), NOW - timedelta(days=30))
    assert history[other] == (None, None)


def _book_with_one_small_quiet_deal() -> dict[str, int]:
    """The quiet book (closed deals: lost ones went quiet; a quiet open deal of 20,000 USD, red, and a
    busy one), plus eight open deals of 50k-120k USD: the quiet deal is small for this book."""
    ids = write_quiet_book()
    with unit_of_work() as s:
        for i in range(8):
            opened = NOW - timedelta(days=30)
            d = Deal(name=f"Large {i}", stage="Proposal", status="open", opened_at=opened, owner_id=ids["rep"],
                     product="Growth", amount=50_000 + 10_000 * i, created_at=opened)
            s.add(d)
            s.flush()
            s.add(StageHistory(deal_id=d.id, from_stage=None, to_stage="Proposal", changed_at=opened))
    return ids


def _about(deal_id: int, since: datetime) -> list[Decision]:
    with unit_of_work(readonly=True) as s:
        return list(s.scalars(select(Decision).where(Decision.agent == "pipeline", Decision.subject_id == deal_id,
                                                     Decision.created_at >= since)))


def test_across_runs_a_small_red_deal_is_its_owners_first_and_the_managers_after_two_weeks(store):
    from orchestration.runner import run_agent

    ids = _book_with_one_small_quiet_deal()
    with clock.frozen_at(NOW):
        run_agent("pipeline", provider="offline")
    first = _about(ids["quiet"], NOW)
    assert any(d.decision.get("risk") == "red" for d in first)
    assert not [d for d in first if d.escalation]
    [review] = [d for d in first if d.decision.get("review_by") == "owner"]
    assert review.actions[0]["params"]["owner_id"] == ids["rep"]
    assert review.reasoning.startswith("Left with Sam rather than the manager because at 20,000 USD it is below the largest quarter")

    later = NOW + timedelta(days=RED_DAYS_FOR_MANAGER + 1)
    with clock.frozen_at(later):
        run_agent("pipeline", provider="offline")
    [escalation] = [d for d in _about(ids["quiet"], later) if d.escalation]
    assert escalation.status == "queued" and escalation.actions[0]["params"]["owner_id"] == ids["boss"]
    assert escalation.reasoning.startswith(f"Sent to Maria because it has been red for {RED_DAYS_FOR_MANAGER + 1} days")

    next_day = later + timedelta(days=1)
    with clock.frozen_at(next_day):
        run_agent("pipeline", provider="offline")
    again = _about(ids["quiet"], next_day)
    assert again and not [d for d in again if d.escalation]  # sent once for this run of red flags
