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


def fingerprint_view(agent_name: str, ctx: BaseModel) -> dict[str, Any]:
    """The part of `ctx` a decision depends on, in a form that does not move with the clock."""
    data = ctx.model_dump(mode="json")
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
