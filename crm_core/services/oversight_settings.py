"""Oversight settings as the dashboard edits them: policies, supervised mode, calibration.

Thin wrappers over `crm_core.oversight`: it validates and audits every change; this module lets
one "Save" apply several policy rows at once and reports what changed.
"""
from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES
from crm_core import oversight
from crm_core.auth.actor import Actor
from crm_core.auth.rights import RIGHTS, ROLES
from crm_core.oversight import CalibrationRow, PolicyView, SupervisionView
from crm_core.oversight.starting_trust import TrustView


class PolicyChange(BaseModel):
    action_type: str
    threshold: float | None = None
    stakes: str | None = None
    always_ask: bool | None = None


def policies(session: Session) -> list[PolicyView]:
    # get_policies inserts the defaults on first use, so it runs in a writing unit of work.
    return oversight.get_policies(session)


def policy_changes(before: list[PolicyView], after: list[dict]) -> list[PolicyChange]:
    """Compare the table as shown with the table as edited; one change per edited row."""
    old = {p.action_type: p for p in before}
    changes = []
    for row in after:
        current = old.get(row.get("action_type"))
        if current is None:
            continue
        change = PolicyChange(action_type=current.action_type)
        if row.get("threshold") is not None and abs(float(row["threshold"]) - current.threshold) > 1e-9:
            change.threshold = float(row["threshold"])
        if row.get("stakes") and row["stakes"] != current.stakes:
            change.stakes = row["stakes"]
        if row.get("always_ask") is not None and bool(row["always_ask"]) != current.always_ask:
            change.always_ask = bool(row["always_ask"])
        if change.threshold is not None or change.stakes is not None or change.always_ask is not None:
            changes.append(change)
    return changes


def save_policies(session: Session, changes: list[PolicyChange], *, actor: Actor) -> list[PolicyView]:
    return [
        oversight.update_policy(session, c.action_type, actor=actor, threshold=c.threshold, stakes=c.stakes, always_ask=c.always_ask)
        for c in changes
    ]


def supervision(session: Session) -> list[SupervisionView]:
    return oversight.supervision(session)


def starting_trust(session: Session) -> list[TrustView]:
    """Each agent's starting trust (before people decide its proposals) and the evidence behind it."""
    return oversight.trust_views(session, list(AGENT_NAMES))


def supervise(session: Session, agent: str, *, actor: Actor, until: date | None = None, decisions: int | None = None,
              off: bool = False) -> SupervisionView:
    """Supervise an agent until the end of a day (UTC) or for a number of decisions, or end it."""
    until_at = datetime.combine(until, time.max.replace(microsecond=0)) if until is not None else None
    return oversight.set_supervised(session, agent, actor=actor, until=until_at, decisions=decisions, off=off)


class RightRow(BaseModel):
    right: str
    description: str
    rep: bool
    manager: bool
    admin: bool


def rights_table() -> list[RightRow]:
    """The rights table as the settings page shows it: one row per right, a column per role."""
    return [RightRow(right=r.name, description=r.description, **{role: role in r.roles for role in ROLES}) for r in RIGHTS]


def calibration(session: Session, *, target: float = 0.95) -> list[CalibrationRow]:
    return oversight.calibration_report(session, target=target)
