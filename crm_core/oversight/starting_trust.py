"""Where each agent's trust starts before people decide its proposals: evidence, not a fixed prior.

The approval factor (agents/llm/confidence.py) shrinks a proposal's confidence by the human
approval rate of its kind, smoothed towards a starting trust. A fixed cautious start (0.8) queues
every learned decision of a new agent by arithmetic: the lead scorer's 0.95, already derived from
its validated skill, became 0.67 against a 0.70 threshold. So the start comes from evidence:

- learned decisions (lead scores, deal risk): the newest model snapshot's back-test on this book.
  When the model was validated on later periods with the lower end of its AUC interval at
  MIN_SKILL or more (and, for the lead scorer, calibrated: its Brier score on the newest period
  beats always guessing the base rate), the start is 1.0: the model's own figure, which already
  falls with weaker skill, is what the policy compares. Rejections still pull it down at once (two
  out of two: 0.71).
- the others: a finished supervised period. Its verdicts already count; once an action type has
  MIN_SUPERVISED_VERDICTS of them, the cautious default counts as one decision instead of five,
  so the period's own record (good or bad) decides.
- anything else, or weak evidence: the cautious default. Evidence never raises trust above what
  the back-test supports, and a model that is not used (the prior) earns nothing.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.common.compared_figures import shown_pair
from agents.llm.confidence import ANY_ACTION, ApprovalRecord, StartingTrust
from crm_core import clock
from crm_core.models import AgentSetting, ModelSnapshot
from crm_core.oversight.views import approval_stats

MIN_SKILL = 0.6                 # lower end of the validated AUC's 90 % interval needed to earn trust
MIN_SUPERVISED_VERDICTS = 10    # verdicts of one kind in a finished supervised period that stand on their own
SUPERVISED_DEFAULT_WEIGHT = 1.0
LEARNED_AGENTS = {"lead_scoring": "lead_scorer", "pipeline": "pipeline_loss"}  # agent -> snapshot kind
CAUTIOUS = StartingTrust()


class TrustView(BaseModel):
    """One agent's starting trust as the settings page states it."""

    model_config = ConfigDict(frozen=True)

    agent: str
    trust: float
    counts_as: float            # how many human decisions the start weighs
    source: str


def _newest(session: Session, agent: str, kind: str) -> ModelSnapshot | None:
    return session.scalars(
        select(ModelSnapshot).where(ModelSnapshot.agent == agent, ModelSnapshot.kind == kind)
        .order_by(ModelSnapshot.trained_at.desc(), ModelSnapshot.id.desc()).limit(1)
    ).first()


def _lead_trust(snapshot: ModelSnapshot) -> StartingTrust:
    m = snapshot.metrics or {}
    if m.get("kind") != "learned" or not snapshot.blob:
        return CAUTIOUS.model_copy(update={"source": "the lead scores come from the prior (no learned model passed its "
                                                     "back-test on this book yet): the cautious default"})
    low = (m.get("holdout_auc_interval") or [None, None])[0]
    rate = m.get("newest_base_rate") or m.get("base_rate")
    brier = m.get("holdout_brier")
    guess = rate * (1 - rate) if rate is not None else None
    if low is None or low < MIN_SKILL:
        return CAUTIOUS.model_copy(update={"source": f"the lead model's back-test on this book is weak (lower end of "
                                                     f"its AUC interval {_weak(low)}): the cautious default"})
    if brier is None or guess is None or brier >= guess:
        return CAUTIOUS.model_copy(update={"source": "the lead model ranks well on this book but its probabilities are "
                                                     "no better calibrated than the base rate: the cautious default"})
    shown_brier, shown_guess = shown_pair(brier, guess, min_digits=3)
    return StartingTrust(trust=1.0, source=(
        f"back-test on this book: the lead model ranked later periods with AUC {m.get('holdout_auc', 0):.2f} "
        f"(at least {low:.2f}) and is calibrated (Brier {shown_brier} against {shown_guess} for the base rate)"))


def _pipeline_trust(snapshot: ModelSnapshot) -> StartingTrust:
    v = snapshot.validation or {}
    if snapshot.chosen != "learned" or not v.get("usable"):
        return CAUTIOUS.model_copy(update={"source": "deal risk comes from untested prior weights (the learned ones did "
                                                     "not pass their back-test on this book): the cautious default"})
    low = v.get("low")
    if low is None or low < MIN_SKILL:
        return CAUTIOUS.model_copy(update={"source": f"the deal-risk weights' back-test on this book is weak (lower end "
                                                     f"of its AUC interval {_weak(low)}): the cautious default"})
    auc, rule = shown_pair(v.get("mean_auc", 0), v.get("rule_auc", 0), min_digits=2)
    return StartingTrust(trust=1.0, source=(
        f"back-test on this book: the deal-risk weights ranked later periods' losses with AUC {auc} "
        f"(at least {low:.2f}), better than the single rule's {rule}"))


def _weak(low: float | None) -> str:
    """'0.597, needs 0.60': as many digits as keep a value under MIN_SKILL from reading as MIN_SKILL."""
    if low is None:
        return f"not measured, needs {MIN_SKILL:.2f}"
    shown, need = shown_pair(low, MIN_SKILL, min_digits=2)
    return f"{shown}, needs {need}"


def _finished_supervision(session: Session, agent: str) -> bool:
    setting = session.get(AgentSetting, agent)
    if setting is None:
        return False
    ended_by_time = setting.supervised_until is not None and clock.now() >= setting.supervised_until
    return ended_by_time or setting.supervised_remaining == 0


def starting_trust(session: Session, agent: str) -> StartingTrust:
    """The agent's start for action types no one decided yet (the module docstring says from what)."""
    kind = LEARNED_AGENTS.get(agent)
    if kind is not None:
        snapshot = _newest(session, agent, kind)
        if snapshot is None:
            return CAUTIOUS.model_copy(update={"source": "no back-test on this book yet: the cautious default"})
        return _lead_trust(snapshot) if agent == "lead_scoring" else _pipeline_trust(snapshot)
    return CAUTIOUS


def approval_evidence(session: Session, agent: str) -> dict[str, ApprovalRecord]:
    """Per action type the human verdicts with the trust they start from; ANY_ACTION for undecided kinds."""
    start = starting_trust(session, agent)
    supervised = _finished_supervision(session, agent)
    out = {ANY_ACTION: ApprovalRecord(prior=start)}
    for action_type, (approved, decided) in approval_stats(session, agent).items():
        prior = start
        if supervised and decided >= MIN_SUPERVISED_VERDICTS and start.trust <= CAUTIOUS.trust:
            prior = StartingTrust(weight=SUPERVISED_DEFAULT_WEIGHT, source=(
                f"a finished supervised period: {approved} of {decided} approved as proposed"))
        out[action_type] = ApprovalRecord(approved=approved, decided=decided, prior=prior)
    return out


def trust_views(session: Session, agents: list[str]) -> list[TrustView]:
    """Each agent's starting trust for kinds no one decided yet, and where it came from."""
    views = []
    for agent in agents:
        start = starting_trust(session, agent)
        source = start.source
        if start is CAUTIOUS and _finished_supervision(session, agent):
            source = (f"the cautious default; its finished supervised period's record replaces it for each kind "
                      f"with {MIN_SUPERVISED_VERDICTS} or more verdicts")
        views.append(TrustView(agent=agent, trust=start.trust, counts_as=start.weight, source=source))
    return views
