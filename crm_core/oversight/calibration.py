"""Calibration: from human verdicts on queued decisions, the lowest threshold humans agree with.

For each action type, take every queued decision a human decided (approved as proposed counts
as agreement; edited or rejected does not). For each candidate threshold t (the confidences
seen), the decisions with confidence >= t would have run alone under t: the suggestion is the
lowest t at which humans approved at least `target` of them, over at least `min_decisions`.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.oversight.policy import policy_map
from crm_core.oversight.schemas import CalibrationRow
from crm_core.oversight.views import human_verdicts


def suggest_threshold(points: list[tuple[float, bool]], *, target: float, min_decisions: int) -> tuple[float | None, int, int]:
    """(threshold, decided at it, approved at it); threshold None when none reaches the target."""
    ordered = sorted(points, key=lambda p: p[0])
    n = len(ordered)
    approved_from = [0] * (n + 1)  # approvals among ordered[i:]
    for i in range(n - 1, -1, -1):
        approved_from[i] = approved_from[i + 1] + int(ordered[i][1])
    for i, (confidence, _) in enumerate(ordered):
        if i > 0 and ordered[i - 1][0] == confidence:
            continue  # a threshold admits every decision at its confidence
        decided = n - i
        if decided < min_decisions:
            break
        if approved_from[i] / decided >= target:
            return confidence, decided, approved_from[i]
    return None, 0, 0


def calibration_report(session: Session, *, target: float = 0.95, min_decisions: int = 5) -> list[CalibrationRow]:
    """One row per action type with human verdicts, or with a policy (so every type is listed)."""
    policies = policy_map(session)
    points: dict[str, list[tuple[float, bool]]] = {}
    for decision, approved in human_verdicts(session):
        if decision.confidence is None:
            continue
        for action_type in {a.get("type") for a in decision.actions or [] if a.get("type")}:
            points.setdefault(action_type, []).append((decision.confidence, approved))
    rows = []
    for action_type in sorted(set(policies) | set(points)):
        pts = points.get(action_type, [])
        current = policies[action_type].threshold if action_type in policies else None
        approved_total = sum(1 for _, ok in pts if ok)
        suggested, decided_at, approved_at = suggest_threshold(pts, target=target, min_decisions=min_decisions)
        if not pts:
            note = "no human verdicts yet"
        elif suggested is None:
            note = (f"no threshold reaches {target:.0%} approval over at least {min_decisions} decisions "
                    f"({approved_total}/{len(pts)} approved overall); keep asking")
        else:
            note = (f"humans approved {approved_at}/{decided_at} decisions with confidence >= {suggested:.2f}"
                    + (f"; current threshold {current:.2f}" if current is not None else ""))
        rows.append(CalibrationRow(
            action_type=action_type, current_threshold=current, suggested_threshold=suggested, target=target,
            decided=len(pts), approved=approved_total, decided_at_suggested=decided_at, approved_at_suggested=approved_at,
            note=note,
        ))
    return rows
