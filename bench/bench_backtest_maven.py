"""Pipeline-flag back-test on the Maven CRM sales opportunities (a B2B book nobody here wrote).

    .venv/bin/python bench/bench_backtest_maven.py [--json]

What it does, in a fresh SQLite store in a temporary directory:
  1. imports ../shared/data/maven_crm with the mappings kept in the repo, as a user would
     (`python -m crm_core import accounts ... --mapping mappings/maven_accounts.json`, then deals
     with mappings/maven_pipeline.json): 8,800 opportunities, engage_date -> opened_at, close_date
     -> closed_at of the won and lost ones;
  2. chooses the hyperparameters (regularisation C, the training horizon quantile) on a
     VALIDATION series of as-of dates (2017-06-01 to 2017-08-10, every 14 days), by the lift of
     red over green there;
  3. reports the back-test on a separate, later TEST series (2017-08-24 to 2017-11-30, every 14
     days) with the chosen settings: `python -m orchestration backtest pipeline --from 2017-08-24
     --to 2017-11-30 --every-days 14 --regularisation-c C --horizon-quantile Q`. The two series
     share no date; weights at every date are learned only from deals closed before it.
     Baselines in the same run: the single rule "days open > the typical won cycle" (Maven has no
     stage history, so "days in stage" is days since engaged) and a constant flag (lift 1).
     Beside the learned weights' lift it prints the lift of the flags the agent itself raises: on
     dates where the weights fail the later-period check the agent flags with its prior weights.

What Maven can tell: no activity log, no stage history, no expected close date, and amounts only on
closed deals (0 on every lost one: left out as a leak). The signals it supports are the deal's age
against the typical won cycle by month of the quarter, and the owner's record. The lift is small
because the book carries little signal; the interval says how sure it is.
Disclosure: the quarter-end pattern (won deals cluster in the last month of a quarter) was seen in
the whole file's close-date counts while designing the signals, before any back-test was run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = (REPO / ".." / "shared" / "data" / "maven_crm").resolve()
ACCOUNTS = DATA / "accounts.csv"
PIPELINE = DATA / "sales_pipeline.csv"
MAPPINGS = REPO / "mappings"
VALIDATION = (datetime(2017, 6, 1), datetime(2017, 8, 10))
TEST = (datetime(2017, 8, 24), datetime(2017, 11, 30))
EVERY_DAYS = 14
C_GRID = (0.1, 0.3, 1.0)
HORIZON_GRID = (0.25, 0.5, 0.75)


def import_maven(url: str) -> dict[str, int]:
    from crm_core.db import migrate, unit_of_work
    from crm_core.importing import ImportMapping, apply_import, plan_import, read_csv

    migrate(url)
    counts = {}
    for kind, path, mapping in (("accounts", ACCOUNTS, "maven_accounts.json"), ("deals", PIPELINE, "maven_pipeline.json")):
        with unit_of_work(url) as session:
            plan = plan_import(session, kind, read_csv(path), ImportMapping.load(MAPPINGS / mapping))
            counts[kind] = apply_import(session, plan).created
    return counts


def load(url: str):
    from crm_core.contexts.pipeline import load_book
    from crm_core.db import unit_of_work

    with unit_of_work(url, readonly=True) as session:
        return load_book(session)


def choose(book, cache, *, n_boot: int = 200):
    """The (C, horizon quantile) with the best red-over-green lift on the validation dates."""
    from orchestration.backtest.pipeline import run, series

    dates = series(*VALIDATION, EVERY_DAYS)
    tried = []
    for c in C_GRID:
        for q in HORIZON_GRID:
            r = run(book, dates, c=c, horizon_quantile=q, n_boot=n_boot, cache=cache)
            tried.append((r.lift.lift or 0.0, c, q, r))
    best = max(tried, key=lambda t: t[0])
    return best[1], best[2], tried


def evaluate(book, cache, c: float, q: float, n_boot: int = 1000):
    from orchestration.backtest.pipeline import run, series

    return run(book, series(*TEST, EVERY_DAYS), c=c, horizon_quantile=q, n_boot=n_boot, cache=cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not ACCOUNTS.is_file() or not PIPELINE.is_file():
        print(f"Maven data not found under {DATA}", file=sys.stderr)
        return 2

    from orchestration.backtest.pipeline import format_text
    from agents.pipeline.signals import SnapshotCache
    from crm_core.db import dispose_engines

    with tempfile.TemporaryDirectory(prefix="maven-bench-") as tmp:
        url = f"sqlite:///{tmp}/crm.db"
        os.environ["CRM_DATABASE_URL"] = url
        started = time.perf_counter()
        counts = import_maven(url)
        imported_s = time.perf_counter() - started
        book = load(url)
        dispose_engines()
    cache = SnapshotCache(book)
    started = time.perf_counter()
    c, q, tried = choose(book, cache)
    chose_s = time.perf_counter() - started
    started = time.perf_counter()
    result = evaluate(book, cache, c, q)
    test_s = time.perf_counter() - started

    if args.json:
        print(json.dumps({"imported": counts, "chosen": {"regularisation_c": c, "horizon_quantile": q},
                          "validation": [{"regularisation_c": cc, "horizon_quantile": qq, "lift": lift}
                                         for lift, cc, qq, _ in tried],
                          "test": result.model_dump(mode="json")}, indent=2, default=str))
        return 0
    print(f"Maven CRM: imported {counts['accounts']} accounts and {counts['deals']:,} deals in {imported_s:.1f} s")
    print(f"validation dates {VALIDATION[0]:%Y-%m-%d}..{VALIDATION[1]:%Y-%m-%d} every {EVERY_DAYS} days "
          f"(hyperparameters chosen here, {chose_s:.1f} s):")
    print(f"  {'C':>5s} {'horizon q':>9s} {'lift red/green':>15s}")
    for lift, cc, qq, _ in tried:
        mark = "  <- chosen" if (cc, qq) == (c, q) else ""
        print(f"  {cc:5g} {qq:9g} {lift:15.3f}{mark}")
    print(f"\ntest dates {TEST[0]:%Y-%m-%d}..{TEST[1]:%Y-%m-%d} every {EVERY_DAYS} days (reported; {test_s:.1f} s)")
    print(f"command: python -m orchestration backtest pipeline --from {TEST[0]:%Y-%m-%d} --to {TEST[1]:%Y-%m-%d} "
          f"--every-days {EVERY_DAYS} --regularisation-c {c:g} --horizon-quantile {q:g}\n")
    print(format_text(result))
    lift, agent, rule = result.lift, result.agent_lift, result.baseline_rule
    met = (lift.lift or 0) > 1 and lift.low is not None and lift.low > 1
    agent_met = (agent.lift or 0) > 1 and agent.low is not None and agent.low > 1
    print(f"\nquality bar (red lost more often than green, lift CI above 1), learned weights: {'met' if met else 'NOT met'}")
    print(f"the same bar for the flags the agent raises (learned where usable, prior elsewhere): "
          f"{'met' if agent_met else 'NOT met'}")
    if lift.lift and rule.lift:
        print(f"ratio vs baselines in this run: lift {lift.lift:.2f} / rule {rule.lift:.2f} = {lift.lift / rule.lift:.2f}; "
              f"/ constant 1.00 = {lift.lift:.2f}")
    if agent.lift and rule.lift:
        print(f"the agent's flags: lift {agent.lift:.2f} / rule {rule.lift:.2f} = {agent.lift / rule.lift:.2f}; "
              f"/ constant 1.00 = {agent.lift:.2f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
