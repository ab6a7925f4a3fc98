"""A reproducible synthetic book with a known signal: for tests, and to try the back-test.

Each contact has a hidden propensity to buy made of its source, industry and seniority; keen
contacts read the pricing page more in their first days, and reading it raises the chance
further. Converters become customers 3-40 days after entry, the others are disqualified after
20-80 days; contacts whose outcome falls after `end` are still open.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agents.learning.records import PAGE_VIEW, PRICING_VIEW, ContactRecord, Event, Outcome

SOURCES = {"referral": 1.0, "webinar": 0.5, "organic": 0.0, "ads": -0.6}
INDUSTRIES = {"software": 0.7, "retail": 0.0, "logistics": -0.3}
TITLES = {"VP Sales": 0.5, "Head of Operations": 0.3, "Analyst": -0.2, "Office Manager": -0.1}


@dataclass
class SyntheticContact:
    key: int
    entry_at: datetime
    source: str
    industry: str
    title: str
    employees: int
    plan: str                       # a custom attribute with no signal
    events: list[Event] = field(default_factory=list)
    won: bool = False
    outcome_at: datetime | None = None  # None: still open at the end of the book

    @property
    def email(self) -> str:
        return f"lead{self.key}@{self.industry}-co{self.key % 37}.example"


def synthetic_book(n: int = 300, *, start: datetime = datetime(2025, 1, 6), days: int = 300,
                   end: datetime | None = None, seed: int = 7, pricing_effect: float = 0.6) -> list[SyntheticContact]:
    rng = random.Random(seed)
    end = end or start + timedelta(days=days + 60)
    book = []
    for key in range(1, n + 1):
        entry = start + timedelta(days=rng.uniform(0, days))
        entry = entry.replace(microsecond=0)
        source = rng.choice(list(SOURCES))
        industry = rng.choice(list(INDUSTRIES))
        title = rng.choice(list(TITLES))
        z = -1.2 + SOURCES[source] + INDUSTRIES[industry] + TITLES[title] + rng.gauss(0, 0.5)
        views = _poisson(rng, 0.6 * math.exp(0.8 * z + 0.3))
        events = [Event(entry + timedelta(days=rng.uniform(0, 5)), PRICING_VIEW, "/pricing") for _ in range(views)]
        events += [Event(entry + timedelta(days=rng.uniform(0, 20)), PAGE_VIEW, "/blog/post") for _ in range(rng.randint(0, 4))]
        p = 1 / (1 + math.exp(-(z + pricing_effect * min(views, 4))))
        won = rng.random() < p
        outcome = entry + timedelta(days=rng.uniform(3, 40) if won else rng.uniform(20, 80))
        contact = SyntheticContact(key, entry, source, industry, title, rng.choice([12, 80, 400, 2500]),
                                   rng.choice(["free", "team", "pro"]), sorted(events, key=lambda e: e.at))
        if outcome <= end:
            contact.won, contact.outcome_at = won, outcome.replace(microsecond=0)
        book.append(contact)
    return book


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, prod = math.exp(-lam), 0, rng.random()
    while prod > threshold:
        k += 1
        prod *= rng.random()
    return k


def as_records(book: list[SyntheticContact]) -> tuple[dict[int, ContactRecord], list[Outcome]]:
    """The book as the learners see it (what `crm_core.contexts.lead_scoring.load_book` returns)."""
    records, outcomes = {}, []
    for c in book:
        fields = {"source": c.source, "industry": c.industry, "title": c.title, "email": c.email,
                  "employee_count": c.employees}
        records[c.key] = ContactRecord(c.key, c.entry_at, fields, {"attr.plan": c.plan}, list(c.events))
        if c.outcome_at is not None:
            outcomes.append(Outcome(c.key, c.won, c.outcome_at, c.entry_at, (("source", c.source), ("industry", c.industry))))
    return records, outcomes
