"""Combined confidence: the model's own figure, shrunk by the evidence around it.

A model grading its own certainty errs toward what looks useful, so the figure the policy
compares with its thresholds is never the model's word alone:

    combined = m * f_completeness * f_agreement * f_approval

    m               the reasoner's own confidence for this proposal, clipped to 0..1
    f_completeness  = 0.4 + 0.6 * c, where c in 0..1 is how complete the context was
                      (`agent.completeness(ctx)`, 1.0 when the agent does not say): a decision
                      made on an empty context keeps at most 40 % of the model's figure
    f_agreement     = 1.0 when the offline reasoner, run on the same context, reaches the same
                      actions; 0.6 when it disagrees; 1.0 when there is nothing to compare
                      (the offline reasoner itself, or it could not decide)
    f_approval      = (approved + t * w) / (decided + w): the human approval rate of this
                      agent's decisions of this kind (same action type), smoothed towards a
                      starting trust t held as w pseudo-decisions (`StartingTrust`). t comes from
                      evidence, found by the store (crm_core/oversight/starting_trust.py): a learned
                      model's back-test on this book, or a finished supervised period; without
                      evidence it is the cautious default t = 0.8, w = 5 (ten approvals out of ten
                      lift it to 0.93, ten rejections out of ten drop it to 0.27). A proposal
                      with several action types uses the weakest one's rate, because the policy
                      needs every action to pass.

Every factor lies in 0..1, so evidence can only lower the model's figure, never raise it above
what the model claimed; and `combined` rises with each input (m, c, agreement, approvals)
while the others stay fixed. The factors are returned next to the figure and stored on the
decision, so a reviewer can see why a 0.9 became a 0.5.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.base import Proposal

COMPLETENESS_FLOOR = 0.4
DISAGREEMENT_FACTOR = 0.6
DEFAULT_TRUST = 0.8      # no evidence yet: a proposal keeps 80 % of its figure until people decide some
PRIOR_WEIGHT = 5.0       # how many human decisions the starting trust counts for
ANY_ACTION = "*"         # key of approval stats: the agent's starting trust for kinds no one decided yet


class StartingTrust(BaseModel):
    """Where an agent's approval factor starts before people decide its proposals, and why."""

    model_config = ConfigDict(frozen=True)

    trust: float = Field(default=DEFAULT_TRUST, ge=0.0, le=1.0)
    weight: float = Field(default=PRIOR_WEIGHT, gt=0.0)
    source: str = "no evidence yet: the cautious default"


class ApprovalRecord(BaseModel):
    """Human verdicts on one kind of an agent's queued proposals, with the trust it started from."""

    model_config = ConfigDict(frozen=True)

    approved: int = Field(default=0, ge=0)
    decided: int = Field(default=0, ge=0)
    prior: StartingTrust = Field(default_factory=StartingTrust)


ApprovalStats = dict[str, tuple[int, int] | ApprovalRecord]


class AssessedProposal(Proposal):
    """A proposal after `reason()`: `confidence` is the combined figure the policy uses."""

    model_confidence: float = Field(ge=0.0, le=1.0)
    confidence_factors: dict[str, Any] = Field(default_factory=dict)


def _clip(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def as_record(approval_rate: tuple[int, int] | ApprovalRecord | None) -> ApprovalRecord:
    """A bare (approved, decided) pair starts from the cautious default."""
    if isinstance(approval_rate, ApprovalRecord):
        return approval_rate
    approved, decided = approval_rate or (0, 0)
    decided = max(0, int(decided))
    return ApprovalRecord(approved=min(max(0, int(approved)), decided), decided=decided)


def approval_factor(approval_rate: tuple[int, int] | ApprovalRecord | None) -> float:
    record = as_record(approval_rate)
    approved = min(record.approved, record.decided)
    return (approved + record.prior.trust * record.prior.weight) / (record.decided + record.prior.weight)


def combine_confidence(
    model_confidence: float,
    *,
    completeness: float,
    offline_agrees: bool | None,
    approval_rate: tuple[int, int] | ApprovalRecord | None,
) -> tuple[float, dict[str, Any]]:
    """(combined confidence in 0..1, the factors that produced it) per the module docstring."""
    m = _clip(model_confidence)
    c = _clip(completeness)
    f_completeness = COMPLETENESS_FLOOR + (1.0 - COMPLETENESS_FLOOR) * c
    f_agreement = DISAGREEMENT_FACTOR if offline_agrees is False else 1.0
    f_approval = approval_factor(approval_rate)
    combined = _clip(m * f_completeness * f_agreement * f_approval)
    record = as_record(approval_rate)
    factors = {
        "model": round(m, 4),
        "completeness": round(c, 4),
        "completeness_factor": round(f_completeness, 4),
        "offline_agrees": offline_agrees,
        "agreement_factor": round(f_agreement, 4),
        "approved": record.approved,
        "decided": record.decided,
        "starting_trust": round(record.prior.trust, 4),
        "starting_trust_source": record.prior.source,
        "approval_factor": round(f_approval, 4),
        "combined": round(combined, 4),
    }
    return combined, factors


def weakest_approval_rate(
    action_types: list[str], approval_stats: ApprovalStats | None
) -> tuple[str | None, tuple[int, int] | ApprovalRecord | None]:
    """The (action type, stats) with the lowest smoothed approval rate among `action_types`.

    A kind no one decided yet starts from the agent's starting trust (the ANY_ACTION entry).
    """
    if not action_types:
        return None, None
    stats = approval_stats or {}
    return min(((t, stats.get(t, stats.get(ANY_ACTION))) for t in dict.fromkeys(action_types)),
               key=lambda ts: approval_factor(ts[1]))
