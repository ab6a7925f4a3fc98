"""Feature contributions -> words a rep reads: "read the pricing page 3 times today (+14 points)".

Contributions are in log-odds; a sentence reports them as score points: how far the score
would fall back if that one feature were at its typical value. For the learned scorer that is
the value of the book's typical lead (the training rows' average, in the model's own scale: see
`Vectorizer.typical_numbers`); for the prior it is having none of it (no pricing views, no phone).

A reason is listed on the side its sign says, so its words must point the same way. Words that
carry a direction ("read the pricing page", "no phone number", "converted 2.2x as often as
others") and disagree with their sign are compared with the typical lead instead ("viewed 1 page
in the last 30 days, fewer than a typical lead here"); when that comparison disagrees too (a
model that learned "more is worse" for this book), the reason is left out rather than listed
against its own words.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
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
    typical: float | None = None  # the value `effect` is measured against, when it is a number

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


def with_points(contributions: list[Contribution], final_log_odds: float,
                typical: Mapping[str, float] | None = None) -> list[Contribution]:
    """Each contribution in score points, with words that agree with its sign (see the module
    docstring); one whose words cannot agree is left out. `typical`: feature -> the number its
    effect is measured against (the learned scorer's typical lead)."""
    p = _sigmoid(final_log_odds)
    out = []
    for c in contributions:
        points = round(100 * (p - _sigmoid(final_log_odds - c.effect)))
        base = c.typical if c.typical is not None else (typical or {}).get(c.feature)
        words = c.words or agreeing_words(c.feature, c.value, c.effect, base)
        if words is None:
            continue
        out.append(Contribution(c.feature, c.value, c.effect, points, words, c.source, base))
    return out


# -- which way words point --------------------------------------------------------------------------
# Counts of what a lead did: more reads as better news. Reps' own emails are what the team did,
# not the lead, so their words carry no direction.
_COUNT_PREFIXES = ("pricing_views_", "page_views_")
_LEAD_COUNTS = frozenset({
    "downloads_30d", "email_opens_30d", "email_clicks_30d", "email_replies_30d", "meetings_90d", "meetings_booked",
    "calls_30d", "forms_30d", "demo_requests_30d", "linkedin_30d", "total_actions",
})
_RECENT = {
    "pricing_recent": "pricing-page views", "web_recent": "site visits", "content_recent": "content downloads",
    "email_recent": "email opens, clicks and replies", "meeting_recent": "meetings",
    "intent_recent": "form submissions and demo requests",
}
NEUTRAL_LIFT = 0.1   # |log-odds| under which similar contacts "converted as often as others"
RECENT_DAYS = 7      # under this many days since the last activity, the words carry no direction


def _is_lift(feature: str) -> bool:
    return feature.startswith("similar_") and feature.endswith("_lift_90d")


def _is_count(feature: str) -> bool:
    return feature.startswith(_COUNT_PREFIXES) or feature in _LEAD_COUNTS


def better_when(feature: str) -> int:
    """+1 when a rep reads more of the feature as better news, -1 when less is better, 0 when neither."""
    if _is_count(feature) or feature in _RECENT or _is_lift(feature) or feature == "has_phone":
        return 1
    if feature == "days_since_last_activity":
        return -1
    return 0


def words_point(feature: str, value: Any) -> int:
    """Which way `describe(feature, value)` reads: +1 good news, -1 bad news, 0 neither."""
    if _is_count(feature):
        return 1 if _n(value) else -1
    if feature in _RECENT:
        return 1 if value else -1
    if feature == "days_since_last_activity":
        if value is None:
            return -1
        d = float(value)
        return 1 if d < 1 else 0 if round(d) < RECENT_DAYS else -1
    if _is_lift(feature):
        return 0 if value is None or abs(float(value)) < NEUTRAL_LIFT else (1 if float(value) > 0 else -1)
    if feature == "has_phone":
        return 1 if value else -1
    if feature == "email_kind":
        return {"corporate": 1, "free": -1, "none": -1}.get(str(value), 0)
    return 0


def _versus_typical(feature: str, value: Any, typical: float | None) -> int:
    """+1 when the value is better news than the typical lead's, -1 when worse, 0 when not known."""
    way = better_when(feature)
    if not way or typical is None or value is None or isinstance(value, str):
        return 0
    diff = float(value) - typical
    return 0 if diff == 0 else way * (1 if diff > 0 else -1)


def _typical_clause(feature: str, side: int) -> str:
    if feature == "days_since_last_activity":
        return "more recently than a typical lead here" if side > 0 else "longer ago than a typical lead here"
    if _is_lift(feature):
        return "more than for a typical lead here" if side > 0 else "less than for a typical lead here"
    if _is_count(feature):
        return "more than a typical lead here" if side > 0 else "fewer than a typical lead here"
    return "more than a typical lead here" if side > 0 else "less than a typical lead here"


def agreeing_words(feature: str, value: Any, effect: float, typical: float | None = None) -> str | None:
    """`describe` words that read the way `effect` points, or None when no honest words do.

    Words without a direction fit either side; words pointing against the effect get the
    comparison with the typical lead that the effect measures, when that comparison agrees.
    """
    words = describe(feature, value)
    side = 1 if effect > 0 else -1 if effect < 0 else 0
    pointing = words_point(feature, value)
    if not side or pointing == side:
        return words
    if _versus_typical(feature, value, typical) == side:
        return f"{words}, {_typical_clause(feature, side)}"
    return words if pointing == 0 else None


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
    if feature in _RECENT:
        if not v:
            return f"no recent {_RECENT[feature]}"
        weight = f"{float(v):.1f}" if round(float(v), 1) else "under 0.1"
        return f"recent {_RECENT[feature]} (recency-weighted {weight})"
    if feature == "days_since_last_activity":
        if v is None:
            return "has never been active"
        d = float(v)
        if d < 1:
            hours = max(1, round(d * 24))
            return f"was active {_plural(hours, 'hour')} ago"
        if round(d) < RECENT_DAYS:
            return f"was last active {_plural(round(d), 'day')} ago"
        return f"no activity for {_plural(round(d), 'day')}"
    if feature == "age_days":
        return f"in the book for {_plural(round(float(v or 0)), 'day')}"
    if _is_lift(feature) and v is None:
        segment = feature.removeprefix("similar_").removesuffix("_lift_90d")
        return f"no {segment} known to compare recent conversions with"
    if feature.startswith(("attr.", "account.")) and ":" in feature:
        name, item = feature.split(":", 1)
        has = "includes" if v else "does not include"
        return f"{_name(name)} {has} {_short(item)}"
    if v is None:
        return f"{_name(feature)} unknown"
    if feature == "seniority":
        return {"c_level": "a C-level or founder title", "vp": "a VP title", "director": "a director title",
                "manager": "a manager title", "individual": "an individual-contributor title"}.get(str(v), f"seniority {v}")
    if feature == "job_function":
        return {"it": "works in IT", "other": "works in another function"}.get(str(v), f"works in {v}")
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
        return f"{feature} is {_short(_spaced(v))}"
    if feature == "country":
        return f"based in {_short(v)}"
    if feature == "stage_logged":
        return f"reached stage {_short(v)}"
    if _is_lift(feature):
        segment = feature.removeprefix("similar_").removesuffix("_lift_90d")
        ratio = math.exp(float(v))
        if abs(float(v)) < NEUTRAL_LIFT:
            return f"contacts with the same {segment} converted as often as others in the last 90 days"
        how = f"{ratio:.1f}x as often as" if ratio >= 1 else f"{1 / ratio:.1f}x less often than"
        return f"contacts with the same {segment} converted {how} others in the last 90 days (odds)"
    return f"{_name(feature)} is {_short(_fmt(v))}"


def _name(feature: str) -> str:
    """An imported attribute's name as words: 'account.tech_stack' -> 'account tech stack'."""
    owner = "account " if feature.startswith("account.") else ""
    return owner + _spaced(feature.removeprefix("attr.").removeprefix("account."))


def _spaced(value: Any) -> str:
    return str(value).replace("_", " ")


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
