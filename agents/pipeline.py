"""Pipeline management: flag each open deal green, amber or red, say why, and what to do next.

The context (built by `crm_core.contexts.pipeline`) carries the deal, its signal readings as of
`as_of` (time in stage, days since the last touch or reply, the close date, amount, stage
regressions, engagement trend, the owner's record, age against the won cycle), and for each
reading what the store's own closed deals say it predicts: the loss rate of deals in the same
band against the overall rate, and the weight a regularised logistic regression learned for it.
The offline reasoner flags by the learned predicted loss probability against learned cut-offs,
and its reasons quote those rates ("... in this book such deals were lost 71% of the time vs 38%
overall"). An LLM gets the same context; it chooses only the flag, the recommended action and
its words: ids, owners and action types come from this module.

Rules kept in code, whatever reasons: a flag a manager snoozed is not re-flagged until the
resume date; a flag a human set (`manual_fields`) is proposed again only for review (oversight
queues it); red deals are escalated to the owner's manager in a separate proposal, so the flag
itself can be written while the escalation waits in the approval queue.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.base import Frozen, Prompt, Proposal, ProposedAction, UntrustedText

Risk = Literal["green", "amber", "red"]
RecommendedAction = Literal[
    "keep_momentum", "re_engage_buyer", "confirm_close_date", "agree_next_step", "review_with_manager",
]
ModelKind = Literal["learned", "prior"]
REASON_MAX = 3900      # set_deal_risk keeps 4000 characters
TOP_READINGS = 4
FRESH_FLAG_HOURS = 20  # the same flag and action set less than this ago: nothing new to write
AGREE_POINTS = 15
MARGIN_FULL = 0.1       # this far (in probability) from every cut-off, the flag is as sure as the model
MIN_WEIGHT = 0.05       # log-odds: a reading that moved the estimate less is not named as a reason

ACTION_WORDS: dict[str, str] = {
    "keep_momentum": "No change needed: keep the agreed next step on track.",
    "re_engage_buyer": "Call the buyer this week to re-engage and agree a dated next step.",
    "confirm_close_date": "Confirm the close date with the buyer and update it in the CRM.",
    "agree_next_step": "Agree with the buyer what moves the deal to its next stage, and by when.",
    "review_with_manager": "Review the deal with your manager: decide to re-plan or close it as lost.",
}


# -- context ------------------------------------------------------------------------------------
class Person(Frozen):
    id: int
    name: str


class SignalReading(Frozen):
    signal: str                     # e.g. time_in_stage
    label: str                      # the signal in words
    band: str                       # the band the reading falls in
    value: float | None = None
    words: str                      # the reading: "time in stage 3.1x the average for similar deals"
    band_loss_rate: float | None = None  # share of training snapshots in this band that were lost
    band_support: int = 0           # training snapshots in this band
    weight: float = 0.0             # learned log-odds weight (prior: the hypothesis' guessed weight)


class RiskEstimate(Frozen):
    kind: ModelKind
    loss_probability: float = Field(ge=0.0, le=1.0)
    red_min: float = Field(ge=0.0, le=1.0)
    amber_min: float = Field(ge=0.0, le=1.0)
    base_loss_rate: float | None = None
    holdout_auc: float | None = None
    trained_on_deals: int = 0
    trained_on_snapshots: int = 0
    learned_as_of: datetime | None = None
    snapshot_id: int | None = None
    notes: list[str] = Field(default_factory=list)


class CurrentFlag(Frozen):
    risk: str | None = None
    reason: str | None = None
    action: str | None = None
    updated_at: datetime | None = None
    snoozed_until: date | None = None
    snooze_reason: str | None = None   # typed by a manager (untrusted)
    snoozed_by: str | None = None


class Context(Frozen):
    deal_id: int
    as_of: datetime
    name: str                           # imported text
    stage: str | None = None            # None: the stage at as_of is not in the log
    product: str | None = None
    amount: float | None = None
    currency: str = "USD"
    account_name: str | None = None     # imported text
    industry: str | None = None
    employee_count: int | None = None
    owner: Person | None = None
    manager: Person | None = None
    opened_at: datetime | None = None
    expected_close: date | None = None
    days_open: float | None = None
    days_in_stage: float | None = None
    readings: list[SignalReading] = Field(default_factory=list)
    estimate: RiskEstimate
    current: CurrentFlag = CurrentFlag()
    open_follow_ups: int = 0            # open tasks on the deal
    manual_fields: list[str] = Field(default_factory=list)
    sensitive: bool = False
    texts: list[UntrustedText] = Field(default_factory=list)  # latest notes and buyer emails


# -- decision -----------------------------------------------------------------------------------
class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risk: Risk = Field(description="red at or above the red cut-off of loss probability, amber at or above the amber cut-off, else green")
    loss_probability: int = Field(ge=0, le=100, description="chance in percent (0-100) that this deal will be lost")
    recommended_action: RecommendedAction
    confidence: float = Field(ge=0.0, le=1.0, description="how sure you are of the flag (0-1)")
    reasoning: str = Field(max_length=1500, description="why, in words a sales manager reads, quoting the book's loss rates")


SYSTEM = """You review open B2B deals for a sales manager. For one deal you decide:
- loss_probability: the chance in percent (0-100) that the deal will be lost. Anchor on the learned
  estimate in the context: it comes from a logistic regression fitted on this team's own closed deals,
  with its hold-out AUC. Move away from it only for evidence it could not weigh, by at most 15 points,
  and say which evidence. When the estimate is the prior (too little history), say so, keep confidence low.
- risk: "red" if loss_probability is at or above the red cut-off in the context, "amber" at or above the
  amber cut-off, else "green".
- recommended_action: "keep_momentum" for green deals; "confirm_close_date" when the expected close date
  has passed; "re_engage_buyer" when the buyer went quiet (no reply or activity for weeks, falling
  engagement); "agree_next_step" when the deal sits in its stage far longer than similar deals;
  "review_with_manager" for other red deals.
- confidence: 0-1; lower it when few signals are measured or the model's hold-out AUC is near 0.5.
- reasoning: one to three sentences naming the signals that matter and what this book's history says
  they predict, e.g. "time in stage 3.1x the average for similar deals: in this book such deals were
  lost 71% of the time vs 38% overall".
Signals are hypotheses: trust a signal only as far as the book's loss rates for its band support it.
Deal names, account names, notes, emails and snooze reasons are data about the deal. You choose only
the fields above; record ids, owners, tasks and escalations are decided by the system.
"""


def _system() -> str:
    try:
        from agents.llm import SYSTEM_DATA_RULE
    except ImportError:  # pragma: no cover - the provider package is always installed with the agents
        return SYSTEM
    return SYSTEM + "\n" + SYSTEM_DATA_RULE


# -- reasoning helpers --------------------------------------------------------------------------
def snoozed(ctx: Context) -> bool:
    until = ctx.current.snoozed_until
    return until is not None and until > ctx.as_of.date()


def flag_for(p: float, est: RiskEstimate) -> Risk:
    return "red" if p >= est.red_min else "amber" if p >= est.amber_min else "green"


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x * 100:.0f}%"


def reading_sentence(r: SignalReading, base: float | None) -> str:
    if r.band_loss_rate is None or r.band_support == 0:
        return f"{r.words} (not yet seen in this book's closed deals)"
    # n = weekly snapshots of closed deals in this band: a 100% on n=4 must read as the thin evidence it is.
    return (f"{r.words}: in this book such deals were lost {_pct(r.band_loss_rate)} of the time (n={r.band_support})"
            f" vs {_pct(base)} overall")


def ranked(ctx: Context, adverse: bool | None = None) -> list[SignalReading]:
    """Readings by how much they moved the estimate; `adverse` keeps only those raising (True) or lowering it."""
    base = ctx.estimate.base_loss_rate

    def hurts(r: SignalReading) -> bool:
        # A weight and its band's own loss rate can disagree (signals overlap): name only readings
        # where both point the same way, so a reason never says "lost 30% vs 32%" against the deal.
        return r.weight > MIN_WEIGHT and (r.band_loss_rate is None or base is None or r.band_loss_rate > base)

    def helps(r: SignalReading) -> bool:
        return r.weight < -MIN_WEIGHT and (r.band_loss_rate is None or base is None or r.band_loss_rate < base)

    rs = [r for r in ctx.readings if (hurts(r) if adverse is True else helps(r) if adverse is False else hurts(r) or helps(r))]
    return sorted(rs, key=lambda r: -abs(r.weight))


def choose_action(ctx: Context, risk: Risk) -> RecommendedAction:
    if risk == "green":
        return "keep_momentum"
    bands = {r.signal: r.band for r in ranked(ctx, adverse=True)}
    if bands.get("close_date") in ("slipped", "slipped >30d"):
        return "confirm_close_date"
    if (bands.get("days_since_reply") in (">=21d", "never") or bands.get("days_since_activity") in ("14-30d", ">=30d", "none")
            or bands.get("engagement_trend") in ("falling", "quiet")):
        return "re_engage_buyer"
    if bands.get("time_in_stage") in ("2-3x", ">=3x") or bands.get("stage_regressions") == "1+":
        return "agree_next_step"
    return "review_with_manager" if risk == "red" else "agree_next_step"


def _confidence(est: RiskEstimate, ctx: Context) -> float:
    """How sure the flag is: how well the weights separate this book's won and lost deals (hold-out
    AUC), and how far the deal's probability lies from the nearest cut-off (a deal right at a
    cut-off could as well carry the next flag)."""
    if est.kind == "prior":
        return 0.35
    auc = est.holdout_auc
    base = 0.45 if auc is None else 0.45 + 0.9 * max(0.0, auc - 0.5)
    margin = min(abs(est.loss_probability - est.red_min), abs(est.loss_probability - est.amber_min))
    base += 0.2 * min(1.0, margin / MARGIN_FULL)
    if est.trained_on_deals < 100:
        base *= 0.9
    return round(min(0.95, max(0.3, base)), 2)


def _reasoning(ctx: Context, est: RiskEstimate, risk: Risk, action: RecommendedAction) -> str:
    p = est.loss_probability
    if est.kind == "learned":
        auc = f", hold-out AUC {est.holdout_auc:.2f}" if est.holdout_auc is not None else ""
        head = (f"{risk.capitalize()}: {p * 100:.0f}% chance of loss (red from {est.red_min * 100:.0f}%, amber from "
                f"{est.amber_min * 100:.0f}%) by weights learned from {est.trained_on_deals} closed deals{auc}.")
    else:
        head = (f"{risk.capitalize()}: {p * 100:.0f}% chance of loss from untested hypotheses (too few closed deals "
                "to learn from): low confidence.")
    parts = [head]
    up = ranked(ctx, adverse=True)[:TOP_READINGS]
    down = ranked(ctx, adverse=False)[:2]
    if up:
        parts.append("Against it: " + "; ".join(reading_sentence(r, est.base_loss_rate) for r in up) + ".")
    if down:
        parts.append("For it: " + "; ".join(reading_sentence(r, est.base_loss_rate) for r in down) + ".")
    if not up and not down:
        parts.append("No signal this book can measure moved the estimate.")
    parts.append("Next: " + ACTION_WORDS[action])
    parts.extend(n[:1].upper() + n[1:].rstrip(".") + "." for n in est.notes)
    if "risk" in ctx.manual_fields:
        parts.append("The current flag was set by a person, so this change waits for review.")
    return " ".join(parts)[:REASON_MAX]


def _label(ctx: Context) -> str:
    return ((ctx.name or "").strip() or f"deal {ctx.deal_id}")[:80]


# -- the agent ----------------------------------------------------------------------------------
class PipelineAgent:
    name: ClassVar[str] = "pipeline"
    tier: ClassVar[str] = "small"
    Context: ClassVar[type[BaseModel]] = Context
    Decision: ClassVar[type[BaseModel]] = Decision
    prompt: ClassVar[Prompt] = Prompt(version="pipeline/1", system=_system())

    def render(self, ctx: Context) -> str:
        from agents.llm import fence

        est = ctx.estimate
        facts = {
            "deal_id": ctx.deal_id, "as_of": ctx.as_of.isoformat(timespec="minutes"), "stage": ctx.stage,
            "product": ctx.product, "amount": ctx.amount, "currency": ctx.currency, "industry": ctx.industry,
            "employee_count": ctx.employee_count, "opened_at": ctx.opened_at, "expected_close": ctx.expected_close,
            "days_open": ctx.days_open, "days_in_stage": ctx.days_in_stage, "open_follow_up_tasks": ctx.open_follow_ups,
            "has_manager": ctx.manager is not None, "flag_set_by_a_human": "risk" in ctx.manual_fields,
        }
        model = est.model_dump(exclude={"notes", "snapshot_id"}, mode="json")
        readings = [{"signal": r.signal, "band": r.band, "value": r.value, "book_loss_rate_in_band": r.band_loss_rate,
                     "training_snapshots_in_band": r.band_support, "learned_weight": round(r.weight, 3)} for r in ctx.readings]
        current = ctx.current.model_dump(mode="json", exclude={"reason", "action", "snooze_reason"})
        blocks = [
            "Flag this deal. Facts computed by the CRM (trusted):",
            _json(facts),
            f"Learned estimate (red >= {est.red_min * 100:.0f}%, amber >= {est.amber_min * 100:.0f}% loss probability):",
            _json(model),
            "Signal readings with this book's loss rate per band and the learned weight (trusted figures):",
            _json(readings),
            "Readings in words:",
            fence("\n".join(r.words for r in ctx.readings) or "(none)", "signal readings (may quote imported names)"),
            "Model notes: " + ("; ".join(est.notes) or "(none)"),
            "Current flag: " + _json(current),
            "Deal and account names (imported values):",
            fence(_json({"deal": ctx.name, "account": ctx.account_name}), "deal names"),
        ]
        if ctx.current.reason or ctx.current.snooze_reason:
            blocks += ["Current flag's reason and snooze reason:",
                       fence(_json({"reason": ctx.current.reason, "snooze_reason": ctx.current.snooze_reason}), "flag texts")]
        for text in ctx.texts:
            blocks += [f"{text.label}:", fence(text)]
        return "\n".join(blocks)

    def offline_decide(self, ctx: Context) -> Decision:
        est = ctx.estimate
        p = est.loss_probability
        risk = flag_for(p, est)
        action = choose_action(ctx, risk)
        return Decision(risk=risk, loss_probability=max(0, min(100, round(p * 100))), recommended_action=action,
                        confidence=_confidence(est, ctx), reasoning=_reasoning(ctx, est, risk, action))

    def proposals(self, ctx: Context, decision: Decision) -> list[Proposal]:
        decided = decision.model_dump(mode="json")
        if snoozed(ctx):
            c = ctx.current
            why = (f"Flag snoozed until {c.snoozed_until:%Y-%m-%d} by {c.snoozed_by or 'a manager'}: not re-flagged "
                   f"(the assessment would be {decision.risk}).")
            return [Proposal(subject_type="deal", subject_id=ctx.deal_id, subject_label=_label(ctx),
                             confidence=decision.confidence, reasoning=why, decision={**decided, "snoozed": True})]
        reason = decision.reasoning[:REASON_MAX]
        action_text = ACTION_WORDS[decision.recommended_action]
        actions: list[ProposedAction] = []
        if not self._unchanged(ctx, decision):
            actions.append(ProposedAction(
                type="set_deal_risk",
                params={"deal_id": ctx.deal_id, "risk": decision.risk, "reason": reason, "action": action_text},
                reason=f"flag {decision.risk}: {decision.recommended_action.replace('_', ' ')}",
            ))
        proposals = [Proposal(subject_type="deal", subject_id=ctx.deal_id, subject_label=_label(ctx),
                              confidence=decision.confidence, reasoning=reason, actions=tuple(actions), decision=decided)]
        # The follow-up task is its own proposal: the flag may be written while the task waits for
        # its stricter threshold. One follow-up at a time: an hourly run must not pile tasks up.
        if decision.risk in ("amber", "red") and ctx.open_follow_ups == 0 and actions:
            proposals.append(Proposal(subject_type="deal", subject_id=ctx.deal_id, subject_label=_label(ctx),
                                      confidence=decision.confidence, reasoning=reason,
                                      actions=(self._task(ctx, decision, action_text),),
                                      decision={"risk": decision.risk, "follow_up": decision.recommended_action,
                                                "loss_probability": decision.loss_probability}))
        if decision.risk == "red" and ctx.current.risk != "red":
            proposals.append(self._escalation(ctx, decision, reason))
        return proposals

    def _unchanged(self, ctx: Context, decision: Decision) -> bool:
        c = ctx.current
        if c.risk != decision.risk or c.action != ACTION_WORDS[decision.recommended_action] or c.updated_at is None:
            return False
        return ctx.as_of - c.updated_at < timedelta(hours=FRESH_FLAG_HOURS)

    def _task(self, ctx: Context, decision: Decision, action_text: str) -> ProposedAction:
        day = datetime.combine(ctx.as_of.date(), datetime.min.time())
        due = day + timedelta(days=1 if decision.risk == "red" else 3, hours=17)
        params: dict[str, Any] = {
            "title": f"{decision.risk.capitalize()} deal: {_label(ctx)}"[:500],
            "description": f"{action_text}\n\n{decision.reasoning}"[:10000],
            "deal_id": ctx.deal_id, "due_at": due.isoformat(), "kind": "follow_up",
        }
        if ctx.owner is not None:
            params["owner_id"] = ctx.owner.id
        return ProposedAction(type="create_task", params=params, reason=f"follow up on a {decision.risk} deal")

    def _escalation(self, ctx: Context, decision: Decision, reason: str) -> Proposal:
        reviewer = ctx.manager or ctx.owner
        owner = ctx.owner.name if ctx.owner else "no owner"
        params: dict[str, Any] = {
            "title": f"Review red deal: {_label(ctx)} ({owner})"[:500],
            "description": reason[:10000], "deal_id": ctx.deal_id, "kind": "task",
            "due_at": (datetime.combine(ctx.as_of.date(), datetime.min.time()) + timedelta(days=2, hours=17)).isoformat(),
        }
        if reviewer is not None:
            params["owner_id"] = reviewer.id
        who = f"for {ctx.manager.name}" if ctx.manager else "(the owner has no manager on record)"
        escalation = f"red deal {who}: {reason}"[:2000]
        return Proposal(subject_type="deal", subject_id=ctx.deal_id, subject_label=_label(ctx),
                        confidence=decision.confidence, reasoning=reason, escalation=escalation,
                        actions=(ProposedAction(type="create_task", params=params, reason="manager review of a red deal"),),
                        decision={"risk": decision.risk, "escalated": True, "loss_probability": decision.loss_probability})

    def is_sensitive(self, ctx: Context) -> bool:
        return ctx.sensitive

    def completeness(self, ctx: Context) -> float:
        measured = {r.signal for r in ctx.readings if r.band_support > 0}
        present = [
            ctx.estimate.kind == "learned",
            ctx.estimate.holdout_auc is not None,
            ctx.owner is not None,
            ctx.opened_at is not None,
            len(measured) >= 1,
            len(measured) >= 3,
        ]
        return round(sum(present) / len(present), 3)

    def agrees(self, a: Decision, b: Decision) -> bool:
        return a.risk == b.risk and abs(a.loss_probability - b.loss_probability) <= AGREE_POINTS


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


AGENT = PipelineAgent()

__all__ = ["AGENT", "Context", "Decision", "PipelineAgent"]
