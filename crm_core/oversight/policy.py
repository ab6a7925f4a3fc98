"""Per action type: stakes, the confidence threshold for running alone, and "always ask".

Policies live in the store (created from `defaults.DEFAULT_POLICIES` on first use) and every
change is audited with its old and new values. `evaluate` is the one place that decides whether
a decision runs by itself or waits for a human, and says exactly why; `needs_human` holds what
no stored policy can relax (an action executes, it never decides).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.common.compared_figures import compared_decimals
from crm_core import clock
from crm_core.actions import REGISTRY, ActionParams, ActionSpec
from crm_core.actions.deals import MoveDealStage, MoveDealStageParams, stage_outcome
from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.errors import NotFound, UserError
from crm_core.models import Account, Contact, Deal, Decision, Policy
from crm_core.oversight.audit import record, record_as
from crm_core.oversight.defaults import DEFAULT_POLICIES, STAKES_ORDER, DefaultPolicy, stakes_rank
from crm_core.oversight.schemas import PolicyView

# A type with no stored or default policy (a newly registered executor) asks a human.
FALLBACK_POLICY = DefaultPolicy("high", 1.0, always_ask=True)
_MANUAL_FIELD_OWNERS = {"contact": Contact, "account": Account, "deal": Deal}


def ensure_default_policies(session: Session) -> int:
    """Insert the default policy of every action type that has none yet; returns how many."""
    existing = set(session.scalars(select(Policy.action_type)))
    created = 0
    for action_type, default in DEFAULT_POLICIES.items():
        if action_type in existing:
            continue
        try:
            # A concurrent first use may insert the same row: keep theirs, not an error.
            with session.begin_nested():
                session.add(Policy(action_type=action_type, stakes=default.stakes, threshold=default.threshold,
                                   always_ask=default.always_ask, updated_at=clock.now(), updated_by="system"))
                session.flush()
        except IntegrityError:
            continue
        created += 1
    if created:
        record(session, "policy.defaults_created", actor="system", count=created)
    return created


def policy_map(session: Session) -> dict[str, Policy]:
    ensure_default_policies(session)
    return {p.action_type: p for p in session.scalars(select(Policy))}


def _view(p: Policy) -> PolicyView:
    spec = REGISTRY.get(p.action_type)
    return PolicyView(
        action_type=p.action_type, stakes=p.stakes, threshold=p.threshold, always_ask=p.always_ask,
        reversible=spec.reversible if spec else None, undo_note=spec.undo_note if spec else None,
        updated_at=p.updated_at, updated_by=p.updated_by,
    )


def get_policies(session: Session) -> list[PolicyView]:
    policies = policy_map(session)
    return [_view(policies[t]) for t in sorted(policies)]


def update_policy(
    session: Session,
    action_type: str,
    *,
    actor: Actor,
    threshold: float | None = None,
    stakes: str | None = None,
    always_ask: bool | None = None,
) -> PolicyView:
    """Change one action type's policy (the `edit_policy` right); the audit entry keeps the old and the new values."""
    require(actor, "edit_policy", doing=f"change the policy of {action_type}")
    policies = policy_map(session)
    policy = policies.get(action_type)
    if policy is None:
        raise NotFound(f"policy {action_type!r} not found; known action types: {', '.join(sorted(policies))}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"policy {action_type}: threshold {threshold} must be between 0 and 1")
    if stakes is not None and stakes not in STAKES_ORDER:
        raise UserError(f"policy {action_type}: stakes {stakes!r} must be one of {', '.join(STAKES_ORDER)}")
    old = {"threshold": policy.threshold, "stakes": policy.stakes, "always_ask": policy.always_ask}
    if threshold is not None:
        policy.threshold = float(threshold)
    if stakes is not None:
        policy.stakes = stakes
    if always_ask is not None:
        policy.always_ask = bool(always_ask)
    new = {"threshold": policy.threshold, "stakes": policy.stakes, "always_ask": policy.always_ask}
    if new != old:
        policy.updated_at = clock.now()
        policy.updated_by = actor.name
        record_as(session, "policy.updated", actor=actor, action_type=action_type, old=old, new=new)
    session.flush()
    return _view(policy)


@dataclass
class Verdict:
    auto: bool
    reasons: list[str]            # why it waits; empty when it runs alone
    passed: list[str]             # what each action cleared, for the audit log
    stakes: str
    reversible: bool
    invalid: list[str] = field(default_factory=list)  # parameter problems (a subset of reasons)

    @property
    def reason_text(self) -> str:
        if self.auto:
            return "auto-approved: " + "; ".join(self.passed) if self.passed else "auto-approved: no action proposed"
        return "queued: " + "; ".join(self.reasons)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "params"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def parse_params(spec: ActionSpec, raw: dict[str, Any], *, where: str) -> ActionParams:
    """Validate raw params against the spec; a UserError names the decision, action and field."""
    try:
        return spec.Params.model_validate(raw or {})
    except ValidationError as exc:
        raise UserError(f"{where}: parameters rejected: {validation_message(exc)}") from None


def _closing_or_reopening_a_deal(session: Session, params: MoveDealStageParams) -> str | None:
    # Won and lost close the deal and count in the win rates the pipeline learns from: a person says so.
    outcome = stage_outcome(params.to_stage)
    if outcome:
        return f"moving a deal to {outcome} always needs a human"
    deal = session.get(Deal, params.deal_id)
    if deal is not None and deal.status != "open":
        return f"deal {deal.id} is {deal.status}: reopening it needs a human"
    return None


# Rules that read an action's parameters (and the store) to say a person must look, by action type.
PARAM_RULES: dict[str, Callable[[Session, Any], str | None]] = {
    MoveDealStage.type: _closing_or_reopening_a_deal,
}


def needs_human(session: Session, spec: ActionSpec, params: ActionParams) -> str | None:
    """Why this action waits for a person whatever its confidence and its stored policy: what its
    spec declares (`asks_because`), else a rule on its parameters; None when the policy decides."""
    if spec.asks_because:
        return spec.asks_because
    rule = PARAM_RULES.get(spec.type)
    return rule(session, params) if rule else None


def manual_field_conflicts(session: Session, spec: ActionSpec, params: ActionParams) -> list[str]:
    touched = getattr(spec, "touched_fields", None)
    if touched is None:
        return []
    conflicts = []
    for ref in touched(session, params):
        model = _MANUAL_FIELD_OWNERS.get(ref.entity)
        row = session.get(model, ref.id) if model is not None else None
        if row is not None and ref.field in (row.manual_fields or []):
            conflicts.append(f"{ref.entity} {ref.id} field {ref.field!r} was set by a human")
    return conflicts


def evaluate(
    session: Session,
    decision: Decision,
    *,
    supervised_reason: str | None,
    policies: dict[str, Policy] | None = None,
) -> Verdict:
    """Run alone only if EVERY action passes and nothing else asks for a human."""
    policies = policies if policies is not None else policy_map(session)
    confidence = decision.confidence if decision.confidence is not None else 0.0
    reasons: list[str] = []
    passed: list[str] = []
    invalid: list[str] = []
    stakes_seen: list[str] = []
    reversible = True
    if supervised_reason:
        reasons.append(supervised_reason)
    if decision.escalation:
        reasons.append(f"escalated by the agent: {decision.escalation}")
    for i, action in enumerate(decision.actions or []):
        action_type = action.get("type", "?")
        label = f"action {i} ({action_type})"
        policy = policies.get(action_type)
        pol = DefaultPolicy(policy.stakes, policy.threshold, policy.always_ask) if policy else FALLBACK_POLICY
        stakes_seen.append(pol.stakes)
        spec = REGISTRY.get(action_type)
        if spec is None:
            reasons.append(f"{label}: no executor is registered for this action type")
            reversible = False
            continue
        reversible = reversible and spec.reversible
        try:
            params = parse_params(spec, action.get("params") or {}, where=label)
        except UserError as exc:
            reasons.append(str(exc))
            invalid.append(str(exc))
            continue
        problems = getattr(spec, "problems", None)
        for problem in problems(session, decision, params) if problems else []:
            reasons.append(f"{label}: {problem}")
            invalid.append(f"{label}: {problem}")
        if pol.stakes == "critical":
            reasons.append(f"{label}: critical stakes always need a human")
        elif pol.always_ask:
            reasons.append(f"{label}: policy always asks a human")
        why = needs_human(session, spec, params)
        if why:
            reasons.append(f"{label}: {why}")
        for conflict in manual_field_conflicts(session, spec, params):
            reasons.append(f"{label}: would overwrite {conflict}")
        # As many digits as it takes for the shown figures to agree: 0.699 is below 0.70, never 0.70 below 0.70.
        shown, limit = compared_decimals(confidence, pol.threshold)
        if confidence < pol.threshold:
            reasons.append(f"{label}: confidence {shown} is below the threshold {limit} ({pol.stakes} stakes)")
        else:
            passed.append(f"{action_type} confidence {shown} >= {limit} ({pol.stakes} stakes)")
    stakes = max(stakes_seen, key=stakes_rank) if stakes_seen else "low"
    return Verdict(auto=not reasons, reasons=reasons, passed=passed, stakes=stakes, reversible=reversible, invalid=invalid)
