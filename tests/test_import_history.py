"""History imports stay history: stale records go in closed, the followers skip the batch, one audit entry;
and the dry run's plausibility warnings on small files."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from orchestration.scheduler import planners
from auth_helpers import MANAGER, add_user
from crm_core import clock
from crm_core.contexts.pipeline import load_book
from crm_core.db import unit_of_work
from crm_core.importing import apply_import, plan_import, read_csv
from crm_core.importing.history import STALE_MARK, STALE_NOTE, id_runs
from crm_core.models import Account, AuditEntry, Contact, Deal, Decision, ImportBatch, Job
from crm_core.services import pipeline

NOW = datetime(2026, 12, 1, 9, 0)


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


def run(kind: str, text: str, *, as_history: bool = False, mapping=None, filename: str | None = None):
    table = read_csv(text.encode(), filename or f"{kind}.csv")
    with unit_of_work() as s:
        plan = plan_import(s, kind, table, mapping, as_history=as_history)
        summary = apply_import(s, plan, actor="Morgan Lee")
    return plan, summary


def dry_run(kind: str, text: str, mapping=None, *, as_history: bool = False):
    with unit_of_work(readonly=True) as s:
        return plan_import(s, kind, read_csv(text.encode(), f"{kind}.csv"), mapping, as_history=as_history)


DEALS = ("Deal ID,Deal Name,Stage,Amount,Opened,Stage Entered At\n"
         "D1,Old open,Proposal,1000,2023-01-10,2023-03-01\n"      # untouched since March 2023: stale
         "D2,Fresh open,Proposal,2000,2026-09-01,2026-10-01\n"    # touched this year: stays live
         "D3,Undated open,Demo,500,,\n"                           # nothing says it is alive
         "D4,Old won,Closed Won,3000,2022-01-01,2022-05-01\n")


def test_history_import_closes_stale_open_deals_keeps_recent_ones_live_and_is_idempotent(store):
    plan, summary = run("deals", DEALS, as_history=True)
    assert plan.history.model_dump() == {"deals_closed": 1, "deals_stale": 2, "deals_live": 1, "contacts_stale": 0,
                                         "contacts_live": 0, "activities": 0}
    with unit_of_work(readonly=True) as s:
        deals = {d.external_id: d for d in s.scalars(select(Deal))}
        board = pipeline.pipeline_board(s, actor=MANAGER)
    assert {k: d.status for k, d in deals.items()} == {"D1": "lost", "D2": "open", "D3": "lost", "D4": "won"}
    assert deals["D1"].closed_at == datetime(2023, 3, 1) + timedelta(days=365)  # the day it went stale
    assert deals["D1"].stage == "Proposal"
    # The import's judgement is marked on the deal, where no learner reads features; a real loss is not.
    assert deals["D1"].attributes == {STALE_MARK: STALE_NOTE} and deals["D3"].attributes == {STALE_MARK: STALE_NOTE}
    assert deals["D4"].attributes == {}
    assert deals["D3"].closed_at == NOW
    assert board.open_deals == 1 and board.amount == 2000
    _, again = run("deals", DEALS, as_history=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def test_the_pipeline_learner_leaves_out_deals_a_history_import_closed_as_stale(store):
    """Their outcome and closing day are the import's rule (lost on day 365), not an event: learning from
    them would teach that old deals are lost, which the rule itself already says and no live deal shows."""
    run("deals", DEALS, as_history=True)
    with unit_of_work(readonly=True) as s:
        ids = {d.id: d.external_id for d in s.scalars(select(Deal))}
        book = load_book(s)
    assert sorted(ids[i] for i in book.by_id) == ["D2", "D4"]


def test_without_history_the_dry_run_warns_about_stale_and_undated_open_deals_and_offers_history(store):
    plan = dry_run("deals", DEALS)
    topics = {c.topic: c.rows for c in plan.checks}
    assert topics == {"stale_deals": 1, "undated_open_deals": 1}
    assert plan.history_suggested
    assert "last touched more than a year ago (the oldest on 01 Mar 2023)" in plan.checks[0].message
    assert not dry_run("deals", DEALS, as_history=True).checks  # the history counts say it instead


LEADS = ("Lead ID,First Name,Email,Created\n"
         "L1,Ann,ann@old.example,2022-02-01\n"
         "L2,,,2022-03-01\n"
         "L3,Cat,cat@new.example,2026-11-20\n")


def test_history_contacts_go_in_disqualified_when_stale_and_the_followers_skip_the_batch(store):
    with unit_of_work() as s:  # first start of the followers: cursors at the end of (empty) history
        planners.follow_new_contacts(s)
        planners.follow_activity_log(s)
    plan, summary = run("contacts", LEADS, as_history=True)
    assert (plan.history.contacts_stale, plan.history.contacts_live) == (2, 1)
    assert [c.topic for c in plan.checks] == ["blank_contacts"]  # still worth knowing in history mode
    activities = ("Activity ID,Type,When,Lead ID\n"
                  "A1,page_view,2022-02-03 10:00,L1\nA2,call,2022-02-05 11:00,L1\nA3,page_view,2026-11-21 09:00,L3\n")
    old = dry_run("activities", activities)
    assert [(c.topic, c.rows) for c in old.checks] == [("old_activities", 2)] and old.history_suggested
    run("activities", activities, as_history=True)
    with unit_of_work() as s:
        assert planners.follow_new_contacts(s) == 0
        assert planners.follow_activity_log(s) == 0
    with unit_of_work(readonly=True) as s:
        stages = {c.external_id: (c.lifecycle_stage, c.outcome_at) for c in s.scalars(select(Contact))}
        assert s.scalar(select(func.count()).select_from(Job)) == 0
        batches = list(s.scalars(select(ImportBatch).order_by(ImportBatch.id)))
        audit = list(s.scalars(select(AuditEntry)))
    assert stages["L1"] == ("disqualified", datetime(2022, 2, 1) + timedelta(days=365))
    assert stages["L3"] == ("lead", None)
    assert [(b.kind, b.historical) for b in batches] == [("contacts", True), ("activities", True)]
    assert [a.event for a in audit] == ["import.applied", "import.applied"]

    # A live import afterwards is followed as before.
    run("contacts", "Lead ID,First Name,Email\nL9,Dee,dee@live.example\n")
    with unit_of_work() as s:
        assert planners.follow_new_contacts(s) == 1


def test_a_history_import_queues_no_merge_proposal_but_a_live_one_does(store):
    people = "First Name,Last Name,Email,Phone\nAnn,Lee,ann.lee@x.example,+44 20 7946 0000\nAnn,Lee,ann.lee@y.example,+44 20 7946 0000\n"
    _, summary = run("contacts", people, as_history=True)
    assert summary.duplicates and summary.duplicates_not_proposed == len(summary.duplicates) and not summary.merge_proposals
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 0


def test_implausible_revenue_and_amounts_far_from_the_book_are_warned(store):
    plan = dry_run("accounts", "Company,Revenue\nAcme,1100.5\nBeta,4.5\nGamma,250000000\n")
    [check] = plan.checks
    assert check.topic == "implausible_revenue" and check.rows == 2 and check.examples == [2, 3]
    scaled = dry_run("accounts", "Company,Revenue\nAcme,1100.5\nBeta,4.5\n", {"__scale__": {"Revenue": 1_000_000}})
    assert not scaled.checks
    with unit_of_work() as s:
        s.add_all([Deal(name=f"d{i}", stage="Won", status="won", amount=20_000 + i) for i in range(30)])
    cents = "Deal ID,Deal Name,Stage,Amount\n" + "".join(f"C{i},c{i},Closed Won,{2_500_000 + i}\n" for i in range(5))
    assert [c.topic for c in dry_run("deals", cents).checks] == ["amount_scale"]
    assert "about 125× larger than those already in the book" in dry_run("deals", cents).checks[0].message
    odd = "Deal ID,Deal Name,Stage,Amount\n" + "".join(f"E{i},e{i},Closed Won,{25_000 + i}\n" for i in range(4))
    [outlier] = dry_run("deals", odd + "E9,e9,Closed Won,30000000\n").checks
    assert outlier.topic == "amount_outliers" and outlier.examples == [6] and "(rows 6)" in outlier.message


def test_id_runs_are_compact():
    assert id_runs([5, 1, 2, 3, 7, 6, 10]) == [[1, 3], [5, 7], [10, 10]]
    assert id_runs([]) == []


def test_the_cli_offers_history_and_imports_with_as_history(store, tmp_path, capsys):
    from crm_core.cli import main

    with unit_of_work() as s:
        add_user(s, "Morgan Lee", "manager")
    path = tmp_path / "deals.csv"
    path.write_text(DEALS)
    assert main(["import", "deals", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 open deal was last touched more than a year ago" in out and "hint: --as-history" in out
    assert main(["import", "deals", str(path), "--as-history", "--as", "Morgan Lee"]) == 0
    out = capsys.readouterr().out
    assert "as history: 2 stale open deals recorded as lost, 1 closed deals, 1 recent open deals stay live" in out
    with unit_of_work(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Deal).where(Deal.status == "open")) == 1


def test_the_cli_names_the_shipped_mapping_made_for_the_file(store, shared_data, capsys):
    from crm_core.cli import main

    assert main(["import", "accounts", str(shared_data / "maven_crm" / "accounts.csv"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "84 of 85 companies would have a yearly revenue under 10,000" in out
    assert "mappings/maven_accounts.json was made for files like this one" in out
