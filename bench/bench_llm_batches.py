"""Bulk rescoring through the Message Batches API: 2,000+ open leads, batch against synchronous.

    .venv/bin/python bench/bench_llm_batches.py [--scale 4.0] [--min-leads 2000] [--quick]

On the demo book (`seed-demo --scale`, SQLite in a temporary file; the scale is chosen so the book
holds at least --min-leads open leads; its lead model learned once, as the nightly learn job does,
before the book is copied), every open lead is rescored once synchronously
(CRM_LLM_BATCH_ABOVE above the run's size) and once through one Message Batch (CRM_LLM_BATCH_ABOVE=0),
each on its own copy of the book, through the real `anthropic` SDK against the fake Messages server
of bench/bench_scheduler.py (its own process, a fresh one per run so each starts with a cold prompt
cache; it answers a lead-scoring prompt with the learned estimate the prompt carries, so both paths
get the same replies for the same contexts, and it answers batches as the API documents them).
Both runs are pinned to the same moment (the learn step's), so they build the same contexts.

Baseline: the synchronous run in the same process. Reported: the share of leads whose typed
decision is identical on both paths (the bar: all of them), the stored cost of each and their
ratio (the bar: 0.5, the Batches API's half price), the cached share of input tokens on each
path, and the wall time of each.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_llm_economy import copy_store  # noqa: E402  (the path above makes the package importable)
from bench.bench_scheduler import env_vars, fake_anthropic, seed_book  # noqa: E402


def learn_once(url: str) -> datetime:
    """The learn step on the seeded book, as the nightly job does, before it is copied: every run
    then scores with the same stored model (a run on a book without one learns its own, as of its
    own start). Returns the moment it learned at, which the runs are pinned to."""
    from crm_core import clock
    from crm_core.db import unit_of_work
    from crm_core.learning import learn_lead_scorer

    moment = clock.now()
    with clock.frozen_at(moment), unit_of_work(url) as session:
        learn_lead_scorer(session, as_of=moment, store=True)
    return moment


def rescore_all(url: str, *, batch: bool, at: datetime) -> dict[str, Any]:
    """One rescoring of every open lead; typed decisions by contact, the stored usage and the seconds."""
    from orchestration.runner import run_agent
    from crm_core import clock

    decisions: dict[int, dict] = {}
    totals = {"cost": 0.0, "input": 0, "read": 0, "write": 0, "batched": 0, "offline": 0}

    def keep(envelope) -> None:
        decisions[envelope.context_snapshot["contact_id"]] = envelope.decision
        u = envelope.usage
        totals["cost"] += u.cost_usd
        totals["input"] += u.input_tokens
        totals["read"] += u.cache_read_tokens
        totals["write"] += u.cache_write_tokens
        totals["batched"] += any("Message Batches API" in n for n in envelope.notes)
        totals["offline"] += envelope.provider != "anthropic"

    with fake_anthropic() as fake_url, env_vars(
            CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
            CRM_LLM_PROVIDER="anthropic", CRM_LLM_BATCH_ABOVE="0" if batch else "1000000000",
            CRM_LLM_BATCH_POLL_S="0.05", CRM_LLM_TIMEOUT_S="600"):
        started = time.perf_counter()
        with clock.frozen_at(at):  # the same moment for both paths: the same contexts, the same replies
            result = run_agent("lead_scoring", provider="anthropic", on_envelope=keep)
        seconds = time.perf_counter() - started
    sent = totals["input"] + totals["read"] + totals["write"]
    return {"decisions": decisions, "seconds": seconds, "failed": result.failed,
            "cached_share": totals["read"] / sent if sent else 0.0, **totals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=4.0, help="demo book size (seed-demo --scale); 4.0 = 3,200 contacts")
    parser.add_argument("--min-leads", type=int, default=2000, help="fewer open leads than this is an error")
    parser.add_argument("--quick", action="store_true", help="a small book (scale 0.25, any number of leads)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.min_leads = 0.25, 1

    tmp = Path(tempfile.mkdtemp(prefix="bench-batches-"))
    try:
        seeded = tmp / "seeded.db"
        started = time.perf_counter()
        summary, leads = seed_book(f"sqlite:///{seeded}", args.scale)
        print(f"book: {summary}; {len(leads):,} open leads (seeded in {time.perf_counter() - started:.0f} s)")
        if len(leads) < args.min_leads:
            raise SystemExit(f"only {len(leads)} open leads at scale {args.scale:g}: raise --scale")
        at = learn_once(f"sqlite:///{seeded}")
        sync = rescore_all(copy_store(seeded, tmp / "sync.db"), batch=False, at=at)
        batched = rescore_all(copy_store(seeded, tmp / "batch.db"), batch=True, at=at)
        same = sum(1 for c, d in sync["decisions"].items() if batched["decisions"].get(c) == d)
        total = len(sync["decisions"])
        first = next((c for c in sorted(sync["decisions"]) if batched["decisions"].get(c) != sync["decisions"][c]), None)
        if first is not None:
            print(f"first difference, contact {first}: synchronous {sync['decisions'][first]}, "
                  f"batch {batched['decisions'].get(first)}")
        for label, run in (("synchronous", sync), ("batch", batched)):
            print(f"{label:>11}: {len(run['decisions']):,} decisions ({run['batched']:,} answered by the batch, "
                  f"{run['offline']:,} kept on this machine, {run['failed']} failed) in {run['seconds']:.1f} s; "
                  f"stored cost ${run['cost']:.4f}; cached share of input {run['cached_share']:.1%}")
        print(f"identical decisions: {same:,} of {total:,} ({same / max(1, total):.1%}); stored cost batch / synchronous "
              f"{batched['cost'] / max(sync['cost'], 1e-12):.3f} (bar 0.5); wall time batch / synchronous "
              f"{batched['seconds'] / max(sync['seconds'], 1e-9):.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
