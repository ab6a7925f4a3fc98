"""seed-demo: fill an empty store with the demo book (what `make run` shows on first start)."""
from __future__ import annotations

import argparse
from datetime import datetime

from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.services.users import DEMO_PASSWORD, set_demo_passwords


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "seed-demo", help="fill an empty store with a realistic demo book (fixed seed, relative to now)",
        description="Generate a B2B-SaaS demo book: a team of reps and a manager, ~150 accounts, ~800 contacts, "
                    "~200 deals with stage history, ~20,000 activities over the last 120 days, email threads, "
                    "meetings and tasks. Refuses to add a second book to a store that holds contacts or deals.")
    p.add_argument("--if-empty", action="store_true", help="seed only when the store has no contacts and no deals; otherwise exit 0")
    p.add_argument("--seed", type=int, default=42, help="random seed; the same seed and moment give the same book (default 42)")
    p.add_argument("--scale", type=float, default=1.0, help="size factor, e.g. 0.2 for a fifth of the book (default 1.0, at most 10)")
    p.add_argument("--as-of", dest="as_of", default=None, metavar="ISO_TIME",
                   help="the moment the book is current at, in UTC (default: now)")
    p.set_defaults(func=_seed_demo)


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"seed-demo --as-of: {value!r} is not an ISO date-time (e.g. 2026-03-10T14:00)") from None


def _seed_demo(args: argparse.Namespace) -> int:
    from crm_core.demo import seed_demo  # the generator's vocabularies load only when asked for

    result = seed_demo(seed=args.seed, scale=args.scale, as_of=_parse_as_of(args.as_of), if_empty=args.if_empty)
    print(result.message)
    if result.seeded:
        # Demo mode only: a real book's users get passwords from an admin, never a shared one.
        with unit_of_work() as session:
            count = set_demo_passwords(session)
        print(f"demo mode: the {count} demo users sign in with their name and the password {DEMO_PASSWORD!r}")
    return 0
