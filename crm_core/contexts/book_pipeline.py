"""The per-deal pipeline agent's book block: the learned deal-risk model in figures (validation, base
loss rate, every band's loss rate and weight), how a flag's colour is set, worked examples (closed
deals as they stood two weeks before closing, and the flag the model gives them), who reviews a red
deal, the rules the CRM holds a flag to, the policy, and people's verdicts on past flags.

The model's summary is read from the model the run uses (the stored snapshot in a live run), and
the examples from the deals closed before its training cut-off, so both change when the model does;
the verdicts are read as of the start of the day. Signal bands are the CRM's own labels ("2-3x",
"slipped"), figures are counts and rates, and the size line is one amount of the book: no name,
stage, product, owner or record id, and no deal of a sensitive record (see crm_core.contexts.book for
what a block may hold). The whole-pipeline review has no block.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from agents.base import BookBlock, BookSection
from agents.pipeline import ACTION_WORDS, FRESH_FLAG_HOURS, THIN_SUPPORT
from agents.pipeline.routing import RED_DAYS_FOR_MANAGER, TOP_SHARE, DealSize
from agents.pipeline.signals import (
    DEFAULT_AMBER_SHARE,
    DEFAULT_RED_SHARE,
    FOLD_MIN_AUC,
    PRIOR_AMBER,
    PRIOR_BASE_LOSS,
    PRIOR_RED,
    PRIOR_WEIGHTS,
    SIGNAL_LABELS,
    SIGNAL_NAMES,
    Book,
    DealHistory,
    Reading,
    RiskModel,
    prior_flag,
    prior_probability,
    read_signals,
)
from crm_core.contexts.book import (
    AGENT_ACTIONS,
    BOOK_VERSION,
    day_start,
    pct,
    policy_rows,
    policy_section,
    screened,
    verdict_section,
)
from crm_core.contexts.privacy import Refs, load_index

AGENT = "pipeline"
EXAMPLES_PER_OUTCOME = 12
REFERENCE_PER_OUTCOME = 50       # closed deals the flag table is counted on, each way
EXAMPLE_LEAD = timedelta(days=14)  # examples show a deal as it stood this long before it closed

INTRO = (
    "About this team's pipeline. Everything below was computed by the CRM from the team's own closed and open "
    "deals and its rules. It is the same for every deal: use it to judge the one deal in the user message (how "
    "far to trust the learned estimate, what each of its signal readings says in this book). It holds no names, "
    "stage names or record ids."
)


def pipeline_block(session: Session, prepared: Any, *, as_of: datetime, size: DealSize | None,
                   notes: list[str]) -> BookBlock:
    """The block for a run with `prepared` (crm_core.contexts.pipeline.PreparedPipeline).

    `size`: any open deal's size (they share the currency and the line of the largest quarter);
    `notes`: the model's notes, the ones every estimate of the run carries.
    """
    model: RiskModel | None = prepared.model
    # Closed deals as the model could know them: before its training cut-off, else before today.
    anchor = min(model.cutoff, as_of) if model is not None else day_start(as_of)
    sections = (
        _model_section(model, notes) if model is not None else _prior_section(prepared.fallback_reason, notes),
        _bands_section(model) if model is not None else _prior_weights_section(),
        _colour_section(model),
        _examples_section(session, prepared.book, model, anchor),
        _routing_section(size),
        _rules_section(),
        policy_section(policy_rows(session, AGENT_ACTIONS[AGENT])),
        verdict_section(session, AGENT, before=day_start(as_of), describe=_describe_verdict),
    )
    return BookBlock.make(agent=AGENT, version=f"{AGENT}/{BOOK_VERSION}", intro=INTRO, sections=sections)


# -- the model --------------------------------------------------------------------------------------
def _model_section(m: RiskModel, notes: list[str]) -> BookSection:
    lines = [
        f"A logistic regression (regularisation C={m.c:g}) learned from {m.deals} deals closed before "
        f"{m.cutoff:%Y-%m-%d}, seen while open in {m.snapshots} weekly snapshots, each taken at least "
        f"{m.horizon_days:.0f} days before that date and counted as lost when its deal was lost.",
        f"Base loss rate: {pct(m.base_loss)} of those snapshots were of deals later lost (the \"overall\" rate a "
        "band's rate is compared with).",
    ]
    if m.holdout_auc is not None:
        folds = ", ".join(f"{a:.2f}" for a in m.fold_aucs) or "none"
        low = f", 90 % interval from {m.holdout_auc_low:.2f}" if m.holdout_auc_low is not None else ""
        rule = (f"; the single rule (time in stage against similar deals, else age against the won cycle) scored "
                f"{m.rule_auc:.2f}" if m.rule_auc is not None else "")
        lines.append(f"Validated on later periods of this book, each learned only from what came before it: AUC "
                     f"{folds} per period, weighted mean {m.holdout_auc:.2f}{low}{rule}. 0.5 is chance, 1.0 a perfect "
                     f"ranking; the weights are used only at a mean of {FOLD_MIN_AUC} or more with the interval above "
                     "0.5 and the single rule beaten.")
    else:
        lines.append("Not yet validated on a later period of this book.")
    lines.append(f"A deal's chance of loss = 1 / (1 + e^-(z)), z = {m.intercept:+.3f} plus the weights of the bands "
                 "its readings fall in (the table below).")
    lines += [f"Note: {n}." for n in notes]
    return BookSection(title="The learned deal-risk model", lines=tuple(lines))


def _prior_section(reason: str | None, notes: list[str]) -> BookSection:
    lines = [
        f"Why: {reason or 'too few closed deals to learn from'}.",
        f"Every estimate comes from untested hypotheses: a base loss rate of {pct(PRIOR_BASE_LOSS)} moved by the guessed "
        "weights below. They are not measured on this book: keep confidence low and say the estimate is an early guess.",
    ]
    lines += [f"Note: {n}." for n in notes if n != reason]
    return BookSection(title="No learned deal-risk model yet", lines=tuple(lines))


def _bands_section(m: RiskModel) -> BookSection:
    """Every band the model learned a weight for, by signal: its share lost, its support and its weight."""
    weights = dict(zip(m.columns, (float(w) for w in m.coef), strict=True))
    lines = [f"Per band: the share of training snapshots in it that were lost (vs {pct(m.base_loss)} overall), how many "
             f"snapshots that is (under {THIN_SUPPORT} is thin evidence), and the learned weight (log-odds; above 0 "
             "raises the risk). A band not listed was never seen in the closed deals."]
    for signal in SIGNAL_NAMES:
        # The most common band first: the bands of one signal have no order their labels share.
        bands = sorted((b for s, b in m.columns if s == signal),
                       key=lambda b: (-(m.stats[(signal, b)].snapshots if (signal, b) in m.stats else 0), b))
        if not bands:
            continue
        cells = []
        for band in bands:
            stat = m.stats.get((signal, band))
            rate = pct(stat.rate) if stat is not None else "unknown"
            cells.append(f"{band} lost {rate} of {stat.snapshots if stat else 0}, weight {weights[(signal, band)]:+.2f}")
        lines.append(f"- {SIGNAL_LABELS[signal]}: " + "; ".join(cells))
    return BookSection(title="What each signal's band says in this book", lines=tuple(lines))


def _prior_weights_section() -> BookSection:
    lines = ["The guessed weights (log-odds added to the base; a band not listed adds nothing):"]
    for signal in SIGNAL_NAMES:
        cells = [f"{band} {w:+.1f}" for (s, band), w in PRIOR_WEIGHTS.items() if s == signal]
        if cells:
            lines.append(f"- {SIGNAL_LABELS[signal]}: " + "; ".join(cells))
    return BookSection(title="What the early guess weighs", lines=tuple(lines))


# -- worked examples ----------------------------------------------------------------------------------
def _examples_section(session: Session, book: Book, model: RiskModel | None, anchor: datetime) -> BookSection:
    """The newest closed deals, lost and won, as they stood two weeks before they closed: their bands,
    the chance of loss the model (or the early guess) gives them and the flag that makes; then the flags
    of a larger set against how those deals ended. Bands and outcomes only: the deals' ids stay here,
    for the privacy screen, and a deal of a sensitive record is left out."""
    closed = sorted(book.closed_before(anchor), key=lambda d: (d.closed_at, d.deal_id), reverse=True)
    private = _private(session, [d.deal_id for d in closed])
    lost = [d for d in closed if d.outcome == "lost" and d.deal_id not in private][:REFERENCE_PER_OUTCOME]
    won = [d for d in closed if d.outcome == "won" and d.deal_id not in private][:REFERENCE_PER_OUTCOME]
    seen = {d.deal_id: _estimate(book, model, d) for d in lost + won}
    chosen = sorted(lost[:EXAMPLES_PER_OUTCOME] + won[:EXAMPLES_PER_OUTCOME], key=lambda d: (d.closed_at, d.deal_id),
                    reverse=True)
    kept = screened(session, [({"deal": {d.deal_id}}, _example_line(d, *seen[d.deal_id])) for d in chosen])
    by = "the learned model" if model is not None else "the early guess"
    head = (f"The newest {EXAMPLES_PER_OUTCOME} deals lost and {EXAMPLES_PER_OUTCOME} won that closed before "
            f"{anchor:%Y-%m-%d}, newest first, each as it stood {EXAMPLE_LEAD.days} days before it closed (or when it "
            f"opened): its readings as signal=band, the chance of loss {by} gives it, and the flag that makes.")
    lines = [head, *kept] if kept else [head, "(no closed deal to show)"]
    if seen:
        lines.append(_flag_table([(d.outcome == "lost", seen[d.deal_id][2]) for d in lost + won], model is not None))
    return BookSection(title="Worked examples: closed deals (bands and outcomes only)", lines=tuple(lines))


def _private(session: Session, deal_ids: list[int]) -> set[int]:
    """Deals that belong to, or log, a record marked sensitive (as the context screen finds them)."""
    refs = Refs()
    for deal_id in deal_ids:
        refs.add("deal", deal_id)
    index = load_index(session, refs)
    return set() if index.empty else set(index.deals)


def _estimate(book: Book, model: RiskModel | None, deal: DealHistory) -> tuple[list[Reading], float, str]:
    at = max(deal.began, deal.closed_at - EXAMPLE_LEAD)
    readings = read_signals(deal, at, book.norms(at))
    if model is None:
        p = prior_probability(readings)
        return readings, p, prior_flag(p)
    p = float(model.predict([readings])[0])
    return readings, p, model.flag(p)


def _example_line(deal: DealHistory, readings: list[Reading], p: float, flag: str) -> str:
    days = max(0, round((deal.closed_at - deal.began) / timedelta(days=1)))
    outcome = "LOST" if deal.outcome == "lost" else "won"
    bands = ", ".join(f"{r.signal}={r.band}" for r in readings) or "no signal measured"
    return f"- {outcome} after {days} days open | {bands} | chance of loss {p:.0%}, {flag}"


def _flag_table(rows: list[tuple[bool, str]], learned: bool) -> str:
    by_flag: dict[str, list[bool]] = {"red": [], "amber": [], "green": []}
    for lost, flag in rows:
        by_flag[flag].append(lost)
    cells = "; ".join(f"{flag} {sum(x)} of {len(x)} lost" for flag, x in by_flag.items() if x)
    fit = (" The model learned from these deals, so this shows its fit, not its validation." if learned else "")
    return (f"The {len(rows)} newest closed deals by the flag they would have had {EXAMPLE_LEAD.days} days before "
            f"closing: {cells}.{fit}")


# -- flags, routing and rules -----------------------------------------------------------------------
def _colour_section(m: RiskModel | None) -> BookSection:
    if m is None:
        line = (f"Red at a chance of loss of {pct(PRIOR_RED)} or more, amber at {pct(PRIOR_AMBER)} or more, else green "
                "(fixed cut-offs of the early guess).")
    else:
        line = (f"Red at a chance of loss of {m.red_min:.1%} or more (the riskiest {DEFAULT_RED_SHARE:.0%} of the "
                f"training snapshots), amber at {m.amber_min:.1%} or more (the next {DEFAULT_AMBER_SHARE:.0%}), else green.")
    return BookSection(title="How a flag's colour is set", lines=(
        line,
        "The colour follows from the chance of loss you give: the user message has the learned estimate for the deal.",
    ))


def _routing_section(size: DealSize | None) -> BookSection:
    if size is None or size.top_quarter_from is None or size.open_deals_with_amount == 0:
        line = ("This book records no amounts on open deals it can compare (or no exchange rate for them), so size "
                "sends no red deal to the manager: only time does.")
    else:
        deals = f"{size.open_deals_with_amount} open deal{'s' if size.open_deals_with_amount != 1 else ''}"
        line = (f"Today the largest quarter of this book's {deals} with an amount starts at "
                f"{size.top_quarter_from:,.0f} {size.currency} (amounts converted to {size.currency}).")
    return BookSection(title="Who reviews a red deal (the CRM decides; you do not)", lines=(
        f"- A red deal goes to the owner's manager when its amount is among the largest {TOP_SHARE:.0%} of the open "
        f"deals' amounts, or when it has been red for {RED_DAYS_FOR_MANAGER} days or more, whatever its size; once per "
        "run of red flags.",
        "- Any other red deal stays with its owner: its follow-up task is the owner's review of it.",
        f"- {line}",
    ))


def _rules_section() -> BookSection:
    actions = [f"  - {name}: \"{words}\"" for name, words in ACTION_WORDS.items()]
    return BookSection(title="The rules the CRM holds every flag to", lines=(
        "- A flag a manager snoozed is not changed before the snooze ends.",
        "- A flag a person set is proposed again only for review.",
        f"- The same flag and next step set less than {FRESH_FLAG_HOURS} hours ago are not written again.",
        "- An amber or red deal with no open follow-up task gets one for its owner: due the next day at 17:00 for red, "
        "in three days for amber.",
        "- The next step the owner reads on the card, by recommended action:",
        *actions,
    ))


def _describe_verdict(decision: dict[str, Any]) -> str:
    if decision.get("kind") == "review":
        kind = str(decision.get("pattern_kind") or "")
        return {"rep_stalls_in_stage": "pipeline pattern: one rep's deals stall in one stage",
                "value_stuck_in_stage": "pipeline pattern: open value stuck in one stage"}.get(kind, "pipeline review")
    parts = [f"{decision['risk']} flag" if decision.get("risk") else "flag"]
    if decision.get("loss_probability") is not None:
        parts.append(f"chance of loss {decision['loss_probability']}%")
    action = decision.get("recommended_action") or decision.get("follow_up")
    if action:
        parts.append(f"next step {str(action).replace('_', ' ')}")
    if decision.get("escalated"):
        parts.append(f"review by the {decision.get('review_by') or 'manager'}")
    return ", ".join(parts)


__all__ = ["pipeline_block"]
