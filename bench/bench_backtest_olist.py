"""Lead-scoring back-test on the Olist marketing funnel (real leads nobody here wrote).

    .venv/bin/python bench/bench_backtest_olist.py [--stale-after-days 60] [--variants] [--json]

What it does, in a fresh SQLite store in a temporary directory:
  1. imports ../shared/data/olist_funnel with the mappings kept in the repo, exactly as a user
     would (`python -m crm_core import contacts ... --mapping mappings/olist_leads.json`, then
     deals with mappings/olist_closed_deals.json): the 8,000 MQLs become contacts (external id
     mql_id, source = origin, created_at = first_contact_date, landing_page_id an attribute) and
     the 842 closed deals become won deals linked by mql_id, which makes those contacts customers
     with outcome_at = won_date;
  2. runs `python -m orchestration backtest lead_scoring --as-of <day after the last won_date>
     --stale-after-days N --score-after-days 0` in process and prints its figures.

How unconverted leads get an outcome: Olist records wins only. A lead with no win within N days
of its first contact counts as lost from day N, and a win after day N counts as lost as well,
because on day N nobody could know better (the rule never looks past that day). N = 60 by
default: the median first-contact-to-win time is 14 days and three wins in four come within 55
days, and a longer N pushes the cohorts with complete outcomes at the split back before
December 2017 (the first won_date is 2017-12-05, so nearly every lead from 2017 is a loss),
and the scorer would be calibrated on a regime that no longer existed. `--variants` prints N = 60, 90 and 120
side by side.

Scores are taken at first contact (--score-after-days 0): Olist has no activity log, every field
is known on the first day. The deal-side columns (business segment, lead type, ...) are
attributes of the won deals, not of the contacts, so they cannot leak the label.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = (REPO / ".." / "shared" / "data" / "olist_funnel").resolve()
LEADS = DATA / "olist_marketing_qualified_leads_dataset.csv"
DEALS = DATA / "olist_closed_deals_dataset.csv"
MAPPINGS = REPO / "mappings"


def import_olist(url: str) -> dict[str, int]:
    from crm_core.db import migrate, unit_of_work
    from crm_core.importing import ImportMapping, apply_import, plan_import, read_csv

    migrate(url)
    counts = {}
    for kind, path, mapping in (("contacts", LEADS, "olist_leads.json"), ("deals", DEALS, "olist_closed_deals.json")):
        with unit_of_work(url) as session:
            plan = plan_import(session, kind, read_csv(path), ImportMapping.load(MAPPINGS / mapping))
            summary = apply_import(session, plan)
        counts[kind] = summary.created
        if kind == "deals":
            counts["customers"] = summary.contacts_made_customers
    return counts


def end_of_data(url: str) -> datetime:
    """The day after the newest date in the book: the back-test sees everything the data holds."""
    from sqlalchemy import func, select

    from crm_core.db import unit_of_work
    from crm_core.models import Contact, Deal

    with unit_of_work(url, readonly=True) as session:
        newest = max(d for d in (session.scalar(select(func.max(Deal.closed_at))),
                                 session.scalar(select(func.max(Contact.created_at)))) if d is not None)
    return datetime.combine(newest.date() + timedelta(days=1), datetime.min.time())


def backtest(url: str, as_of: datetime, stale_after_days: float):
    from orchestration.backtest.lead_scoring import run
    from crm_core.contexts.lead_scoring import load_book
    from crm_core.db import unit_of_work

    with unit_of_work(url, readonly=True) as session:
        records, outcomes = load_book(session, as_of=as_of)
    return run(records, outcomes, as_of=as_of, test_fraction=0.3, score_after_days=0, stale_after_days=stale_after_days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stale-after-days", type=float, default=60.0)
    parser.add_argument("--variants", action="store_true", help="also run N = 90 and 120 days")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not LEADS.is_file() or not DEALS.is_file():
        print(f"Olist data not found under {DATA}", file=sys.stderr)
        return 2

    from orchestration.backtest.lead_scoring import format_text
    from crm_core.db import dispose_engines

    with tempfile.TemporaryDirectory(prefix="olist-bench-") as tmp:
        url = f"sqlite:///{tmp}/crm.db"
        os.environ["CRM_DATABASE_URL"] = url
        started = time.perf_counter()
        counts = import_olist(url)
        imported_s = time.perf_counter() - started
        as_of = end_of_data(url)
        runs = []
        for n in [args.stale_after_days] + ([d for d in (90.0, 120.0) if d != args.stale_after_days] if args.variants else []):
            started = time.perf_counter()
            result = backtest(url, as_of, n)
            runs.append((n, result, time.perf_counter() - started))
        dispose_engines()

    if args.json:
        print(json.dumps({"imported": counts, "as_of": as_of.isoformat(),
                          "runs": [{"stale_after_days": n, "seconds": round(s, 1), **r.model_dump(mode="json")}
                                   for n, r, s in runs]}, indent=2))
        return 0
    print(f"Olist funnel: imported {counts['contacts']:,} contacts and {counts['deals']:,} won deals "
          f"({counts['customers']:,} contacts made customers) in {imported_s:.1f} s")
    print(f"command: python -m orchestration backtest lead_scoring --as-of {as_of:%Y-%m-%d} "
          f"--stale-after-days {args.stale_after_days:g} --score-after-days 0\n")
    first = runs[0][1]
    print(format_text(first))
    model, nb = first.model.auc, first.baseline_naive_bayes.auc
    plain = first.baseline_logistic.auc if first.baseline_logistic is not None else None
    met = model is not None and nb is not None and model > nb and (plain is None or model >= plain)
    print(f"\nquality bar (lead-score AUC beats naive Bayes and is at least the plain logistic regression's): "
          f"{'met' if met else 'NOT met'}: {model} vs {nb} (naive Bayes), {plain} (plain logistic regression)"
          if model and nb else "\nquality bar: AUC undefined")
    if len(runs) > 1:
        print("\nstale rule variants (N days without a win = lost):")
        print(f"  {'N':>5s} {'test':>6s} {'conv':>6s} {'AUC':>7s} {'NB AUC':>7s} {'Brier':>7s} {'base Brier':>10s} {'seconds':>8s}")
        for n, r, s in runs:
            print(f"  {n:5g} {r.test_contacts:6d} {r.test_converted / r.test_contacts:6.1%} {r.model.auc:7.3f} "
                  f"{r.baseline_naive_bayes.auc:7.3f} {r.model.brier:7.4f} {r.baseline_rate.brier:10.4f} {s:8.1f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
