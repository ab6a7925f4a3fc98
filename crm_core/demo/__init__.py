"""The demo book a newcomer sees on first start: `python -m crm_core seed-demo`.

`seed_demo()` generates a realistic B2B-SaaS book (team, accounts, contacts, deals with stage
history, ~20,000 activities over the last 120 days, email threads, meetings, tasks) from a fixed
seed, relative to `clock.now()` so it always looks current, and writes it in one transaction.
It never adds a second book to a store that already holds contacts or deals.
"""
from __future__ import annotations

import time
from datetime import datetime

from pydantic import BaseModel, ValidationError
from sqlalchemy import inspect

from crm_core import clock
from crm_core.db import get_engine, unit_of_work
from crm_core.demo.generator import DemoOptions, generate_book
from crm_core.demo.writer import book_counts, lock_for_seeding, write_book
from crm_core.errors import UserError

__all__ = ["DemoOptions", "SeedResult", "generate_book", "seed_demo"]

_LABELS = {"stage_history": "stage changes"}


class SeedResult(BaseModel):
    seeded: bool
    seed: int
    scale: float
    as_of: datetime
    counts: dict[str, int]
    seconds: float
    message: str


def _options(seed: int, scale: float, as_of: datetime | None) -> DemoOptions:
    try:
        return DemoOptions(seed=seed, scale=scale, as_of=clock.to_naive_utc(as_of or clock.now()).replace(microsecond=0))
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "options"
        raise UserError(f"seed-demo --{field.replace('_', '-')}: {problem['msg']} (got {problem.get('input')!r})") from None


def _held(contacts: int, deals: int) -> str:
    return f"{contacts} contact{'s' * (contacts != 1)} and {deals} deal{'s' * (deals != 1)}"


def _refusal(contacts: int, deals: int) -> str:
    return (f"the store already holds {_held(contacts, deals)}; seed-demo only fills an empty store "
            "(use --if-empty to skip quietly, or point CRM_DATABASE_URL at a new database)")


def seed_demo(*, seed: int = 42, scale: float = 1.0, as_of: datetime | None = None, if_empty: bool = False,
              url: str | None = None) -> SeedResult:
    """Seed the demo book; with `if_empty`, a store that already has contacts or deals is left alone."""
    started = time.perf_counter()
    options = _options(seed, scale, as_of)
    if not inspect(get_engine(url)).has_table("contacts"):
        raise UserError("the store has no schema yet: run `python -m crm_core init-db` before seed-demo")

    def skipped(contacts: int, deals: int) -> SeedResult:
        return SeedResult(seeded=False, seed=options.seed, scale=options.scale, as_of=options.as_of, counts={},
                          seconds=time.perf_counter() - started,
                          message=f"demo data not added: the store already holds {_held(contacts, deals)}")

    with unit_of_work(url, readonly=True) as session:
        contacts, deals = book_counts(session)
    if contacts or deals:
        if if_empty:
            return skipped(contacts, deals)
        raise UserError(_refusal(contacts, deals))

    book = generate_book(options)
    with unit_of_work(url) as session:
        lock_for_seeding(session)
        contacts, deals = book_counts(session)  # another seeder may have won the race
        if contacts or deals:
            if if_empty:
                return skipped(contacts, deals)
            raise UserError(_refusal(contacts, deals))
        counts = write_book(session, book)
    seconds = time.perf_counter() - started
    shown = ", ".join(f"{n} {_LABELS.get(name, name)}" for name, n in counts.items())
    return SeedResult(seeded=True, seed=options.seed, scale=options.scale, as_of=options.as_of, counts=counts, seconds=seconds,
                      message=f"demo book seeded (seed {options.seed}, scale {options.scale:g}, as of {options.as_of:%Y-%m-%d %H:%M} UTC): "
                              f"{shown} in {seconds:.1f} s")
