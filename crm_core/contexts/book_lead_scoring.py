"""Lead scoring's book block: the learned model in figures, the policy, and closed leads as examples.

Sections (see crm_core.contexts.book for what a block may hold):
- the model: which candidate was chosen and how it validated on later periods of this book, the
  base rate it is calibrated to, the tier cut-offs; or, with no learned model, why, and the
  transparent prior's weights;
- what it weighs: each feature's share of the model's weight and what it does to the score of
  an otherwise average lead (probed on the model itself, so it holds for trees as for lines);
- how similar leads converted: outcomes per source and per industry in the 90 days before;
- worked examples: the newest closed leads, converted and not, with non-personal fields only, their
  signals a week before the outcome was known, and the score the model gives that row;
- the policy and people's verdicts (shared with the other agents).

Everything is read as the store stood when the model was trained (the snapshot's time), so the
block changes when the model does and not with every new activity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from agents.base import BookBlock, BookSection
from agents.lead_scoring import PRIOR_HOT_MIN, PRIOR_WARM_MIN
from agents.learning import prior
from agents.learning.features import feature_row
from agents.learning.prior import prior_estimate
from agents.learning.scorer import LeadScorer
from agents.learning.timeline import OutcomeTimeline
from agents.learning.vectorize import MISSING, OTHER
from crm_core.contexts.book import (
    AGENT_ACTIONS,
    BOOK_VERSION,
    BlockCache,
    day_start,
    pct,
    policy_rows,
    policy_section,
    screened,
    store_key,
    verdict_section,
)
from crm_core.contexts.lead_book import load_records, raw_outcomes
from crm_core.models import Account, Contact

AGENT = "lead_scoring"
TOP_FEATURES = 30
VALUES_PER_FEATURE = 8
PROBED_VALUES = 40                 # a category's values measured (the strongest VALUES_PER_FEATURE are shown)
EXAMPLES_PER_OUTCOME = 15
REFERENCE_PER_OUTCOME = 50         # closed leads the weights are measured on, each way
EXAMPLE_LEAD = timedelta(days=7)   # examples show a lead as it stood this long before its outcome was known
SEGMENT_MIN_CLOSED = 5
SEGMENTS_PER_FIELD = 12
_CACHE = BlockCache()

INTRO = (
    "About this team's book of leads. Everything below was computed by the CRM from the team's own records, "
    "as they stood when the lead model was last trained. It is the same for every lead: use it to judge "
    "the one lead in the user message (how far to trust the model's estimate, which signals count in this "
    "book, what leads like this one did). The examples hold no names, contact details or record ids."
)


def lead_scoring_block(session: Session, prepared: Any, *, as_of: datetime) -> BookBlock:
    """The block for a run scored by `prepared` (crm_core.contexts.lead_scoring.PreparedScoring)."""
    anchor = min(prepared.trained_at or as_of, as_of)
    policies = tuple(policy_rows(session, AGENT_ACTIONS[AGENT]))
    verdicts_before = day_start(as_of)
    # Marking a record sensitive must take its lead out of the examples at once: the set is in the key.
    private = frozenset(_sensitive_contacts(session))
    key = (store_key(session), prepared.snapshot_id, prepared.data_hash, anchor, policies, verdicts_before, private)
    return _CACHE.get_or_build(key, lambda: _build(session, prepared, anchor, policies, verdicts_before, private))


def _build(session: Session, prepared: Any, anchor: datetime, policies: tuple, verdicts_before: datetime,
           private: frozenset[int]) -> BookBlock:
    scorer: LeadScorer | None = prepared.scorer
    base = _base_rate(prepared)
    reference = _closed_leads(session, prepared, anchor, private)
    sections = [
        _model_section(prepared, base) if scorer is not None else _prior_section(prepared, base),
        _weights_section(scorer, base, reference) if scorer is not None else _prior_weights_section(base),
        _segments_section(session, prepared.timeline, anchor),
        _examples_section(session, prepared, anchor, reference),
        policy_section(policies),
        verdict_section(session, AGENT, before=verdicts_before, describe=_describe_verdict),
    ]
    return BookBlock.make(agent=AGENT, version=f"{AGENT}/{BOOK_VERSION}", intro=INTRO, sections=tuple(sections))


def _base_rate(prepared: Any) -> float:
    scorer = prepared.scorer
    if scorer is not None:
        report = scorer.report
        rate = report.newest_base_rate if report.newest_base_rate is not None else report.base_rate
    else:
        rate = prepared.base_rate
    return rate if rate is not None and 0 < rate < 1 else prior.DEFAULT_BASE_RATE


def _points(effect: float, base: float) -> int:
    """Log-odds added to a lead at the base rate, in score points."""
    logit = math.log(base / (1 - base))
    return round(100 * (1 / (1 + math.exp(-(logit + effect))) - base))


def _signed(points: int) -> str:
    return f"{points:+d}"


# -- the model --------------------------------------------------------------------------------------
def _model_section(prepared: Any, base: float) -> BookSection:
    scorer: LeadScorer = prepared.scorer
    r = scorer.report
    lines = [
        f"Model: {r.candidate_words}, chosen among {len(r.candidates) or 1} candidates by how well each ranked the "
        f"leads of {len(r.folds)} later periods of this book (periods starting "
        f"{', '.join(f[:10] for f in r.folds) or 'unknown'}), each learned only from what was known before it.",
        f"Learned from {r.contacts} leads with a known outcome ({r.converted} converted, {r.not_converted} did not), "
        f"{r.snapshots} snapshots taken at entry and 7, 30 and 90 days later, each strictly before the outcome.",
    ]
    if r.holdout_auc is not None:
        interval = (f" (90 % interval {r.holdout_auc_interval[0]:.2f}-{r.holdout_auc_interval[1]:.2f})"
                    if r.holdout_auc_interval else "")
        plain = f"; plain logistic regression on the same periods: {r.plain_auc:.2f}" if r.plain_auc is not None else ""
        lines.append(f"Validated AUC {r.holdout_auc:.2f}{interval} over {r.holdout_contacts} later leads{plain}. "
                     "0.5 is chance, 1.0 a perfect ranking.")
    if r.holdout_brier is not None:
        lines.append(f"Brier score on the newest period after calibration: {r.holdout_brier:.3f} (lower is better; "
                     f"always saying the base rate would score {base * (1 - base):.3f}).")
    lines.append(f"Base rate: {pct(r.base_rate)} of complete cohorts converted; the newest period converted at "
                 f"{pct(r.newest_base_rate)}, and the scores are calibrated to that level.")
    lines.append(f"Tiers: hot at a score of {scorer.hot_min} or more, warm at {scorer.warm_min} or more, else cold.")
    for c in r.candidates:
        mean = c.get("mean_auc")
        if mean is None:
            lines.append(f"- candidate {c.get('words')}: could not be judged on the later periods")
            continue
        folds = ", ".join(f"{a:.2f}" for a in c.get("fold_aucs") or [] if a is not None)
        trusted = "" if c.get("valid", True) else "; not trusted: its interval reaches chance"
        lines.append(f"- candidate {c.get('words')}: mean AUC {mean:.2f}, per period {folds}{trusted}")
    if r.note:
        lines.append(f"Note: {r.note}")
    return BookSection(title="The learned lead model", lines=tuple(lines))


def _prior_section(prepared: Any, base: float) -> BookSection:
    why = prepared.fallback_reason or "too little won/lost history to learn from"
    return BookSection(title="No learned lead model yet", lines=(
        f"Why: {why}.",
        f"Every score comes from the transparent prior below, starting from the book's own conversion rate of "
        f"{pct(base)}. It is not calibrated on this book: keep confidence low and say the score is the prior's.",
        f"Tiers: hot at a score of {PRIOR_HOT_MIN} or more, warm at {PRIOR_WARM_MIN} or more, else cold.",
    ))


def _prior_weights_section(base: float) -> BookSection:
    lines = [f"Points are what a signal adds to a lead at the base rate of {pct(base)}."]
    for name, (per_unit, cap) in prior.PER_UNIT.items():
        lines.append(f"- {name}: {per_unit:+.2f} log-odds each, counted up to {cap:g} "
                     f"(at the cap {_signed(_points(per_unit * cap, base))} points)")
    lines.append("- seniority: " + ", ".join(f"{k} {_signed(_points(v, base))}" for k, v in prior.SENIORITY.items()))
    recency = ", ".join(f"up to {d:g} days {_signed(_points(e, base))}" if math.isfinite(d) else f"longer {_signed(_points(e, base))}"
                        for d, e in prior.RECENCY)
    lines.append(f"- days since the last activity: {recency}; never active {_signed(_points(prior.NEVER_ACTIVE, base))}")
    lines.append(f"- free email address {_signed(_points(prior.FREE_EMAIL, base))}")
    lines.append(f"- similar leads (same source or industry) converting better or worse in the last 90 days: "
                 f"{prior.SIMILAR_WEIGHT:g} x their log-odds lift")
    return BookSection(title="What the prior weighs", lines=tuple(lines))


def _weights_section(scorer: LeadScorer, base: float, reference: list[Closed]) -> BookSection:
    """Each feature's share of the model's weight, and what setting it does to a lead's score.

    Measured on the model itself, so it holds for trees as for lines: every reference lead (the
    newest closed ones) is scored again with the feature set to each value, and the change is
    averaged over them, then put in score points at the base rate.
    """
    vec = scorer.vectorizer
    importance = scorer.report.importance or {f: 0.0 for f in vec.features}
    chosen = [f for f in importance if f in vec.numeric or f in vec.categorical][:TOP_FEATURES]
    if not chosen or not reference:
        return BookSection(title="What the model weighs", lines=("(no weights to show: no closed lead to measure them on)",))
    col = {label: i for i, (_, label) in enumerate(vec.columns)}
    x = vec.transform([c.row for c in reference]).toarray()
    own = scorer.model.raw(x)
    n = len(reference)
    by_feature: dict[str, list[tuple[str, int]]] = {}
    for feature in chosen:  # one model call per feature: memory stays at one feature's probes
        probes = _probe_values(feature, vec, col)
        stacked = []
        for _, set_to, clear in probes:
            xp = x.copy()
            xp[:, clear] = 0.0
            for j, v in set_to.items():
                xp[:, j] = v
            stacked.append(xp)
        raw = scorer.model.raw(np.vstack(stacked))
        by_feature[feature] = [
            (label, _points(scorer.platt.slope * float(np.mean(raw[n * k: n * (k + 1)] - own)), base))
            for k, (label, _, _) in enumerate(probes)]
    lines = [f"Share of the model's weight, then the score points a value adds or takes away, averaged over the "
             f"{n} newest closed leads scored again with that value, at the base rate of {pct(base)}:"]
    for feature in chosen:
        values = by_feature.get(feature, [])
        if feature in vec.categorical:
            values = sorted(values, key=lambda v: -abs(v[1]))[:VALUES_PER_FEATURE]
        cells = "; ".join(f"{label} {_signed(points)}" for label, points in values)
        lines.append(f"- {feature}: {importance.get(feature, 0):.0%} of the weight; {cells}")
    dropped = scorer.report.dropped or {}
    drifting = scorer.report.drifting or {}
    if dropped:
        lines.append("Left out of the model: " + "; ".join(f"{f} ({why})" for f, why in sorted(dropped.items())))
    if drifting:
        lines.append("Drifting over time: " + "; ".join(f"{f} ({why})" for f, why in sorted(drifting.items())))
    return BookSection(title="What the model weighs (feature names and values as imported)", lines=tuple(lines),
                       imported=True)


def _probe_values(feature: str, vec: Any, col: dict[str, int]) -> list[tuple[str, dict[int, float], list[int]]]:
    """(label, columns set, columns cleared first) for each value a feature is probed at."""
    if feature in vec.categorical:
        values = vec.categorical[feature]
        cols = [col[f"{feature} = {v}"] for v in values]
        return [("(missing)" if v == MISSING else "(any rarer value)" if v == OTHER else v, {j: 1.0}, cols)
                for v, j in list(zip(values, cols, strict=True))[:PROBED_VALUES]]
    spec = vec.numeric[feature]
    j = col[feature]
    missing = [col[f"{feature} missing"]] if spec.missing_column else []

    def at(value: float) -> dict[int, float]:
        return {j: (_compress(value) - spec.mean) / spec.std}

    out: list[tuple[str, dict[int, float], list[int]]] = []
    average = _expand(spec.mean)
    if _binary(feature, spec):
        out.append(("yes", at(1.0), missing))
        out.append(("no", {j: 0.0, missing[0]: 1.0} if missing else at(0.0), missing))
        return out
    high, low = _expand(spec.mean + spec.std), _expand(spec.mean - spec.std)
    if average > 0 and low < 0:
        low = 0.0
    out.append((f"at {_num(high)} (typical {_num(average)})", at(high), missing))
    out.append((f"at {_num(low)}", at(low), missing))
    if missing:
        out.append(("when missing", {j: 0.0, missing[0]: 1.0}, []))
    return out


def _binary(feature: str, spec: Any) -> bool:
    """A yes/no flag: a list item ("account.tech_stack:gong") or has_phone, stored as 1 or missing/0."""
    return ":" in feature or feature == "has_phone" or (spec.std == 1.0 and abs(_expand(spec.mean) - 1.0) < 1e-6)


def _compress(value: float) -> float:
    return math.copysign(math.log1p(abs(value)), value)


def _expand(compressed: float) -> float:
    """The inverse of the vectoriser's sign(x)*log(1+|x|)."""
    return math.copysign(math.expm1(abs(compressed)), compressed)


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 10 else f"{value:.0f}"


# -- similar leads ----------------------------------------------------------------------------------
def _segments_section(session: Session, timeline: OutcomeTimeline, anchor: datetime) -> BookSection:
    total, won = timeline.overall(anchor)
    lines = [f"Leads that reached an outcome in the 90 days before {anchor:%Y-%m-%d}: {won} of {total} converted"
             + (f" ({won / total:.0%})." if total else ".")]
    for field in ("source", "industry"):
        rates = []
        for value in _segment_values(session, field):
            seg = timeline.segment(field, value, anchor)
            if seg.closed >= SEGMENT_MIN_CLOSED:
                rates.append(seg)
        rates.sort(key=lambda s: (-s.closed, s.value or ""))
        if rates:
            lines.append(f"By {field}: " + "; ".join(f"{s.value} {s.converted}/{s.closed} ({s.rate:.0%})"
                                                    for s in rates[:SEGMENTS_PER_FIELD]))
    return BookSection(title="How similar leads converted (source and industry names as imported)", lines=tuple(lines),
                       imported=True)


def _segment_values(session: Session, field: str) -> list[str]:
    """The values the store holds for a segment field, as the timeline keys them (trimmed, lower case)."""
    column = Contact.source if field == "source" else Account.industry
    return sorted({str(v).strip().lower() for v in session.scalars(select(column).distinct()) if v not in (None, "")})


# -- worked examples ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Closed:
    """A closed lead as it stood a week before its outcome was known: what the examples and the
    weights are measured on. Its ids stay here, for the privacy screen; they never reach the block."""

    contact_id: int
    account_id: int | None
    won: bool
    at: datetime
    entry_at: datetime
    row: dict[str, Any]


def _closed_leads(session: Session, prepared: Any, anchor: datetime, private: frozenset[int]) -> list[Closed]:
    """The newest REFERENCE_PER_OUTCOME converted and not converted leads known at `anchor`, not sensitive."""
    known = raw_outcomes(session, anchor)
    ordered = sorted(((at, cid, won) for cid, (won, at) in known.items() if cid not in private), reverse=True)
    chosen = [x for x in ordered if x[2]][:REFERENCE_PER_OUTCOME] + [x for x in ordered if not x[2]][:REFERENCE_PER_OUTCOME]
    ids = [cid for _, cid, _ in chosen]
    records = load_records(session, as_of=anchor, contact_ids=ids)
    accounts = dict(session.execute(select(Contact.id, Contact.account_id).where(Contact.id.in_(ids))).all()) if ids else {}
    out = []
    for at, cid, won in sorted(chosen, reverse=True):
        record = records.get(cid)
        if record is None:
            continue
        moment = max(record.entry_at, at - EXAMPLE_LEAD)
        out.append(Closed(cid, accounts.get(cid), won, at, record.entry_at, feature_row(record, moment, prepared.timeline)))
    return out


def _examples_section(session: Session, prepared: Any, anchor: datetime, reference: list[Closed]) -> BookSection:
    chosen = [c for c in reference if c.won][:EXAMPLES_PER_OUTCOME] + [c for c in reference if not c.won][:EXAMPLES_PER_OUTCOME]
    chosen.sort(key=lambda c: c.at, reverse=True)
    scores = _scores(prepared, [c.row for c in chosen])
    examples = [({"contact": {c.contact_id}, "account": {c.account_id} if c.account_id else set()},
                 _example_line(c, score)) for c, score in zip(chosen, scores, strict=True)]
    kept = screened(session, examples)
    kept += _tier_table(prepared, reference)
    scored_by = ("the score the model gives that row. The model learned from these leads, so the scores show its "
                 "fit, not its validation." if prepared.scorer is not None else
                 "the score the transparent prior gives that row (it learned nothing from them).")
    head = (f"The newest {EXAMPLES_PER_OUTCOME} leads that converted and {EXAMPLES_PER_OUTCOME} that did not, known by "
            f"{anchor:%Y-%m-%d}, newest first, each as it stood a week before its outcome was known (or at entry), "
            f"with {scored_by}")
    return BookSection(title="Worked examples: closed leads (non-personal fields only, values as imported)",
                       lines=(head, *kept) if kept else (head, "(no closed lead to show)"), imported=True)


def _tier_table(prepared: Any, reference: list[Closed]) -> list[str]:
    """How the reference leads converted by the tier the model (or the prior) gives them: for a learned model
    this is in sample (fit, not validation)."""
    if not reference:
        return []
    hot_min = prepared.scorer.hot_min if prepared.scorer is not None else PRIOR_HOT_MIN
    warm_min = prepared.scorer.warm_min if prepared.scorer is not None else PRIOR_WARM_MIN
    tiers: dict[str, list[bool]] = {"hot": [], "warm": [], "cold": []}
    for lead, score in zip(reference, _scores(prepared, [c.row for c in reference]), strict=True):
        tiers["hot" if score >= hot_min else "warm" if score >= warm_min else "cold"].append(lead.won)
    cells = "; ".join(f"{tier} {sum(won)} of {len(won)} converted" for tier, won in tiers.items() if won)
    who = "the model" if prepared.scorer is not None else "the prior"
    return [f"The {len(reference)} newest closed leads by the tier {who} gives them: {cells}."]


def _sensitive_contacts(session: Session) -> set[int]:
    return set(session.scalars(select(Contact.id).outerjoin(Account, Account.id == Contact.account_id).where(
        or_(Contact.sensitive.is_(True), Account.sensitive.is_(True)))))


def _scores(prepared: Any, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    if prepared.scorer is not None:
        return [round(float(p) * 100) for p in prepared.scorer.predict_proba(rows)]
    return [round(prior_estimate(row, prepared.base_rate).probability * 100) for row in rows]


def _example_line(lead: Closed, score: int) -> str:
    row = lead.row
    days = max(0, round((lead.at - lead.entry_at) / timedelta(days=1)))
    who = ", ".join(f"{k} {v}" for k, v in (
        ("source", row.get("source")), ("industry", row.get("industry")), ("country", row.get("country")),
        ("employees", _num(row["employee_count"]) if row.get("employee_count") is not None else None),
        ("seniority", row.get("seniority")), ("function", row.get("job_function")), ("email", row.get("email_kind")),
    ) if v is not None)
    signals = [f"{row.get(k) or 0:g} {words}" for k, words in (
        ("page_views_30d", "page views"), ("pricing_views_30d", "pricing-page views"), ("downloads_30d", "downloads"),
        ("email_replies_30d", "email replies"), ("demo_requests_30d", "demo requests"), ("forms_30d", "forms"),
        ("meetings_90d", "meetings in 90 days"), ("calls_30d", "calls"),
    ) if row.get(k)]
    quiet = row.get("days_since_last_activity")
    last = "never active" if quiet is None else f"last active {quiet:.0f} days before"
    outcome = "CONVERTED" if lead.won else "did not convert"
    return (f"- {outcome} {days} days after entry | {who or 'no profile fields'} | in the 30 days before: "
            f"{', '.join(signals) or 'no activity'}; {last} | score {score}")


def _describe_verdict(decision: dict[str, Any]) -> str:
    fields = [f"{k} {decision[k]}" for k in ("score", "tier", "next_action") if decision.get(k) is not None]
    return ", ".join(fields) or "a proposal"


__all__ = ["lead_scoring_block"]
