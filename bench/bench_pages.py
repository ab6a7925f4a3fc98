"""Dashboard page times on a big book: 100,000 contacts, 10,000 deals, 1,000,000 activities.

    .venv/bin/python bench/bench_pages.py [--contacts 100000] [--deals 10000] [--activities 1000000]
                                          [--rebuild] [--repeat 3]

The store is built once with bulk inserts and kept under bench/results/ (git-ignored); later
runs reuse it. Each page is rendered through Streamlit's AppTest, in this process, the way the
server runs it (app.py, navigation, sidebar, the page): "cold" clears every cached read first
(a user's first view after a write), "warm" renders again with the cache filled. The baseline is
a one-line page (`st.title`) rendered by AppTest in the same process, so the ratio column says
how many empty pages' worth of work a page costs on this machine. The target is under 2 s of
server time per cold page.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from crm_core import clock  # noqa: E402
from crm_core.auth.sessions import SESSION_KEY, start_session  # noqa: E402
from crm_core.db import dispose_engines, get_engine, migrate, unit_of_work  # noqa: E402
from crm_core.models import (  # noqa: E402
    Account,
    Activity,
    AuditEntry,
    Contact,
    Deal,
    Decision,
    Email,
    Meeting,
    ScoreHistory,
    StageHistory,
    Task,
    User,
    WorkerHeartbeat,
)

RESULTS = ROOT / "bench" / "results"
PAGES = ["pipeline_health", "lead_scores", "approval_queue", "activity_audit", "import_data", "record_detail",
         "meetings", "agents_settings", "data_health"]
STAGES = ["Prospecting", "Discovery", "Demo", "Proposal", "Negotiation"]
PRODUCTS = ["Core", "Growth", "Enterprise", "Add-on"]
ACTIVITY_TYPES = ["page_view", "email_opened", "email_clicked", "content_download", "call", "note", "form_submit",
                  "email_sent", "email_replied", "meeting"]
SOURCES = ["webinar", "referral", "organic_search", "paid_search", "event", "outbound", "partner"]
AGENTS = ["lead_scoring", "follow_up", "enrichment", "pipeline", "meeting"]
CHUNK = 20_000


def _chunks(rows, size=CHUNK):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(conn, model, rows) -> int:
    n = 0
    for batch in _chunks(rows):
        conn.execute(insert(model), batch)
        n += len(batch)
    return n


def build_store(url: str, *, contacts: int, deals: int, activities: int, seed: int = 11) -> dict[str, int]:
    """Write the big book with bulk inserts, relative to now so 'last week' and 'upcoming' mean something."""
    rng = random.Random(seed)
    now = clock.now().replace(microsecond=0)
    migrate(url)
    engine = get_engine(url)
    n_users, n_accounts = 25, max(contacts // 10, 1)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        counts["users"] = _insert(conn, User, ({
            "id": i, "name": f"Rep {i:02d}" if i > 1 else "Morgan Manager", "email": f"rep{i}@example.com",
            "role": "manager" if i == 1 else "rep", "is_senior": i < 5, "timezone": "UTC", "work_start_hour": 9,
            "work_end_hour": 17, "created_at": now, "updated_at": now,
        } for i in range(1, n_users + 1)))
        counts["accounts"] = _insert(conn, Account, ({
            "id": i, "name": f"Company {i}", "name_key": f"company {i}", "domain": f"company{i}.example",
            "sensitive": False, "attributes": {}, "manual_fields": [], "created_at": now, "updated_at": now,
        } for i in range(1, n_accounts + 1)))

        def contact_rows():
            for i in range(1, contacts + 1):
                score = rng.randrange(0, 101) if rng.random() < 0.8 else None
                tier = None if score is None else "hot" if score >= 70 else "warm" if score >= 40 else "cold"
                yield {"id": i, "first_name": f"First{i}", "last_name": f"Last{i % 997}", "email": f"p{i}@company{i % n_accounts + 1}.example",
                       "email_normalized": f"p{i}@company{i % n_accounts + 1}.example", "account_id": i % n_accounts + 1,
                       "owner_id": rng.randrange(1, n_users + 1), "source": rng.choice(SOURCES),
                       "lifecycle_stage": rng.choice(["lead", "lead", "mql", "sql", "opportunity", "customer", "disqualified"]),
                       "score": score, "tier": tier, "score_updated_at": now - timedelta(days=1) if score is not None else None,
                       "last_activity_at": now - timedelta(days=rng.randrange(0, 120)), "sensitive": False, "attributes": {},
                       "manual_fields": [], "created_at": now - timedelta(days=200), "updated_at": now}
        counts["contacts"] = _insert(conn, Contact, contact_rows())

        def score_rows():
            for i in range(1, contacts + 1, 2):  # half the book has a week of history
                for days_ago in (12, 6, 1):
                    value = rng.randrange(0, 101)
                    yield {"contact_id": i, "score": value, "tier": "hot" if value >= 70 else "warm" if value >= 40 else "cold",
                           "scored_at": now - timedelta(days=days_ago), "reason": "visited pricing; opened 3 emails"}
        counts["score_history"] = _insert(conn, ScoreHistory, score_rows())

        deal_rows, history_rows = [], []
        for i in range(1, deals + 1):
            status = rng.choices(["open", "won", "lost"], [0.4, 0.35, 0.25])[0]
            depth = rng.randrange(1, len(STAGES) + 1)
            path = STAGES[:depth]
            opened = now - timedelta(days=rng.randrange(20, 400))
            at = opened
            previous = None
            for stage in path:
                history_rows.append({"deal_id": i, "from_stage": previous, "to_stage": stage, "changed_at": at})
                previous, at = stage, at + timedelta(days=rng.randrange(3, 30))
            stage = path[-1] if status == "open" else ("Closed Won" if status == "won" else "Closed Lost")
            if status != "open":
                history_rows.append({"deal_id": i, "from_stage": previous, "to_stage": stage, "changed_at": at})
            risk = rng.choices(["red", "amber", "green", None], [0.1, 0.25, 0.45, 0.2])[0] if status == "open" else None
            deal_rows.append({
                "id": i, "name": f"Company {i % n_accounts + 1} – {rng.choice(PRODUCTS)}", "account_id": i % n_accounts + 1,
                "primary_contact_id": rng.randrange(1, contacts + 1), "owner_id": rng.randrange(1, n_users + 1),
                "product": rng.choice(PRODUCTS), "stage": stage, "amount": rng.randrange(5, 500) * 1000, "currency": "USD",
                "status": status, "opened_at": opened, "stage_entered_at": history_rows[-1]["changed_at"],
                "closed_at": at if status != "open" else None, "expected_close": (now + timedelta(days=rng.randrange(5, 120))).date(),
                "risk": risk, "risk_reason": "no reply in 21 days" if risk in ("red", "amber") else None,
                "risk_action": "call the economic buyer" if risk in ("red", "amber") else None, "attributes": {},
                "manual_fields": [], "created_at": opened, "updated_at": now,
            })
        counts["deals"] = _insert(conn, Deal, deal_rows)
        counts["deal_stage_history"] = _insert(conn, StageHistory, history_rows)

        def activity_rows():
            for i in range(activities):
                contact = rng.randrange(1, contacts + 1)
                yield {"type": rng.choice(ACTIVITY_TYPES), "occurred_at": now - timedelta(minutes=rng.randrange(0, 180 * 24 * 60)),
                       "contact_id": contact, "deal_id": rng.randrange(1, deals + 1) if i % 10 == 0 else None,
                       "payload": {"url": "/pricing"} if i % 3 == 0 else {}, "source": "bench", "created_at": now, "updated_at": now}
        counts["activities"] = _insert(conn, Activity, activity_rows())
        counts["emails"] = _insert(conn, Email, ({
            "thread_id": f"t{i}", "contact_id": rng.randrange(1, contacts + 1), "direction": rng.choice(["inbound", "outbound"]),
            "subject": "Proposal follow-up", "body": "Hi, checking in on the proposal. Best, Rep", "sent_at": now - timedelta(hours=i % 4000),
            "created_at": now, "updated_at": now,
        } for i in range(contacts // 2)))
        counts["meetings"] = _insert(conn, Meeting, ({
            "uid": f"m{i}@bench", "title": f"Call {i}", "contact_id": rng.randrange(1, contacts + 1), "deal_id": rng.randrange(1, deals + 1),
            "owner_id": rng.randrange(1, n_users + 1), "starts_at": now + timedelta(hours=i - 1500), "ends_at": now + timedelta(hours=i - 1500, minutes=30),
            "attendees": ["a@example.com"], "status": "scheduled" if i >= 1500 else "completed", "brief": "Brief: pricing, SSO." if i % 2 else None,
            "created_at": now, "updated_at": now,
        } for i in range(3000)))
        counts["tasks"] = _insert(conn, Task, ({
            "title": f"Action item {i}", "meeting_id": (i % 1500) + 1, "kind": "action_item", "status": "open",
            "owner_id": rng.randrange(1, n_users + 1), "created_at": now, "updated_at": now,
        } for i in range(6000)))

        def decision_rows():
            for i in range(1, 30_001):
                queued = i % 40 == 0
                contact = rng.randrange(1, contacts + 1)
                yield {
                    "id": i, "agent": rng.choice(AGENTS), "subject_type": "contact", "subject_id": contact, "subject_label": f"First{contact}",
                    "status": "queued" if queued else "executed", "confidence": rng.random(), "confidence_factors": {},
                    "reasoning": "Score moved on pricing visits and two replies; next step a call.", "decision": {"score": 70},
                    "actions": [{"type": "create_task", "params": {"title": f"Call First{contact}", "contact_id": contact}, "reason": "hot"}],
                    "context_snapshot": {"contact_id": contact, "recent_activities": [{"type": "page_view", "url": "/pricing"}] * 20},
                    "provider": "anthropic" if i % 3 == 0 else "offline", "model": "claude-haiku-5-5", "is_local": i % 3 != 0,
                    "input_tokens": 1200, "output_tokens": 200, "cache_read_tokens": 0, "cache_write_tokens": 0,
                    "cost_usd": 0.002 if i % 3 == 0 else 0, "stakes": "low", "reversible": True, "policy_verdict": "queue" if queued else "auto",
                    "policy_reason": "queued: confidence below threshold" if queued else "auto-approved", "created_at": now - timedelta(minutes=i),
                    "expires_at": now + timedelta(hours=72) if queued else None, "decided_by": None if queued else "policy",
                    "decided_at": None if queued else now - timedelta(minutes=i), "executed_at": None if queued else now - timedelta(minutes=i),
                }
        counts["decisions"] = _insert(conn, Decision, decision_rows())
        counts["audit_log"] = _insert(conn, AuditEntry, ({
            "at": now - timedelta(minutes=i // 3), "actor": "policy" if i % 3 else f"agent:{AGENTS[i % 5]}",
            "event": ("decision.created", "decision.auto_approved", "decision.executed")[i % 3], "decision_id": i // 3 + 1,
            "subject_type": "contact", "subject_id": rng.randrange(1, contacts + 1), "details": {"note": "bench"},
        } for i in range(90_000)))
        conn.execute(insert(WorkerHeartbeat), [{"worker_id": "bench-worker", "status": "idle", "started_at": now, "last_seen_at": now}])
    return counts


def store_for(args) -> str:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pages-{args.contacts}c-{args.deals}d-{args.activities}a.db"
    marker = path.with_suffix(".json")
    if args.rebuild or not marker.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        counts = build_store(url, contacts=args.contacts, deals=args.deals, activities=args.activities)
        with unit_of_work(url) as s:  # planner statistics, as a long-running store would have them
            s.connection().exec_driver_sql("ANALYZE")
        marker.write_text(json.dumps({"counts": counts, "seconds": round(time.perf_counter() - started, 1)}))
        print(f"built {path.name} in {time.perf_counter() - started:.1f} s: {counts}")
        dispose_engines()
    else:
        print(f"reusing {path.name}: {json.loads(marker.read_text())['counts']}")
    return f"sqlite:///{path}"


def _timed_run(at: AppTest) -> float:
    started = time.perf_counter()
    at.run(timeout=120)
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"page failed: {at.exception[0].value}")
    return elapsed


def baseline(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        at = AppTest.from_string("import streamlit as st\nst.title('baseline')", default_timeout=30)
        times.append(_timed_run(at))
    return statistics.median(times)


MANAGER_ID = 1  # "Morgan Manager" in build_store: a manager sees the whole book, the heaviest view


def signed_in_app() -> AppTest:
    """The app as the manager sees it after signing in (a browser session row, as the sign-in form makes);
    without it every page would measure the sign-in form."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    with unit_of_work() as s:
        at.session_state[SESSION_KEY] = start_session(s, MANAGER_ID, via="password")
    return at


def measure(page: str, repeat: int) -> tuple[float, float]:
    """Median cold (cache cleared) and warm (cache filled) server time of one page."""
    cold, warm = [], []
    for _ in range(repeat):
        at = signed_in_app()
        if page == "record_detail":
            at.query_params["contact"] = "1"
        at.run(timeout=120)  # the app's first run (default page), not measured
        at.switch_page(f"pages/{page}.py")
        st.cache_data.clear()
        cold.append(_timed_run(at))
        if page != "record_detail" and at.title and at.title[0].value == "Sign in":
            raise SystemExit(f"{page}: the page showed the sign-in form, not the page")
        warm.append(_timed_run(at))
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    import os

    url = store_for(args)
    os.environ["CRM_DATABASE_URL"] = url
    with unit_of_work(url, readonly=True) as s:
        sizes = {name: s.scalar(select(func.count()).select_from(model)) for name, model in
                 (("contacts", Contact), ("deals", Deal), ("activities", Activity), ("decisions", Decision))}
    print(f"store: {sizes}")
    # Every page once, unmeasured: module imports and migrations happen once per server process.
    warm_up = signed_in_app()
    warm_up.run(timeout=120)
    for page in PAGES:
        warm_up.switch_page(f"pages/{page}.py").run(timeout=120)
    base = baseline(args.repeat)
    print(f"baseline (one-line page through AppTest): {base * 1000:.1f} ms")
    print(f"{'page':<18} {'cold s':>8} {'ratio':>8} {'warm s':>8} {'ratio':>8}")
    worst = 0.0
    for page in PAGES:
        cold, warm = measure(page, args.repeat)
        worst = max(worst, cold)
        print(f"{page:<18} {cold:>8.3f} {cold / base:>8.1f} {warm:>8.3f} {warm / base:>8.1f}")
    print(f"slowest cold page: {worst:.3f} s (target: under 2 s)")


if __name__ == "__main__":
    main()
