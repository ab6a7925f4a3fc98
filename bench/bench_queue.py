"""The approval queue at size: reading it grouped and ordered, and deciding a whole group in one request.

Builds a demo book (scale 0.3) plus N queued proposals (tasks, emails, score changes spread over
the book's contacts), then times, in the same process:

- `queue_groups.overview` (every queued decision ordered by urgency, grouped, named, previewed)
  against a bare `SELECT` of the same queued rows (the baseline: what any listing must read);
- `queue_groups.decide_many` over M ids in one unit of work against deciding the same number of
  other ids one unit of work each through `decide_one` (what a page that reruns per item pays).

Figures are ratios against the baseline run beside them, so a loaded machine shifts both sides.
`--quick` for small sizes.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from agents.base import DecisionEnvelope, Proposal, ProposedAction  # noqa: E402
from crm_core import oversight  # noqa: E402
from crm_core.auth.actor import Actor  # noqa: E402
from crm_core.db import dispose_engines, migrate, unit_of_work  # noqa: E402
from crm_core.demo import seed_demo  # noqa: E402
from crm_core.models import Contact, Decision, User  # noqa: E402
from crm_core.services import queue_groups  # noqa: E402


def _fill_queue(url: str, n: int) -> None:
    rng = random.Random(7)
    with unit_of_work(url) as s:
        contacts = list(s.scalars(select(Contact).where(Contact.email.is_not(None)).order_by(Contact.id)))
        for i in range(n):
            c = contacts[i % len(contacts)]
            kind = rng.choice(("create_task", "create_task", "send_email", "update_lead_score"))
            params = {"create_task": {"title": f"Call {c.first_name} about the next step", "contact_id": c.id},
                      "send_email": {"contact_id": c.id, "subject": "Checking in", "body": "Hi, any news?"},
                      "update_lead_score": {"contact_id": c.id, "score": rng.randint(0, 100), "tier": "warm"}}[kind]
            proposal = Proposal(subject_type="contact", subject_id=c.id, subject_label=c.full_name, confidence=0.2,
                                reasoning="bench", actions=(ProposedAction(type=kind, params=params, reason="bench"),))
            envelope = DecisionEnvelope(agent=rng.choice(("follow_up", "lead_scoring")), proposals=(proposal,),
                                        prompt_version="bench/1", provider="offline", model="offline", is_local=True,
                                        context_snapshot={})
            oversight.submit(s, envelope)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=3000, help="queued proposals to add")
    parser.add_argument("--decide", type=int, default=300, help="ids decided each way")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="500 queued, 50 decided, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.queued, args.decide, args.repeat = 500, 50, 1
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'queue.db'}"
        migrate(url)
        seed_demo(url=url, scale=0.3)
        _fill_queue(url, args.queued)
        with unit_of_work(url, readonly=True) as s:
            manager = s.scalars(select(User).where(User.role == "manager")).first()
            actor = Actor(user_id=manager.id, name=manager.name, role="manager", via="cli")
            total = len(s.scalars(select(Decision.id).where(Decision.status == "queued")).all())

        def bare() -> None:
            with unit_of_work(url, readonly=True) as s:
                list(s.scalars(select(Decision).where(Decision.status == "queued")))

        def grouped() -> None:
            with unit_of_work(url, readonly=True) as s:
                queue_groups.overview(s)

        base = _best(bare, args.repeat)
        over = _best(grouped, args.repeat)
        with unit_of_work(url, readonly=True) as s:
            view = queue_groups.overview(s)
        ids = view.ids
        one_request, per_item = ids[:args.decide], ids[args.decide:2 * args.decide]

        started = time.perf_counter()
        with unit_of_work(url) as s:
            outcome = queue_groups.decide_many(s, one_request, verdict="reject", actor=actor)
        together = time.perf_counter() - started
        started = time.perf_counter()
        for decision_id in per_item:
            with unit_of_work(url) as s:
                queue_groups.decide_one(s, decision_id, verdict="reject", actor=actor)
        apart = time.perf_counter() - started
        dispose_engines()
    print(f"queue of {total:,} decisions in {len(view.groups)} groups")
    print(f"overview (ordered, grouped, named): {over * 1000:.0f} ms = {over / base:.2f}x a bare SELECT of the rows "
          f"({base * 1000:.0f} ms)")
    print(f"decide {len(one_request)} in one request: {together:.2f} s ({outcome.done} rejected) = "
          f"{together / apart:.2f}x deciding {len(per_item)} one request each ({apart:.2f} s)")


if __name__ == "__main__":
    main()
