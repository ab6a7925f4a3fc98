"""HTTP API: event -> new score visible through the API, next to the same event written straight to the store.

    .venv/bin/python bench/bench_api.py [--contacts 20] [--scale 0.25] [--interval 1.0] [--pg URL | --no-pg] [--quick]

Per back-end (SQLite in a temporary file; PostgreSQL in a scratch database, dropped afterwards,
when --pg or CRM_TEST_DATABASE_URL names a server), on the demo book (`seed-demo --scale`), with
a real `python -m orchestration.scheduler` (offline reasoner) and a real `python -m api` running as
separate processes:

- HTTP: POST /v1/events (one page view, a per-user token, an Idempotency-Key) for an open lead,
  then GET /v1/contacts/{id} every 50 ms until it shows a lead-scoring decision made after the
  POST returned, with the contact's score as the API reads it.
- Direct (the baseline, same run): the same page view written straight to the store by this
  process, then the store polled every 50 ms for the decision, as bench_scheduler.py does.

The two kinds alternate (jittered --interval apart), so load on the machine falls on both; the
ratio HTTP / direct says what the API adds. The target is HTTP p95 <= 2 s.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_scheduler import (  # noqa: E402  (the path above makes the project importable)
    PG_ENV,
    POLL_S,
    EVENT_TIMEOUT_S,
    WorkerProcess,
    check_decisions,
    decision_watermark,
    env_vars,
    follow_from_here,
    percentile,
    scratch_store,
    seed_book,
    write_page_views,
)

API_START_S = 120.0
TARGET_P95_S = 2.0


@dataclass
class Sample:
    kind: str           # http | direct
    seconds: float | None
    score_seen: bool = False


class ApiProcess:
    def __init__(self, url: str, port: int, log_path: Path) -> None:
        env = {**os.environ, "CRM_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port)], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_up(self) -> float:
        import httpx

        started = time.perf_counter()
        while time.perf_counter() - started < API_START_S:
            if self.proc.poll() is not None:
                raise SystemExit(f"the API exited with {self.proc.returncode}:\n{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.2)
        raise SystemExit("the API did not answer /health in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(url: str) -> str:
    from crm_core.auth.accounts import actor_for
    from crm_core.auth.tokens import issue_token
    from crm_core.db import unit_of_work
    from crm_core.models import User

    with unit_of_work(url) as session:
        user = User(name=f"Bench API {uuid.uuid4().hex[:6]}", role="admin")
        session.add(user)
        session.flush()
        return issue_token(session, user_id=user.id, name="bench", actor=actor_for(user, "cli"))[1]


def emails_of(url: str, ids: list[int]) -> dict[int, str]:
    from sqlalchemy import select

    from crm_core.db import unit_of_work
    from crm_core.models import Contact

    with unit_of_work(url, readonly=True) as s:
        return {cid: email for cid, email in s.execute(select(Contact.id, Contact.email).where(Contact.id.in_(ids))) if email}


def http_sample(http, contact_id: int, email: str, watermark: int) -> Sample:
    started = time.perf_counter()
    posted = http.post("/v1/events", json={"type": "page_view", "email": email, "url": "/pricing"},
                       headers={"Idempotency-Key": uuid.uuid4().hex})
    if posted.status_code != 201:
        raise SystemExit(f"POST /v1/events answered {posted.status_code}: {posted.text[:300]}")
    while time.perf_counter() - started < EVENT_TIMEOUT_S:
        contact = http.get(f"/v1/contacts/{contact_id}").json()
        fresh = [d for d in contact.get("latest_decisions", []) if d["agent"] == "lead_scoring" and d["id"] > watermark]
        if fresh:
            return Sample("http", time.perf_counter() - started, contact.get("score") is not None)
        time.sleep(POLL_S)
    return Sample("http", None)


def direct_sample(url: str, worker: WorkerProcess, contact_id: int) -> Sample:
    after = decision_watermark(url)
    started = time.perf_counter()
    (event,) = write_page_views(url, [contact_id])
    waiting = {contact_id: event}
    while waiting and time.perf_counter() - started < EVENT_TIMEOUT_S:
        worker.check_alive()
        check_decisions(url, waiting, after)
        if waiting:
            time.sleep(POLL_S)
    return Sample("direct", event.seen - started if event.seen is not None else None)


def run_backend(backend: str, url: str, args, tmp: Path, rng: random.Random) -> list[Sample]:
    import httpx

    from crm_core.db import dispose_engines

    with env_vars(CRM_DATABASE_URL=url):
        book, leads = seed_book(url, args.scale)
        token = make_token(url)
        emails = emails_of(url, leads)
        leads = [cid for cid in leads if cid in emails]
        follow_from_here(url)
        dispose_engines()
        print(f"[{backend}] demo book: {book}; {len(leads):,} open leads with an email", flush=True)
        worker = WorkerProcess(url, 0.5, tmp / f"worker-{backend}.log")
        api = ApiProcess(url, free_port(), tmp / f"api-{backend}.log")
        samples: list[Sample] = []
        try:
            up = api.wait_up()
            idle = worker.wait_idle(url)
            print(f"[{backend}] API up after {up:.1f} s; worker idle after {idle:.1f} s", flush=True)
            chosen = rng.sample(leads, min(2 * args.contacts, len(leads)))
            with httpx.Client(base_url=api.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                http.get("/v1/contacts", params={"limit": 1})  # connection and first-request work, unmeasured
                for i, cid in enumerate(chosen):
                    if i % 2 == 0:
                        samples.append(http_sample(http, cid, emails[cid], decision_watermark(url)))
                    else:
                        samples.append(direct_sample(url, worker, cid))
                    time.sleep(args.interval * rng.uniform(0.5, 1.5))
        finally:
            api.stop()
            worker.stop()
            dispose_engines()
    return samples


def summary(backend: str, samples: list[Sample]) -> tuple[str, bool]:
    lines = []
    ok = True
    stats = {}
    for kind in ("http", "direct"):
        got = sorted(s.seconds for s in samples if s.kind == kind and s.seconds is not None)
        missed = sum(1 for s in samples if s.kind == kind and s.seconds is None)
        stats[kind] = (got, missed)
    for kind, (got, missed) in stats.items():
        med = statistics.median(got) if got else math.nan
        p95 = percentile(got, 0.95)
        base_got = stats["direct"][0]
        base_p95 = percentile(base_got, 0.95)
        base_med = statistics.median(base_got) if base_got else math.nan
        lines.append(f"  {backend:<11} {kind:<7} n={len(got):<3} missed {missed}  median {med:6.3f} s ({med / base_med:4.2f}x direct)"
                     f"  p95 {p95:6.3f} s ({p95 / base_p95:4.2f}x direct)  max {got[-1] if got else math.nan:6.3f} s")
        if kind == "http":
            ok = ok and missed == 0 and p95 <= TARGET_P95_S
        ok = ok and missed == 0
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20, help="events per kind (HTTP and direct), alternating")
    parser.add_argument("--scale", type=float, default=0.25, help="demo book size (seed-demo --scale)")
    parser.add_argument("--interval", type=float, default=1.0, help="mean seconds between two events")
    parser.add_argument("--pg", metavar="URL", help=f"PostgreSQL server to bench on as well (default: ${PG_ENV})")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--quick", action="store_true", help="5 events per kind on a scale-0.1 book")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts, args.scale, args.interval = min(args.contacts, 5), min(args.scale, 0.1), 0.5
    pg_admin = None if args.no_pg else (args.pg or os.environ.get(PG_ENV))
    backends = ["sqlite"] + (["postgresql"] if pg_admin else [])
    print(f"API bench: back-ends {', '.join(backends)}; {args.contacts} events per kind; demo scale {args.scale:g}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    rng = random.Random(17)
    results = []
    with contextlib.ExitStack() as stack, env_vars(CRM_LLM_PROVIDER="offline"):
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="api-bench-")))
        for backend in backends:
            url = stack.enter_context(scratch_store(backend, pg_admin, tmp))
            results.append((backend, run_backend(backend, url, args, tmp, rng)))
    print()
    print(f"event -> new lead-scoring decision visible (target: HTTP p95 <= {TARGET_P95_S:g} s); "
          "baseline: the same page view written straight to the store, same run")
    all_ok = True
    for backend, samples in results:
        text, ok = summary(backend, samples)
        print(text)
        all_ok = all_ok and ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
