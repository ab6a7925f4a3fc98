"""LLM economy: model calls saved by fingerprints (repeat runs) and by per-contact coalescing (trickles).

    .venv/bin/python bench/bench_llm_economy.py [--scale 0.25] [--events 1000] [--contacts 200] [--rate 20]
                                                [--window 5] [--only 1,2,3] [--quick]

On the demo book (`seed-demo --scale`, SQLite in a temporary file), through the real `anthropic`
SDK talking to the fake Messages server of bench/bench_scheduler.py (its own process; it answers a
lead-scoring prompt with the learned estimate the prompt carries and counts the requests):

1. Repeat run: `run_agent("lead_scoring", skip_unchanged=True)` over every lead due, then the same
   again with no new data. Baseline: the first run's calls. Reported: calls of the second run and
   the share of subjects it skipped (the bar: >= 95 % skipped).
2. Trickle: a scheduler worker (`python -m orchestration.scheduler`, its own process) follows the activity
   log while this process writes --events page views over --contacts open leads at --rate per
   second (each to a contact drawn at random), then waits until the queue is idle. Run twice on
   fresh copies of the same book: coalescing off (CRM_COALESCE_SECONDS=0: only a still-pending job
   absorbs events, the planner before issue 16) and on (--window seconds). Reported: lead-scoring
   jobs run and model calls per event for each (a job whose lead's fingerprint did not move lets
   the last decision stand without a call) and their ratio (the bar: <= 0.25 calls per event).
   A worker that falls behind folds more events into each waiting job, so these figures move
   with the machine's load; with --keeps-up the same trickle is also run against a worker that
   always keeps up: a simulated clock in this process, 0.1 s steps, each step writing the events
   due, running the planner and then every job due through the same runner and fake API.
3. Bulk rescoring: every open lead rescored once synchronously and once through the Message
   Batches API (CRM_LLM_BATCH_ABOVE=0), each on its own copy of the book with the same fake
   replies. Reported: the share of identical decisions, the stored cost ratio (batch / synchronous,
   the bar: 0.5) and the wall time of each.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_scheduler import (  # noqa: E402  (the path above makes the package importable)
    COUNT_PATH, WorkerProcess, env_vars, fake_anthropic, follow_from_here, seed_book,
)


def copy_store(src: Path, dst: Path) -> str:
    """A consistent copy of a SQLite store in WAL mode (the file alone may miss committed pages)."""
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    return f"sqlite:///{dst}"


def requests_so_far(fake_url: str) -> int:
    with urllib.request.urlopen(fake_url.rstrip("/") + COUNT_PATH, timeout=10) as reply:  # loopback only
        return int(json.load(reply)["messages"])


def repeat_run(url: str, fake_url: str) -> dict[str, float]:
    from orchestration.runner import run_agent

    with env_vars(CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
                  CRM_LLM_PROVIDER="anthropic"):
        before = requests_so_far(fake_url)
        first = run_agent("lead_scoring", provider="anthropic", skip_unchanged=True)
        middle = requests_so_far(fake_url)
        second = run_agent("lead_scoring", provider="anthropic", skip_unchanged=True)
        after = requests_so_far(fake_url)
    skipped = sum(1 for o in second.outcomes if o.skipped)
    return {"subjects": len(second.outcomes), "first_calls": middle - before, "second_calls": after - middle,
            "skipped_share": skipped / max(1, len(second.outcomes))}


def bulk(url: str, fake_url: str, *, batch: bool) -> tuple[dict[int, dict], float, float]:
    """Typed decisions by contact, the stored cost and the seconds of one rescoring of every open lead."""
    from orchestration.runner import run_agent

    decisions: dict[int, dict] = {}
    cost = 0.0

    def keep(envelope) -> None:
        nonlocal cost
        decisions[envelope.context_snapshot["contact_id"]] = envelope.decision
        cost += envelope.usage.cost_usd

    with env_vars(CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
                  CRM_LLM_PROVIDER="anthropic", CRM_LLM_BATCH_ABOVE="0" if batch else "1000000000",
                  CRM_LLM_BATCH_POLL_S="0.05"):
        started = time.perf_counter()
        run_agent("lead_scoring", provider="anthropic", on_envelope=keep)
        seconds = time.perf_counter() - started
    return decisions, cost, seconds


def trickle(url: str, fake_url: str, leads: list[int], *, events: int, contacts: int, rate: float, window: float,
            log_path: Path) -> dict[str, float]:
    from crm_core import clock
    from crm_core.db import unit_of_work
    from crm_core.models import Activity

    follow_from_here(url)
    with env_vars(CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
                  CRM_LLM_PROVIDER="anthropic", CRM_COALESCE_SECONDS=str(window)):
        worker = _sdk_worker(url, fake_url, window, log_path)
        try:
            worker.wait_idle(url)  # start-up whole runs first: they are not what is measured
            follow_from_here(url)
            before = requests_so_far(fake_url)
            rnd = random.Random(16)
            chosen = rnd.sample(leads, min(contacts, len(leads)))
            started, started_at = time.perf_counter(), clock.now()
            for i in range(events):
                due = started + i / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                with unit_of_work(url) as s:
                    s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=rnd.choice(chosen),
                                   payload={"url": "/pricing" if i % 7 == 0 else "/docs"}, source="web"))
            time.sleep(window + 1.5)  # the last follow-ups wait for their quiet window
            worker.wait_idle(url)
            requests = requests_so_far(fake_url) - before
            calls, other = _calls_since(url, started_at)
            jobs = _lead_jobs_since(url, started_at)
        finally:
            worker.stop()
    return {"events": events, "contacts": len(chosen), "calls": calls, "per_event": calls / events,
            "requests": requests, "other": other, "jobs": jobs}


def trickle_kept_up(url: str, fake_url: str, leads: list[int], *, events: int, contacts: int, rate: float,
                    window: float) -> dict[str, float]:
    """The trickle of `trickle` with a worker that is never behind (see the module docstring)."""
    from datetime import timedelta

    from orchestration.runner import run_agent
    from orchestration.scheduler import planners
    from crm_core import clock, jobqueue
    from crm_core.db import unit_of_work
    from crm_core.models import Activity

    with env_vars(CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
                  CRM_LLM_PROVIDER="anthropic", CRM_COALESCE_SECONDS=str(window)):
        start = clock.now()
        with clock.frozen_at(start):  # the leads' decisions before the trickle, as a worker's start-up run makes them
            run_agent("lead_scoring", provider="anthropic", skip_unchanged=True)
        follow_from_here(url)
        rnd = random.Random(16)
        chosen = rnd.sample(leads, min(contacts, len(leads)))
        due = [(i / rate, rnd.choice(chosen), i) for i in range(events)]
        before, jobs, step = requests_so_far(fake_url), 0, 0
        while due or step * 0.1 < events / rate + window * (planners.MAX_FOLD_WINDOWS + 1):
            with clock.frozen_at(start + timedelta(seconds=step * 0.1)):
                with unit_of_work(url) as s:
                    while due and due[0][0] <= step * 0.1:
                        _, contact_id, i = due.pop(0)
                        s.add(Activity(type="page_view", occurred_at=clock.now(), contact_id=contact_id,
                                       payload={"url": "/pricing" if i % 7 == 0 else "/docs"}, source="web"))
                with unit_of_work(url) as s:
                    planners.follow_activity_log(s)
                while (job := _claim(url)) is not None:
                    run_agent("lead_scoring", subject_ids=job.payload["subject_ids"], provider="anthropic",
                              idempotency_key=f"job:{job.id}", skip_unchanged=True)
                    with unit_of_work(url) as s:
                        jobqueue.complete(s, job.id, "bench")
                    jobs += 1
            step += 1
        calls = requests_so_far(fake_url) - before
    return {"events": events, "contacts": len(chosen), "calls": calls, "per_event": calls / events, "jobs": jobs}


def _claim(url: str):
    from crm_core import jobqueue
    from crm_core.db import unit_of_work

    with unit_of_work(url) as s:
        return jobqueue.claim(s, "bench", lease_seconds=600)


def _lead_jobs_since(url: str, since) -> int:
    """Per-lead scoring jobs run since `since`: events left after coalescing, each decided or let stand."""
    from sqlalchemy import func, select

    from crm_core.db import unit_of_work
    from crm_core.models import Job

    with unit_of_work(url, readonly=True) as s:
        return s.scalar(select(func.count()).select_from(Job).where(
            Job.kind == "agent", Job.dedupe_key.startswith("lead_scoring:contact:"), Job.created_at >= since,
            Job.status == "done")) or 0


def _calls_since(url: str, since) -> tuple[int, dict[str, int]]:
    """Lead-scoring decisions reasoned by the model since `since` (one model call each), and other agents' calls."""
    from sqlalchemy import select

    from crm_core.db import unit_of_work
    from crm_core.models import AuditEntry

    by_agent: dict[str, int] = {}
    with unit_of_work(url, readonly=True) as s:
        for actor, details in s.execute(select(AuditEntry.actor, AuditEntry.details).where(
                AuditEntry.event == "decision.created", AuditEntry.at >= since)):
            if details.get("provider") == "anthropic" and not details.get("proposal_index"):
                by_agent[actor] = by_agent.get(actor, 0) + 1
    return by_agent.pop("agent:lead_scoring", 0), by_agent


def _sdk_worker(url: str, fake_url: str, window: float, log_path: Path) -> WorkerProcess:
    """bench_scheduler's WorkerProcess pins the offline reasoner; this one talks to the fake API."""
    worker = WorkerProcess.__new__(WorkerProcess)
    env = dict(os.environ, CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
               CRM_LLM_PROVIDER="anthropic", CRM_COALESCE_SECONDS=str(window), PYTHONUNBUFFERED="1",
               # The fake answers lead-scoring prompts only: the other agents' start-up runs get a 400
               # each, which must not open the circuit breaker for the model lead scoring shares.
               CRM_LLM_BREAKER_FAILURES="1000000")
    worker.log_path = log_path
    worker._log = open(log_path, "w")
    worker.proc = subprocess.Popen([sys.executable, "-m", "orchestration.scheduler", "--poll-interval", "0.5"], cwd=ROOT,
                                   env=env, stdout=worker._log, stderr=subprocess.STDOUT)
    return worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--only", default="1,2,3", help="the sections to run, e.g. 1,2 (default: all three)")
    parser.add_argument("--keeps-up", action="store_true",
                        help="section 2 also against a worker that never falls behind (simulated clock, in process)")
    parser.add_argument("--quick", action="store_true", help="a small book and 100 events (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.events, args.contacts = 0.05, 100, 20
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if not sections or sections - {"1", "2", "3"}:
        raise SystemExit(f"--only takes sections 1, 2 and 3 (got {args.only!r})")

    tmp = Path(tempfile.mkdtemp(prefix="bench-economy-"))
    try:
        seeded = tmp / "seeded.db"
        summary, leads = seed_book(f"sqlite:///{seeded}", args.scale)
        print(f"book: {summary}; {len(leads)} open leads")
        with fake_anthropic() as fake_url:
            if "1" in sections:
                repeat_section(seeded, tmp, fake_url)
            if "2" in sections:
                trickle_section(seeded, tmp, fake_url, leads, args)
            if "3" not in sections:
                return 0
            sync, sync_cost, sync_s = bulk(copy_store(seeded, tmp / "bulk-sync.db"), fake_url, batch=False)
            batched, batch_cost, batch_s = bulk(copy_store(seeded, tmp / "bulk-batch.db"), fake_url, batch=True)
            same = sum(1 for c, d in sync.items() if batched.get(c) == d)
            print(f"3. bulk rescoring of {len(sync)} leads: {same} of {len(sync)} decisions identical through the batch; "
                  f"stored cost ${batch_cost:.4f} batch vs ${sync_cost:.4f} synchronous (ratio "
                  f"{batch_cost / max(sync_cost, 1e-12):.2f}); {batch_s:.1f} s vs {sync_s:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def repeat_section(seeded: Path, tmp: Path, fake_url: str) -> None:
    rep = repeat_run(copy_store(seeded, tmp / "repeat.db"), fake_url)
    print(f"1. repeat run over {rep['subjects']} leads: first run {rep['first_calls']} calls, "
          f"second run {rep['second_calls']} calls; {rep['skipped_share']:.1%} skipped without a call")


def trickle_section(seeded: Path, tmp: Path, fake_url: str, leads: list[int], args) -> None:
    results = {}
    for label, window in (("coalescing off", 0.0), (f"coalescing {args.window:g} s", args.window)):
        db = copy_store(seeded, tmp / f"trickle-{window:g}.db")
        results[label] = trickle(db, fake_url, leads, events=args.events,
                                 contacts=args.contacts, rate=args.rate, window=window,
                                 log_path=tmp / f"worker-{window:g}.log")
        r = results[label]
        print(f"2. {label}: {r['events']} events over {r['contacts']} contacts at {args.rate:g}/s -> "
              f"{r['jobs']} lead-scoring jobs ({r['jobs'] / r['events']:.3f} per event), "
              f"{r['calls']} model calls, {r['per_event']:.3f} per event "
              f"({r['requests']} requests to the fake API in all; other agents' decisions: {r['other'] or 'none'})")
    off, on = results.values()
    print(f"   ratio: coalescing on / off = {on['per_event'] / max(off['per_event'], 1e-9):.2f}")
    if not args.keeps_up:
        return
    for label, window in (("coalescing off", 0.0), (f"coalescing {args.window:g} s", args.window)):
        r = trickle_kept_up(copy_store(seeded, tmp / f"kept-up-{window:g}.db"), fake_url, leads, events=args.events,
                            contacts=args.contacts, rate=args.rate, window=window)
        print(f"2. {label}, a worker that keeps up: {r['events']} events over {r['contacts']} contacts at "
              f"{args.rate:g}/s (simulated) -> {r['jobs']} lead-scoring jobs ({r['jobs'] / r['events']:.3f} per event), "
              f"{r['calls']} model calls, {r['per_event']:.3f} per event")


if __name__ == "__main__":
    sys.exit(main())
