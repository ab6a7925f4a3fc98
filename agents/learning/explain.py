"""Feature contributions -> words a rep reads: "read the pricing page 3 times today (+14 points)".

Contributions are in log-odds; a sentence reports them as score points: how far the score
would fall back if that one feature were at its typical value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_VALUE_CHARS = 40


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: Any
    effect: float       # log-odds this feature added (negative: it lowered the score)
    points: int = 0     # the same in score points at the final score
    words: str = ""
    source: str = "learned"  # learned | prior (a feature history could not teach)

    @property
    def sentence(self) -> str:
        sign = "+" if self.points >= 0 else "-"
        return f"{self.words} ({sign}{abs(self.points)} points)"


@dataclass(frozen=True)
class Estimate:
    probability: float          # calibrated chance of converting
    log_odds: float
    contributions: tuple[Contribution, ...] = ()
    kind: str = "learned"       # learned | prior
    notes: tuple[str, ...] = field(default_factory=tuple)

    def top(self, n: int = 5) -> list[Contribution]:
        return sorted(self.contributions, key=lambda c: -abs(c.effect))[:n]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def with_points(contributions: list[Contribution], final_log_odds: float) -> list[Contribution]:
    p = _sigmoid(final_log_odds)
    out = []
    for c in contributions:
        points = round(100 * (p - _sigmoid(final_log_odds - c.effect)))
        out.append(Contribution(c.feature, c.value, c.effect, points, c.words or describe(c.feature, c.value), c.source))
    return out


def _n(value: Any) -> int:
    return int(round(float(value or 0)))


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "\u2026"


_WINDOW = {"today": "today", "7d": "in the last 7 days", "30d": "in the last 30 days", "90d": "in the last 90 days"}


def describe(feature: str, value: Any) -> str:
    """One phrase for one feature at one value."""
    v = value
    if feature.startswith("pricing_views_"):
        n, when = _n(v), _WINDOW[feature.rsplit("_", 1)[1]]
        return f"read the pricing page {_plural(n, 'time')} {when}" if n else f"has not read the pricing page {when}"
    if feature.startswith("page_views_"):
        n, when = _n(v), _WINDOW[feature.rsplit("_", 1)[1]]
        return f"viewed {_plural(n, 'page')} {when}" if n else f"no page views {when}"
    simple_counts = {
        "downloads_30d": ("downloaded {} in the last 30 days", "piece of content", "pieces of content", "no downloads in the last 30 days"),
        "email_opens_30d": ("opened {} in the last 30 days", "email", None, "opened no email in the last 30 days"),
        "email_clicks_30d": ("clicked {} in the last 30 days", "email link", None, "clicked no email link in the last 30 days"),
        "email_replies_30d": ("replied {} in the last 30 days", "time", None, "has not replied in the last 30 days"),
        "emails_sent_30d": ("was sent {} by reps in the last 30 days", "email", None, "was sent no email in the last 30 days"),
        "meetings_90d": ("had {} in the last 90 days", "meeting", None, "had no meeting in the last 90 days"),
        "meetings_booked": ("has {} booked", "meeting", None, "has no meeting booked"),
        "calls_30d": ("had {} in the last 30 days", "call", None, "had no call in the last 30 days"),
        "forms_30d": ("submitted {} in the last 30 days", "form", None, "submitted no form in the last 30 days"),
        "demo_requests_30d": ("asked for a demo {} in the last 30 days", "time", None, "has not asked for a demo"),
        "linkedin_30d": ("exchanged {} in the last 30 days", "LinkedIn message", None, "no LinkedIn messages in the last 30 days"),
        "total_actions": ("{} logged in all", "action", None, "no actions logged"),
    }
    if feature in simple_counts:
        template, one, many, none = simple_counts[feature]
        n = _n(v)
        return template.format(_plural(n, one, many)) if n else none
    recent = {
        "pricing_recent": "pricing-page views", "web_recent": "site visits", "content_recent": "content downloads",
        "email_recent": "email opens, clicks and replies", "meeting_recent": "meetings",
        "intent_recent": "form submissions and demo requests",
    }
    if feature in recent:
        return (f"recent {recent[feature]} (recency-weighted {float(v):.1f})" if v
                else f"no recent {recent[feature]}")
    if feature == "days_since_last_activity":
        if v is None:
            return "has never been active"
        d = float(v)
        if d < 1:
            return f"was active {max(1, round(d * 24))} hours ago"
        return f"no activity for {_plural(round(d), 'day')}"
    if feature == "age_days":
        return f"in the book for {_plural(round(float(v or 0)), 'day')}"
    if v is None:
        label = feature.removeprefix("attr.").removeprefix("account.").replace("_", " ")
        return f"{label} unknown"
    if feature == "seniority":
        return {"c_level": "a C-level or founder title", "vp": "a VP title", "director": "a director title",
                "manager": "a manager title", "individual": "an individual-contributor title"}.get(str(v), f"seniority {v}")
    if feature == "job_function":
        return f"works in {v}"
    if feature == "email_kind":
        return {"free": "uses a free email address", "corporate": "uses a company email address",
                "none": "has no email address"}.get(str(v), f"email {v}")
    if feature == "has_phone":
        return "has a phone number" if v else "no phone number"
    if feature == "employee_count":
        return f"{_n(v):,} employees at the account"
    if feature == "annual_revenue":
        return f"account revenue {float(v):,.0f}"
    if feature in ("source", "industry"):
        return f"{feature} is {_short(v)}"
    if feature == "country":
        return f"based in {_short(v)}"
    if feature == "stage_logged":
        return f"reached stage {_short(v)}"
    if feature.startswith("similar_") and feature.endswith("_lift_90d"):
        segment = feature.removeprefix("similar_").removesuffix("_lift_90d")
        ratio = math.exp(float(v))
        if abs(float(v)) < 0.1:
            return f"contacts with the same {segment} converted as often as others in the last 90 days"
        how = f"{ratio:.1f}x as often as" if ratio >= 1 else f"{1 / ratio:.1f}x less often than"
        return f"contacts with the same {segment} converted {how} others in the last 90 days (odds)"
    if feature.startswith(("attr.", "account.")) and ":" in feature:
        name, item = feature.split(":", 1)
        owner = "account " if name.startswith("account.") else ""
        has = "includes" if v else "does not include"
        return f"{owner}{name.split('.', 1)[1]} {has} {_short(item)}"
    if feature.startswith("attr."):
        return f"{feature.removeprefix('attr.')} is {_short(_fmt(v))}"
    if feature.startswith("account."):
        return f"account {feature.removeprefix('account.')} is {_short(_fmt(v))}"
    return f"{feature} is {_short(_fmt(v))}"


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
