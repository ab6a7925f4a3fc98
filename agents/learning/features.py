"""A contact at a moment -> one typed feature row: {name: number | category | None}.

Every field the store holds on a contact goes in: the store's own columns (source, title,
account firmographics), custom attributes typed as they come (numbers stay numbers, the rest are
categories), and engagement from the event log counted in windows and weighted by recency
(half-life `HALF_LIFE_DAYS`), so a pricing-page view today weighs more than one last month.
Only events at or before the moment are read.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any, get_type_hints

from agents.learning import records as r
from agents.learning.records import ContactRecord

HALF_LIFE_DAYS = 7.0
DAY = timedelta(days=1)

# Store columns copied from the contact and its account (the builder fills these names).
STATIC_FIELDS = ("source", "industry", "country", "employee_count", "annual_revenue")

FREE_MAIL = re.compile(
    r"(^|\.)(gmail|googlemail|yahoo|ymail|hotmail|outlook|live|msn|aol|icloud|me|mac|gmx|web|proton|protonmail|"
    r"mail|yandex|zoho|qq|163|126|uol|bol|terra|ig|free|orange|laposte|libero|t-online)\.[a-z.]+$"
)

_SENIORITY = (
    ("c_level", re.compile(r"\b(ceo|cfo|cto|coo|cmo|cio|cro|cpo|chief|founder|co-founder|cofounder|owner|president|"
                           r"managing director|partner|proprietor|s[oó]cio|diretor geral)\b", re.I)),
    ("vp", re.compile(r"\b(vp|svp|evp|vice[- ]president|head of)\b", re.I)),
    ("director", re.compile(r"\b(director|diretor|directeur|head)\b", re.I)),
    ("manager", re.compile(r"\b(manager|gerente|lead|supervisor|coordinator|principal)\b", re.I)),
)
_FUNCTION = (
    ("executive", re.compile(r"\b(ceo|chief executive|founder|owner|president|managing director|general manager)\b", re.I)),
    ("sales", re.compile(r"\b(sales|account executive|business development|bdr|sdr|revenue|commercial)\b", re.I)),
    ("marketing", re.compile(r"\b(marketing|growth|brand|demand|content|cmo)\b", re.I)),
    ("engineering", re.compile(r"\b(engineer|engineering|developer|cto|architect|devops|software|technical)\b", re.I)),
    ("it", re.compile(r"\b(it|cio|information|systems|infrastructure|security)\b", re.I)),
    ("finance", re.compile(r"\b(finance|cfo|financial|controller|accounting|accountant|treasur)\w*", re.I)),
    ("operations", re.compile(r"\b(operations|coo|ops|supply|logistics|procurement|purchasing)\b", re.I)),
    ("people", re.compile(r"\b(hr|human resources|people|talent|recruit)\w*", re.I)),
)


def seniority(title: str | None) -> str | None:
    if not title or not title.strip():
        return None
    for name, pattern in _SENIORITY:
        if pattern.search(title):
            return name
    return "individual"


def job_function(title: str | None) -> str | None:
    if not title or not title.strip():
        return None
    for name, pattern in _FUNCTION:
        if pattern.search(title):
            return name
    return "other"


def email_kind(email: str | None) -> str:
    if not email or "@" not in email:
        return "none"
    domain = email.rsplit("@", 1)[1].strip().lower()
    return "free" if FREE_MAIL.search(domain) else "corporate"


@dataclass(frozen=True)
class Engagement:
    """What the contact did up to a moment, counted in windows and weighted by recency."""

    page_views_today: int = 0
    page_views_7d: int = 0
    page_views_30d: int = 0
    pricing_views_today: int = 0
    pricing_views_7d: int = 0
    pricing_views_30d: int = 0
    downloads_30d: int = 0
    email_opens_30d: int = 0
    email_clicks_30d: int = 0
    email_replies_30d: int = 0
    emails_sent_30d: int = 0
    meetings_90d: int = 0
    meetings_booked: int = 0          # booked, not yet held at the moment
    calls_30d: int = 0
    forms_30d: int = 0
    demo_requests_30d: int = 0
    linkedin_30d: int = 0
    # Recency-weighted sums: each event counts 0.5 ** (age in days / HALF_LIFE_DAYS).
    web_recent: float = 0.0
    pricing_recent: float = 0.0
    content_recent: float = 0.0
    email_recent: float = 0.0
    meeting_recent: float = 0.0
    intent_recent: float = 0.0        # forms and demo requests
    days_since_last_activity: float | None = None  # the contact's own last action; None = never active
    total_actions: int = 0
    last_stage: str | None = None     # the last stage logged in the activity log

    def as_features(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("last_stage")
        return values


def engagement(record: ContactRecord, at: datetime) -> Engagement:
    counts: dict[str, float] = {}
    last_action: datetime | None = None
    last_stage: str | None = None
    today = at.date()

    def add(name: str, amount: float = 1.0) -> None:
        counts[name] = counts.get(name, 0.0) + amount

    for event in record.events_until(at):
        age = (at - event.at) / DAY
        weight = 0.5 ** (age / HALF_LIFE_DAYS)
        kind = event.kind
        if kind in r.CONTACT_ACTIONS:
            last_action = event.at
            add("total_actions")
        if kind == r.STAGE_CHANGE:
            last_stage = event.detail or last_stage
            continue
        if kind in (r.PAGE_VIEW, r.PRICING_VIEW):
            add("web_recent", weight)
            if event.at.date() == today:
                add("page_views_today")
            if age < 7:
                add("page_views_7d")
            if age < 30:
                add("page_views_30d")
            if kind == r.PRICING_VIEW:
                add("pricing_recent", weight)
                if event.at.date() == today:
                    add("pricing_views_today")
                if age < 7:
                    add("pricing_views_7d")
                if age < 30:
                    add("pricing_views_30d")
        elif kind == r.CONTENT_DOWNLOAD:
            add("content_recent", weight)
            if age < 30:
                add("downloads_30d")
        elif kind in (r.EMAIL_OPENED, r.EMAIL_CLICKED, r.EMAIL_REPLIED):
            # A reply says more than a click, a click more than an open.
            add("email_recent", weight * {r.EMAIL_OPENED: 0.2, r.EMAIL_CLICKED: 0.5, r.EMAIL_REPLIED: 1.0}[kind])
            if age < 30:
                add({r.EMAIL_OPENED: "email_opens_30d", r.EMAIL_CLICKED: "email_clicks_30d",
                     r.EMAIL_REPLIED: "email_replies_30d"}[kind])
        elif kind == r.EMAIL_SENT:
            if age < 30:
                add("emails_sent_30d")
        elif kind == r.MEETING:
            add("meeting_recent", weight)
            if age < 90:
                add("meetings_90d")
        elif kind == r.MEETING_BOOKED:
            add("meeting_recent", weight)
            add("meetings_booked")
        elif kind == r.CALL:
            if age < 30:
                add("calls_30d")
        elif kind in (r.FORM_SUBMIT, r.DEMO_REQUEST):
            add("intent_recent", weight * (2.0 if kind == r.DEMO_REQUEST else 1.0))
            if age < 30:
                add("forms_30d")
                if kind == r.DEMO_REQUEST:
                    add("demo_requests_30d")
        elif kind == r.LINKEDIN_MESSAGE:
            if age < 30:
                add("linkedin_30d")
    ints = {f for f, t in Engagement.__annotations__.items() if t == "int"}
    values: dict[str, Any] = {k: (int(v) if k in ints else round(v, 4)) for k, v in counts.items()}
    days_since = None if last_action is None else round((at - last_action) / DAY, 3)
    return Engagement(**values, days_since_last_activity=days_since, last_stage=last_stage)


def _typed(value: Any) -> Any:
    """Custom attribute values as a learner can use them: numbers, booleans as 0/1, else text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, list | tuple | set):
        parts = sorted(str(v).strip().lower() for v in value if v is not None and str(v).strip())
        return ", ".join(parts) or None
    if isinstance(value, dict):
        return None  # nested structures carry no single value to learn from
    text = str(value).strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return 1.0
    if lowered in ("false", "no"):
        return 0.0
    try:
        number = float(text.replace(",", "")) if re.fullmatch(r"-?[\d,]*\.?\d+(e-?\d+)?", text, re.I) else None
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        return number
    return lowered


def static_features(record: ContactRecord) -> dict[str, Any]:
    f = record.fields
    row: dict[str, Any] = {}
    for name in ("source", "industry", "country"):
        value = f.get(name)
        row[name] = str(value).strip().lower() if value not in (None, "") else None
    for name in ("employee_count", "annual_revenue"):
        value = f.get(name)
        row[name] = float(value) if value is not None else None
    title = f.get("title")
    row["seniority"] = seniority(title)
    row["job_function"] = job_function(title)
    row["email_kind"] = email_kind(f.get("email"))
    row["has_phone"] = 1.0 if f.get("phone") else 0.0
    for key, value in record.attributes.items():
        if isinstance(value, list | tuple | set):
            # A list (a tech stack, tags) is one yes/no feature per item: "uses Salesforce" is what predicts.
            for item in value:
                text = str(item).strip().lower()[:40] if item is not None else ""
                if text:
                    row[f"{key}:{text}"] = 1.0
            continue
        row[key] = _typed(value)
    return row


def feature_row(record: ContactRecord, at: datetime, timeline=None) -> dict[str, Any]:
    """Every feature of `record` as it stood at `at` (nothing after `at` is read)."""
    row = static_features(record)
    eng = engagement(record, at)
    row.update(eng.as_features())
    row["stage_logged"] = eng.last_stage
    row["age_days"] = round(max(0.0, (at - record.entry_at) / DAY), 3)
    if timeline is not None:
        for segment in ("source", "industry"):
            row[f"similar_{segment}_lift_90d"] = timeline.lift(segment, row.get(segment), at)
    return row


# Engagement features by name: the prior and the explanations know them, and the lead-scoring
# context declares its engagement fields from them (`engagement_fields`).
ENGAGEMENT_FEATURES = tuple(n for n in Engagement.__annotations__ if n != "last_stage")
# Computed from what happened up to the snapshot (the event log, the contact's age), not read from
# a field as it is now: a value written at the outcome cannot reach them.
TIMED_FEATURES = frozenset({*ENGAGEMENT_FEATURES, "age_days", "stage_logged"})
# Values that stand for an empty store field (a contact without a phone, without an email).
ABSENT_VALUES: dict[str, Any] = {"has_phone": 0.0, "email_kind": "none"}


def engagement_fields() -> dict[str, tuple[Any, Any]]:
    """Each engagement feature with its type and default, as a typed model of them declares it."""
    types = get_type_hints(Engagement)
    defaults = {f.name: f.default for f in fields(Engagement)}
    return {name: (types[name], defaults[name]) for name in ENGAGEMENT_FEATURES}
