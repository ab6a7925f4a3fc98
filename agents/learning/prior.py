"""The transparent prior: what the scorer says when the store's history is too thin to learn from.

Every weight is written here, in log-odds, from the usual B2B playbook: intent (pricing pages,
demo requests, replies, meetings) counts most, seniority a little, silence counts against. It
starts from the store's own conversion rate when there is one. The learned scorer also borrows
these weights for engagement its history never showed (a book imported without a web log has
never seen a pricing-page view, yet a contact reading pricing today should move).
"""
from __future__ import annotations

import math
from typing import Any

from agents.learning.explain import Contribution, Estimate, with_points

DEFAULT_BASE_RATE = 0.15

# feature: (log-odds per unit, most units counted)
PER_UNIT: dict[str, tuple[float, float]] = {
    "pricing_views_today": (0.35, 4),
    "pricing_recent": (0.25, 6),
    "web_recent": (0.04, 15),
    "content_recent": (0.2, 4),
    "email_replies_30d": (0.5, 3),
    "email_clicks_30d": (0.2, 4),
    "email_opens_30d": (0.04, 10),
    "meetings_90d": (0.6, 2),
    "meetings_booked": (0.8, 1),
    "demo_requests_30d": (1.0, 1),
    "forms_30d": (0.25, 3),
    "calls_30d": (0.15, 3),
}
SENIORITY = {"c_level": 0.4, "vp": 0.35, "director": 0.25, "manager": 0.1, "individual": -0.1}
RECENCY = ((2.0, 0.2), (30.0, 0.0), (90.0, -0.6), (math.inf, -1.0))  # (days since last activity up to, effect)
NEVER_ACTIVE = -0.3
FREE_EMAIL = -0.2
SIMILAR_WEIGHT = 0.5  # how far the prior leans toward the recent rate of similar contacts


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def engagement_effects(row: dict[str, Any], only: set[str] | None = None) -> list[Contribution]:
    out = []
    for name, (per_unit, cap) in PER_UNIT.items():
        if only is not None and name not in only:
            continue
        value = float(row.get(name) or 0.0)
        if value > 0:
            out.append(Contribution(name, row.get(name), per_unit * min(value, cap), source="prior"))
    return out


def prior_estimate(row: dict[str, Any], base_rate: float | None = None, reason: str | None = None) -> Estimate:
    base = base_rate if base_rate is not None and 0 < base_rate < 1 else DEFAULT_BASE_RATE
    log_odds = _logit(base)
    parts = engagement_effects(row)
    level = row.get("seniority")
    if level in SENIORITY:
        parts.append(Contribution("seniority", level, SENIORITY[level], source="prior"))
    days = row.get("days_since_last_activity")
    if days is None:
        parts.append(Contribution("days_since_last_activity", None, NEVER_ACTIVE, source="prior"))
    else:
        effect = next(e for limit, e in RECENCY if float(days) <= limit)
        if effect:
            parts.append(Contribution("days_since_last_activity", days, effect, source="prior"))
    if row.get("email_kind") == "free":
        parts.append(Contribution("email_kind", "free", FREE_EMAIL, source="prior"))
    for segment in ("source", "industry"):
        lift = row.get(f"similar_{segment}_lift_90d")
        if lift is not None:
            effect = SIMILAR_WEIGHT * float(lift)
            if abs(effect) > 0.05:
                parts.append(Contribution(f"similar_{segment}_lift_90d", lift, effect, source="prior"))
    total = log_odds + sum(c.effect for c in parts)
    notes = ["too little won/lost history to learn from: a transparent prior scored this contact"]
    if reason:
        notes = [reason]
    return Estimate(
        probability=1.0 / (1.0 + math.exp(-total)),
        log_odds=total,
        contributions=tuple(with_points(parts, total)),
        kind="prior",
        notes=tuple(notes),
    )
