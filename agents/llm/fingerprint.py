"""What a decision depends on, as a stable digest: an unchanged fingerprint needs no new decision.

A context holds values the decision cannot depend on: the moment it was built (`as_of`), figures
that decay a little every second (recency-weighted engagement), exact ages (days since a reply,
days in stage), and what the agent's own last decision wrote back (the previous score and when it
was given, the risk flag it set). Hashing the raw context would re-ask the model about every
subject on every run; the fingerprint hashes a view of the context where

- clock readings are dropped (`as_of`, the timestamps of the agent's own last decision);
- ages are bucketed by the day counts the agents' rules use (7, 10, 14, 30 days, ...), so a deal
  aging past a threshold still changes the fingerprint;
- decaying and measured figures are rounded to where a decision cannot turn on them (two
  significant digits; recency-weighted sums on a half-doubling scale);
- what the agent itself wrote last time (the previous score, the current risk flag) is left out:
  that decision is the one being reused. A person's snooze stays in.

Everything else (the subject's fields, counts, texts, the learned model's estimate and snapshot)
is kept as it is: a changed field, a new activity or a new model snapshot is a new fingerprint.

Lead scoring goes further, because its context moves with every page view while its decision
turns on a few things only (`_lead_scoring_view`). Its score is the learned model's estimate,
moved by the model call by at most 15 points for evidence the model could not weigh; its tier
and next action follow from the score and a handful of rules. So its fingerprint holds

- the estimate as its tier (the learned cut-offs, exact) and its 15-point band (0-14, 15-29,
  ...), not the exact score, probability or the points of each reason;
- web and email tracking (page and pricing-page views, opens, clicks, their recency-weighted
  sums, the pages read last) only as the agent's rules test it: the pricing page read in the
  last 7 days or not, anything logged or not, quiet for 30 days or not. Its weight on the score
  reaches the decision through the estimate;
- every act of a person exactly: a reply, a form, a demo request, a meeting, a call, an email
  sent, a download, a LinkedIn touch; and title, seniority, lifecycle stage, account, owner,
  notes, custom fields, similar contacts' outcomes and the model snapshot it was scored with;
- the owner and the senior reps without their open-task counts: a load only picks who gets a
  task, a task is proposed only when the next action changes, and that changes the fingerprint.

The bound this sets: a reused lead-scoring decision is never stale in the estimate's tier, in
the inputs of its next action or in any act of a person. Its score differs from the one a new
call would give by less than the band (15 points, the agent's AGREE_POINTS: within it, and in the
same tier, the agent counts two of its decisions as agreeing), as long as the call would move
the estimate as it did last time; the figures its reasons quote (how many pages, which pages)
may lag as much. A score the model call moved across a tier cut-off stays there while the
estimate drifts within its band: the next band or tier crossing, or any new act, asks again.
Without a model estimate in the context (the reasoner then scores the counts itself) nothing is
coarsened.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pydantic import BaseModel

# Day counts the agents' rules turn on (follow-up waits and horizons, lead inactivity, pipeline
# bands, meeting horizons): an age is replaced by the first of these it has not reached.
AGE_THRESHOLDS_DAYS: tuple[float, ...] = (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365, 730)
# The pipeline's stall rule compares time in stage with the similar-deal average at these ratios.
RATIO_THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)

_CLOCK_KEYS = frozenset({"as_of", "scored_at", "updated_at", "trained_at", "learned_as_of"})
# Per agent: top-level parts the agent's own last decision wrote back (reused, so not compared).
_OWN_OUTPUT: dict[str, frozenset[str]] = {
    "lead_scoring": frozenset({"previous"}),
    "pipeline": frozenset(),
}
# Per agent and part: keys kept from the agent's own flag (a person's snooze is new information).
_KEEP_FROM_OWN = {("pipeline", "current"): frozenset({"snoozed_until", "snooze_reason", "snoozed_by"})}


def _age_bucket(days: float) -> str:
    for limit in AGE_THRESHOLDS_DAYS:
        if days < limit:
            return f"<{limit:g}d"
    return f">={AGE_THRESHOLDS_DAYS[-1]:g}d"


def _ratio_bucket(ratio: float) -> str:
    for limit in RATIO_THRESHOLDS:
        if ratio < limit:
            return f"<{limit:g}x"
    return f">={RATIO_THRESHOLDS[-1]:g}x"


def _decaying_bucket(value: float) -> float:
    """Recency-weighted sums: two steps per doubling (a half-life-7-day sum moves one step in ~3.5 days)."""
    if value <= 0.05:
        return 0.0
    return round(2 ** (round(math.log2(value) * 2) / 2), 2)


def _two_significant(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 1 - int(math.floor(math.log10(abs(value)))))


def _is_age_key(key: str) -> bool:
    return key.startswith("days_") or key.endswith("_days") or key in {"age_days", "days"}


def _stable(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _stable(v, k) for k, v in value.items() if k not in _CLOCK_KEYS}
    if isinstance(value, list):
        return [_stable(v, key) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int) and not _is_age_key(key):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if _is_age_key(key):
            return _age_bucket(number)
        if key.endswith("_ratio"):
            return _ratio_bucket(number)
        if key.endswith("_recent"):
            return _decaying_bucket(number)
        return _two_significant(number)
    return value


def _readings(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pipeline reading counts by its band (what the model weighs); its exact value and words drift."""
    return [{"signal": r.get("signal"), "band": r.get("band")} for r in items]


# -- lead scoring -------------------------------------------------------------------------------------
# The estimate's score is kept as its band of this many points (the agent's AGREE_POINTS; a test holds
# them equal: importing the agent here would import the reasoning package from inside itself).
SCORE_BAND_POINTS = 15
# Web and email tracking: reaches the decision through the model's estimate, and through these tests.
_TRACKING_COUNTS = frozenset({
    "page_views_today", "page_views_7d", "page_views_30d", "pricing_views_today", "pricing_views_7d",
    "pricing_views_30d", "email_opens_30d", "email_clicks_30d", "total_actions", "recent_pages",
})
_TRACKING_TESTS = {"pricing_viewed_7d": "pricing_views_7d", "any_activity": "total_actions"}
# The one age the agent's rules read: a cold lead quiet this long is marked low priority (its INACTIVE_DAYS).
# How quiet a lead was before that also weighs on the score, through the estimate.
INACTIVE_DAYS = 30
_REP_LOAD = "open_tasks"


def score_band(score: int, hot_min: int, warm_min: int) -> str:
    """'warm 30-44': the tier by the learned cut-offs and the SCORE_BAND_POINTS band the score is in."""
    tier = "hot" if score >= hot_min else "warm" if score >= warm_min else "cold"
    low = score // SCORE_BAND_POINTS * SCORE_BAND_POINTS
    return f"{tier} {low}-{min(100, low + SCORE_BAND_POINTS - 1)}"


def _without_load(rep: Any) -> Any:
    return {k: v for k, v in rep.items() if k != _REP_LOAD} if isinstance(rep, dict) else rep


def _lead_scoring_view(data: dict[str, Any]) -> dict[str, Any]:
    """The lead-scoring context reduced to what its decision can turn on (see the module docstring)."""
    model = data.get("model")
    if not isinstance(model, dict):
        return data  # the reasoner scores the raw counts itself: every count matters
    data["model"] = {k: v for k, v in model.items() if k not in ("probability", "score", "factors")}
    data["model"]["band"] = score_band(int(model.get("score") or 0), int(model.get("hot_min") or 0),
                                       int(model.get("warm_min") or 0))
    engagement = data.get("engagement")
    if isinstance(engagement, dict):
        kept = {k: v for k, v in engagement.items() if k not in _TRACKING_COUNTS and not k.endswith("_recent")}
        kept.update({test: bool(engagement.get(count)) for test, count in _TRACKING_TESTS.items()})
        quiet = engagement.get("days_since_last_activity")
        kept["days_since_last_activity"] = None if quiet is None else (
            f">={INACTIVE_DAYS}d" if quiet >= INACTIVE_DAYS else f"<{INACTIVE_DAYS}d")
        data["engagement"] = kept
    data["owner"] = _without_load(data.get("owner"))
    if isinstance(data.get("senior_reps"), list):
        data["senior_reps"] = [_without_load(r) for r in data["senior_reps"]]
    return data


_AGENT_VIEWS = {"lead_scoring": _lead_scoring_view}


def fingerprint_view(agent_name: str, ctx: BaseModel) -> dict[str, Any]:
    """The part of `ctx` a decision depends on, in a form that does not move with the clock."""
    data = ctx.model_dump(mode="json")
    if agent_name in _AGENT_VIEWS:
        data = _AGENT_VIEWS[agent_name](data)
    for part in _OWN_OUTPUT.get(agent_name, ()):
        data.pop(part, None)
    for (agent, part), kept in _KEEP_FROM_OWN.items():
        if agent == agent_name and isinstance(data.get(part), dict):
            data[part] = {k: v for k, v in data[part].items() if k in kept}
    if isinstance(data.get("readings"), list):
        data["readings"] = _readings(data["readings"])
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("factors"), list):
        # A factor's words quote the decaying figure; its points say what it added to the score.
        model["factors"] = [{k: v for k, v in f.items() if k != "words"} for f in model["factors"]]
    return {"agent": agent_name, "context": _stable(data)}


def fingerprint(agent_name: str, ctx: BaseModel) -> str:
    """sha256 of the fingerprint view's canonical JSON (64 hex characters, the decisions' context_hash)."""
    canonical = json.dumps(fingerprint_view(agent_name, ctx), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
