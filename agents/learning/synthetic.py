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


# -- books shaped like real ones that broke the first scorer --------------------------------------
# Two real books the project was judged on are not in this repository: a telemarketing book of
# 41,188 calls in time order (a macro rate that moves with time dominates; conversion drifts from
# about 6 % in the older 70 % to about 25 % in the newer 30 %) and an online-course lead book of
# 9,240 leads (few of the demo book's fields, many categorical form fields with "Select"
# placeholders, time on the website and the last activity carry the signal). These generators
# make books of that shape, with a known signal, so the checks run on them.

_JOBS = {"admin.": 0.0, "blue-collar": -0.4, "technician": -0.1, "services": -0.3, "management": 0.0,
         "retired": 0.8, "entrepreneur": -0.2, "self-employed": -0.1, "housemaid": -0.1,
         "unemployed": 0.3, "student": 0.9, "unknown": 0.0}
_EDUCATION = ("basic.4y", "basic.6y", "basic.9y", "high.school", "professional.course", "university.degree", "unknown")
_MONTHS = ("mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def telemarketing_book(n: int = 6000, *, seed: int = 17, start: datetime = datetime(2023, 5, 1),
                       days: int = 780) -> tuple[dict[int, ContactRecord], list[Outcome]]:
    """Calls in time order; every outcome is known within two days of the call.

    The base rate moves about 4x (6 % -> 25 %) at 70 % of the book, where a macro rate
    (`attr.euribor3m`, the same for every call in a week) drops from ~4.6 to ~1. Its meaning
    flips there: within the older period a higher rate converts worse, within the newer one
    better. So does the call channel's (cellular calls convert better before, worse after). The macro rate is the same for everyone called on a day:
    it says *when* a call was made at least as much as *who* was called.
    """
    rng = random.Random(seed)
    records: dict[int, ContactRecord] = {}
    outcomes: list[Outcome] = []
    times = sorted(rng.uniform(0, days) for _ in range(n))
    for key, day in enumerate(times, start=1):
        t = (key - 1) / n
        late = t >= 0.7
        month_index = int(day // 30)
        week = int(day // 7)
        macro = (1.0 + 0.5 * math.sin(week * 1.7)) if late else (4.6 + 0.35 * math.sin(week * 1.3))
        macro = round(macro, 3)
        job = rng.choice(list(_JOBS))
        channel = "cellular" if rng.random() < (0.55 if not late else 0.75) else "telephone"
        age = int(min(90, max(18, rng.gauss(40, 11))))
        campaign = 1 + _poisson(rng, 1.6)
        previous = _poisson(rng, 0.2 if not late else 0.6)
        poutcome = "nonexistent" if previous == 0 else rng.choice(["failure", "failure", "success"])
        education = rng.choice(_EDUCATION)
        z = (math.log(0.06 / 0.94) if not late else math.log(0.25 / 0.75)) - 0.25
        z += _JOBS[job] + (0.5 if channel == "cellular" else -0.5) * (1 if not late else -1)
        z += 0.5 * (age < 25 or age > 60) - 0.18 * min(campaign - 1, 6) + (1.6 if poutcome == "success" else 0.0)
        # Within the older period a higher rate converts worse; within the newer one, better.
        z += -1.6 * (macro - 4.6) if not late else 0.9 * (macro - 1.0)
        won = rng.random() < 1 / (1 + math.exp(-z))
        entry = (start + timedelta(days=day)).replace(microsecond=0)
        attributes = {
            "attr.job": job, "attr.marital": rng.choice(["married", "single", "divorced"]), "attr.education": education,
            "attr.default": rng.choice(["no", "no", "unknown"]), "attr.contact": channel,
            "attr.month": _MONTHS[month_index % len(_MONTHS)], "attr.age": age, "attr.campaign": campaign,
            "attr.previous": previous, "attr.poutcome": poutcome, "attr.euribor3m": macro,
            "attr.emp_var_rate": round(1.1 if not late else -1.8 + 0.3 * math.sin(month_index), 2),
        }
        records[key] = ContactRecord(key, entry, {"source": "outbound call"}, attributes, [])
        outcomes.append(Outcome(key, won, entry + timedelta(hours=rng.uniform(1, 48)), entry, (("source", "outbound call"),)))
    return records, outcomes


_ORIGINS = {"Landing Page Submission": 0.0, "API": -0.3, "Lead Add Form": 2.0, "Lead Import": -0.8}
_LEAD_SOURCES = {"Google": 0.0, "Direct Traffic": -0.2, "Olark Chat": -0.6, "Organic Search": 0.0,
                 "Reference": 1.8, "Welingak Website": 2.2, "Referral Sites": -0.3}
_LAST_ACTIVITY = {"Email Opened": 0.4, "SMS Sent": 1.3, "Olark Chat Conversation": -1.2, "Page Visited on Website": -0.3,
                  "Converted to Lead": -0.9, "Email Bounced": -1.5, "Email Link Clicked": -0.3, "Form Submitted on Website": 0.0}
_OCCUPATION = {"Unemployed": -0.2, "Working Professional": 2.3, "Student": -0.4, "Select": -0.3, "Other": 0.3}
_SPECIALISATION = ("Select", "Finance Management", "Human Resource Management", "Marketing Management",
                   "Operations Management", "Business Administration", "IT Projects Management", "Media and Advertising")
_CITY = ("Select", "Mumbai", "Thane & Outskirts", "Other Cities", "Other Cities of Maharashtra", "Other Metro Cities")


def course_book(n: int = 3000, *, seed: int = 23, start: datetime = datetime(2024, 1, 8), days: int = 240,
                known_share: float = 0.7) -> tuple[dict[int, ContactRecord], list[Outcome]]:
    """Online-course leads: form fields (many "Select" placeholders), web visits, the last activity.

    Conversion ~38 %, mild drift (the lead-source mix shifts toward chat). About `known_share`
    of the leads have an outcome by the end of the book; outcomes come 1-45 days after entry.
    """
    rng = random.Random(seed)
    records: dict[int, ContactRecord] = {}
    outcomes: list[Outcome] = []
    end = start + timedelta(days=days)
    for key in range(1, n + 1):
        day = rng.uniform(0, days)
        t = day / days
        entry = (start + timedelta(days=day)).replace(microsecond=0)
        origin = rng.choices(list(_ORIGINS), weights=(50, 38, 8, 4))[0]
        sources = list(_LEAD_SOURCES)
        source = rng.choices(sources, weights=(31, 27, 12 + 15 * t, 12, 6, 2, 2))[0]
        occupation = rng.choices(list(_OCCUPATION), weights=(60, 8, 2, 28, 2))[0]
        activity = rng.choices(list(_LAST_ACTIVITY), weights=(37, 30, 10, 7, 7, 4, 3, 2))[0]
        visits = _poisson(rng, 3.4)
        minutes = 0.0 if visits == 0 else max(0.0, rng.gauss(8 * visits, 6))
        z = -1.8 + _ORIGINS[origin] + _LEAD_SOURCES[source] + _OCCUPATION[occupation] + _LAST_ACTIVITY[activity]
        z += 0.045 * min(minutes, 60) - 0.5 * (visits == 0)
        won = rng.random() < 1 / (1 + math.exp(-z))
        attributes = {
            "attr.lead_origin": origin, "attr.do_not_email": rng.random() < 0.08, "attr.total_visits": visits,
            "attr.time_on_website_min": round(minutes, 1), "attr.pages_per_visit": round(rng.uniform(1, 4), 1) if visits else 0,
            "attr.last_activity": activity, "attr.specialization": rng.choice(_SPECIALISATION),
            "attr.occupation": occupation, "attr.city": rng.choice(_CITY),
            "attr.how_did_you_hear": rng.choice(["Select", "Select", "Select", "Online Search", "Word Of Mouth", "Other"]),
        }
        records[key] = ContactRecord(key, entry, {"source": source, "country": "india"}, attributes, [])
        outcome_at = entry + timedelta(days=rng.uniform(1, 45))
        if outcome_at <= end and rng.random() < known_share / 0.85:
            outcomes.append(Outcome(key, won, outcome_at.replace(microsecond=0), entry, (("source", source.lower()),)))
    return records, outcomes
