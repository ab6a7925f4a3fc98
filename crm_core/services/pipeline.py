"""Pipeline health: open deals by stage with their risk flags, weighted value, time in stage, snoozing.

Everything is aggregated in SQL, so the board costs the same with 10 or 10,000 open deals; the
per-stage deal lists are paged.

Weighted value uses the store's own history: a stage's weight is the share of closed deals that
passed through that stage and were won (a deal a history import closed as stale is no outcome and
counts nowhere). A stage with fewer than `MIN_WIN_RATE_BASIS` closed deals behind it falls back to
the book's overall win rate (and says so), because a rate from three deals would swing the
forecast on noise.

Rights: every call takes the acting user. A rep sees only the deals they own (asking for someone
else's is refused naming `view_all`) and snoozes only their own deals' flags (`act_on_any`).

A flag is snoozed while today is before `risk_snoozed_until` (the resume date): snoozed deals
keep their flag but leave the red list until then.

Totals are one number in the reporting currency (crm_core.services.fx): each deal's amount is
converted with the newest rate of its currency; the originals stay on every stage and card. A
currency with no rate is left out of the totals and counted, never guessed.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, case, func, literal, or_, select, union
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import authorize_record, authorize_view, owner_scope
from crm_core.errors import NotFound, UserError
from crm_core.importing.history import STALE_MARK
from crm_core.models import Account, Deal, Decision, StageHistory, User
from crm_core.oversight.audit import record_as
from crm_core.services.fx import RateTable, rate_table, reporting_currency

MIN_WIN_RATE_BASIS = 10
MIN_SIMILAR_STAYS = 5
MAX_SNOOZE_DAYS = 180
RISK_ORDER = ("red", "amber", "green", "unassessed", "snoozed")


class StageSummary(BaseModel):
    stage: str
    open_deals: int
    amount: float                  # open amount converted to the reporting currency (currencies with a rate)
    win_rate: float | None         # historical share of closed deals through this stage that were won
    win_rate_basis: str            # what the rate is measured on, in words
    weighted: float | None         # amount x win rate
    amounts: dict[str, float] = Field(default_factory=dict)  # per original currency, before conversion
    weighted_amounts: dict[str, float] = Field(default_factory=dict)  # per currency, x the stage's win rate
    red: int = 0
    amber: int = 0
    green: int = 0
    snoozed: int = 0
    unassessed: int = 0
    avg_days_in_stage: float | None = None  # completed stays in this stage, all deals


class DealCard(BaseModel):
    id: int
    name: str
    stage: str
    account: str | None
    owner: str | None
    product: str | None
    amount: float | None
    currency: str
    amount_reporting: float | None = None   # the amount in the reporting currency (None: no rate, or no amount)
    reporting_currency: str | None = None
    risk: str                      # red | amber | green | unassessed | snoozed (display key)
    flag: str | None               # the stored flag, also while snoozed
    risk_reason: str | None
    risk_action: str | None
    risk_updated_at: datetime | None
    snoozed_until: date | None
    snooze_reason: str | None
    snoozed_by: str | None
    expected_close: date | None
    days_in_stage: float | None
    similar_avg_days: float | None  # average completed stay in this stage for similar deals
    # The full evidence behind the flag (the model, its validated AUC, every signal with n and rates),
    # from the pipeline agent's latest decision that set this flag; filled for the red list and `deal_card`.
    evidence: list[str] = Field(default_factory=list)

    @property
    def reason_headline(self) -> str | None:
        return _reason_parts(self.risk_reason)[0]

    @property
    def raises(self) -> list[str]:
        return _reason_parts(self.risk_reason)[1]

    @property
    def lowers(self) -> list[str]:
        return _reason_parts(self.risk_reason)[2]
    similar_basis: str | None       # "GTX Pro deals in Engaging (41 stays)"


class CurrencyTotal(BaseModel):
    currency: str
    open_deals: int
    amount: float
    weighted: float                # per stage: amount x that stage's win rate
    rate: float | None = None      # 1 unit of this currency in the reporting currency; None = no rate
    rate_date: date | None = None
    converted: float | None = None  # amount in the reporting currency


class PipelineBoard(BaseModel):
    currency: str                  # the reporting currency; headline figures are converted to it
    stages: list[StageSummary]
    open_deals: int
    amount: float                  # every open deal with a rate, converted
    weighted: float
    red_list: list[DealCard]
    red_total: int
    other_currency_deals: int      # open deals in another currency than the reporting one (converted when a rate exists)
    missing_rates: list[str] = Field(default_factory=list)  # currencies of open deals with no exchange rate
    unconverted_deals: int = 0     # open deals left out of the totals for want of a rate
    rates_as_of: date | None = None  # the oldest rate date behind the converted totals
    rates_built_in: bool = False   # some rate used is the built-in default table
    by_currency: list[CurrencyTotal]  # every currency, the board's first, then by value
    flags: dict[str, int]          # open deals per display key: red, amber, green, snoozed, unassessed
    overall_win_rate: float | None
    closed_deals: int


class DealPage(BaseModel):
    rows: list[DealCard]
    total: int


# ---- the pieces -------------------------------------------------------------------------------

def _today() -> date:
    return clock.now().date()


def _snoozed(today: date):
    return and_(Deal.risk_snoozed_until.is_not(None), Deal.risk_snoozed_until > today)


def _risk_key(today: date):
    """The display key computed in SQL: snoozed wins over the stored flag."""
    return case(
        (_snoozed(today), literal("snoozed")),
        (Deal.risk.in_(("red", "amber", "green")), Deal.risk),
        else_=literal("unassessed"),
    )


def _open_deals(owner_id: int | None) -> list:
    conds = [Deal.status == "open"]
    if owner_id is not None:
        conds.append(Deal.owner_id == owner_id)
    return conds


_currency = func.coalesce(Deal.currency, "USD")


def stage_order(session: Session, stages: list[str]) -> list[str]:
    """Stages in the order deals move through them, learned from the stage history.

    A stage's place is the average step at which deals enter it; stages never seen in the
    history follow, alphabetically.
    """
    step = func.row_number().over(partition_by=StageHistory.deal_id, order_by=(StageHistory.changed_at, StageHistory.id))
    steps = select(StageHistory.to_stage.label("stage"), step.label("step")).subquery()
    position = dict(session.execute(select(steps.c.stage, func.avg(steps.c.step)).group_by(steps.c.stage)).all())
    return sorted(stages, key=lambda s: (position.get(s) is None, float(position.get(s) or 0), s.lower()))


# A deal a history import closed as lost because nobody touched it for a year: its outcome is the
# import's rule, not an event, so it weighs no stage (the pipeline learner leaves it out the same way).
_OUTCOME_IS_AN_EVENT = Deal.attributes[STALE_MARK].as_string().is_(None)


def stage_win_rates(session: Session) -> tuple[dict[str, tuple[int, int]], tuple[int, int]]:
    """Per stage (won, closed) over closed deals that passed through it; and (won, closed) overall.

    Deals a history import closed as stale are left out (`STALE_MARK`)."""
    passed = union(
        select(StageHistory.deal_id.label("deal_id"), StageHistory.to_stage.label("stage")),
        select(StageHistory.deal_id.label("deal_id"), StageHistory.from_stage.label("stage")).where(StageHistory.from_stage.is_not(None)),
        select(Deal.id.label("deal_id"), Deal.stage.label("stage")),
    ).subquery()
    won = func.sum(case((Deal.status == "won", 1), else_=0))
    rows = session.execute(
        select(passed.c.stage, won, func.count())
        .join(Deal, Deal.id == passed.c.deal_id)
        .where(Deal.status.in_(("won", "lost")), _OUTCOME_IS_AN_EVENT)
        .group_by(passed.c.stage)
    ).all()
    per_stage = {stage: (int(w or 0), int(n)) for stage, w, n in rows}
    total_won, total = session.execute(select(won, func.count()).where(Deal.status.in_(("won", "lost")), _OUTCOME_IS_AN_EVENT)).one()
    return per_stage, (int(total_won or 0), int(total or 0))


def _days_between(session: Session, start, end):
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(end) - func.julianday(start)
    return func.extract("epoch", end - start) / 86400.0


def stage_duration_norms(session: Session) -> tuple[dict[tuple[str, str | None], tuple[float, int]], dict[str, tuple[float, int]]]:
    """Average completed stay (days, stays) per (stage, product) and per stage.

    A stay is the time between entering a stage and the next stage change of the same deal.
    """
    left_at = func.lead(StageHistory.changed_at).over(partition_by=StageHistory.deal_id, order_by=(StageHistory.changed_at, StageHistory.id))
    stays = select(
        StageHistory.deal_id.label("deal_id"), StageHistory.to_stage.label("stage"),
        StageHistory.changed_at.label("entered"), left_at.label("left_at"),
    ).subquery()
    length = _days_between(session, stays.c.entered, stays.c.left_at)
    base = select(stays.c.stage, Deal.product, func.avg(length), func.count()).join(Deal, Deal.id == stays.c.deal_id).where(stays.c.left_at.is_not(None))
    by_product = {(stage, product): (float(avg), int(n)) for stage, product, avg, n in session.execute(base.group_by(stays.c.stage, Deal.product)) if avg is not None}
    by_stage: dict[str, tuple[float, int]] = {}
    for (stage, _product), (avg, n) in by_product.items():
        total, count = by_stage.get(stage, (0.0, 0))
        by_stage[stage] = (total + avg * n, count + n)
    return by_product, {s: (total / n, n) for s, (total, n) in by_stage.items() if n}


def _similar(norms, stage: str, product: str | None) -> tuple[float | None, str | None]:
    by_product, by_stage = norms
    if product is not None and (stage, product) in by_product:
        avg, n = by_product[(stage, product)]
        if n >= MIN_SIMILAR_STAYS:
            return avg, f"{product} deals in {stage} ({n} stays)"
    if stage in by_stage:
        avg, n = by_stage[stage]
        return avg, f"all deals in {stage} ({n} stays)"
    return None, None


def _card_query(today: date) -> Select:
    return (
        select(Deal, Account.name, User.name, _risk_key(today).label("risk_key"))
        .outerjoin(Account, Account.id == Deal.account_id)
        .outerjoin(User, User.id == Deal.owner_id)
    )


def _cards(session: Session, rows, now: datetime, norms, rates: RateTable | None = None,
           currency: str | None = None) -> list[DealCard]:
    if rates is None or currency is None:
        rates, currency = rate_table(session), reporting_currency(session)
    cards = []
    for deal, account, owner, key in rows:
        entered = deal.stage_entered_at or deal.opened_at or deal.created_at
        in_stage = (now - entered).total_seconds() / 86400 if entered else None
        avg, basis = _similar(norms, deal.stage, deal.product)
        cards.append(DealCard(
            id=deal.id, name=deal.name, stage=deal.stage, account=account, owner=owner, product=deal.product,
            amount=float(deal.amount) if deal.amount is not None else None, currency=deal.currency or "USD",
            amount_reporting=(rates.convert(float(deal.amount), deal.currency or "USD", currency)
                              if deal.amount is not None else None), reporting_currency=currency,
            risk=key, flag=deal.risk, risk_reason=deal.risk_reason, risk_action=deal.risk_action,
            risk_updated_at=deal.risk_updated_at, snoozed_until=deal.risk_snoozed_until,
            snooze_reason=deal.risk_snooze_reason, snoozed_by=deal.risk_snoozed_by, expected_close=deal.expected_close,
            days_in_stage=in_stage, similar_avg_days=avg, similar_basis=basis,
        ))
    return cards


_RAISES, _LOWERS, _MAX_REASONS = "Raises the risk: ", "Lowers the risk: ", 3


def _reason_parts(reason: str | None) -> tuple[str | None, list[str], list[str]]:
    """A stored flag reason as (headline, reasons raising the risk, reasons lowering it).

    The pipeline agent writes "<headline> Raises the risk: a; b. Lowers the risk: c." A reason in
    another shape (set by hand, or by an older agent version) is all headline, nothing is dropped."""
    text = " ".join((reason or "").split())
    if not text:
        return None, [], []
    head, raises, lowers = text, "", ""
    if _LOWERS in head:
        head, lowers = head.split(_LOWERS, 1)
    if _RAISES in head:
        head, raises = head.split(_RAISES, 1)

    def items(part: str) -> list[str]:
        return [p.strip().rstrip(".") for p in part.split("; ") if p.strip()][:_MAX_REASONS]

    return head.strip() or None, items(raises), items(lowers)


def _with_evidence(session: Session, cards: list[DealCard]) -> list[DealCard]:
    """Attach to each card the evidence of the newest pipeline decision that gave the deal its flag."""
    wanted = {c.id: c.flag for c in cards if c.flag}
    if not wanted:
        return cards
    found: dict[int, list[str]] = {}
    rows = session.execute(
        select(Decision.subject_id, Decision.decision)
        .where(Decision.agent == "pipeline", Decision.subject_type == "deal", Decision.subject_id.in_(list(wanted)))
        .order_by(Decision.created_at.desc(), Decision.id.desc())
    )
    for deal_id, typed in rows:
        if deal_id in found or not isinstance(typed, dict):
            continue
        evidence = typed.get("evidence")
        if typed.get("risk") == wanted[deal_id] and isinstance(evidence, list):
            found[deal_id] = [str(line) for line in evidence]
            if len(found) == len(wanted):
                break
    return [c.model_copy(update={"evidence": found.get(c.id, [])}) for c in cards]


# ---- what the page calls ------------------------------------------------------------------------

def pipeline_board(session: Session, owner_id: int | None = None, *, actor: Actor, red_limit: int = 25) -> PipelineBoard:
    """Every open deal summed by stage and flag, the weighted value, and the red list first.

    `owner_id` narrows to one owner's deals (None: everyone the actor may see)."""
    owner_id = owner_scope(actor, owner_id, doing="see the pipeline")
    today = _today()
    now = clock.now()
    currency = reporting_currency(session)
    rates = rate_table(session)
    key = _risk_key(today).label("risk_key")
    rows = session.execute(
        select(Deal.stage, key, _currency, func.count(), func.sum(Deal.amount))
        .where(*_open_deals(owner_id)).group_by(Deal.stage, key, _currency)
    ).all()
    per_stage, (won_all, closed_all) = stage_win_rates(session)
    overall = won_all / closed_all if closed_all else None
    norms = stage_duration_norms(session)
    stage_norms = norms[1]

    summaries: dict[str, StageSummary] = {}
    other_currency = 0
    for stage, risk, deal_currency, count, amount in rows:
        s = summaries.get(stage)
        if s is None:
            won, closed = per_stage.get(stage, (0, 0))
            if closed >= MIN_WIN_RATE_BASIS:
                rate, basis = won / closed, f"{won} of {closed} closed deals through {stage} were won"
            elif overall is not None:
                rate, basis = overall, f"book-wide rate ({won_all} of {closed_all}): fewer than {MIN_WIN_RATE_BASIS} closed deals went through {stage}"
            else:
                rate, basis = None, "no closed deals yet"
            norm = stage_norms.get(stage)
            s = summaries[stage] = StageSummary(stage=stage, open_deals=0, amount=0.0, win_rate=rate, win_rate_basis=basis,
                                                weighted=None, avg_days_in_stage=norm[0] if norm else None)
        s.open_deals += int(count)
        setattr(s, risk, getattr(s, risk) + int(count))
        s.amounts[deal_currency] = s.amounts.get(deal_currency, 0.0) + float(amount or Decimal(0))
        if deal_currency != currency:
            other_currency += int(count)
    ordered = [summaries[name] for name in stage_order(session, list(summaries))]
    totals: dict[str, CurrencyTotal] = {}
    for s in ordered:
        s.amount = sum(v for cur, amount in s.amounts.items() if (v := rates.convert(amount, cur, currency)) is not None)
        s.weighted = s.amount * s.win_rate if s.win_rate is not None else None
        if s.win_rate is not None:
            s.weighted_amounts = {cur: amount * s.win_rate for cur, amount in s.amounts.items()}
        for cur, amount in s.amounts.items():
            t = totals.setdefault(cur, CurrencyTotal(currency=cur, open_deals=0, amount=0.0, weighted=0.0))
            t.amount += amount
            t.weighted += amount * (s.win_rate or 0.0)
    counts = dict(session.execute(select(_currency, func.count()).where(*_open_deals(owner_id)).group_by(_currency)).all())
    for cur, t in totals.items():
        t.open_deals = int(counts.get(cur, 0))
        t.rate = rates.rate(cur, currency)
        t.rate_date = rates.rates[cur].rate_date if cur in rates.rates and cur != currency else None
        t.converted = t.amount * t.rate if t.rate is not None else None
    by_currency = sorted(totals.values(), key=lambda t: (t.currency != currency, -(t.converted or 0.0), -t.amount))
    missing = [t for t in by_currency if t.rate is None]
    used = {t.currency for t in by_currency if t.rate is not None} | {currency}

    red_filter = and_(*_open_deals(owner_id), Deal.risk == "red", or_(Deal.risk_snoozed_until.is_(None), Deal.risk_snoozed_until <= today))
    red_total = int(session.scalar(select(func.count()).select_from(Deal).where(red_filter)) or 0)
    red_rows = session.execute(
        _card_query(today).where(red_filter).order_by(Deal.amount.is_(None), Deal.amount.desc(), Deal.id).limit(red_limit)
    ).all()
    return PipelineBoard(
        currency=currency, stages=ordered,
        open_deals=sum(s.open_deals for s in ordered), amount=sum(s.amount for s in ordered),
        weighted=sum(s.weighted or 0.0 for s in ordered),
        red_list=_with_evidence(session, _cards(session, red_rows, now, norms, rates, currency)), red_total=red_total,
        other_currency_deals=other_currency, overall_win_rate=overall, closed_deals=closed_all, by_currency=by_currency,
        flags={k: sum(getattr(s, k) for s in ordered) for k in RISK_ORDER},
        missing_rates=[t.currency for t in missing], unconverted_deals=sum(t.open_deals for t in missing),
        rates_as_of=rates.oldest_date(used) if len(used) > 1 else None,
        rates_built_in=len(used) > 1 and any(rates.rates[c].built_in for c in used if c in rates.rates and c != "EUR"),
    )


def stage_deals(
    session: Session, *, stage: str, actor: Actor, owner_id: int | None = None, risk: str | None = None, limit: int = 50,
    offset: int = 0,
) -> DealPage:
    """One stage's open deals, the worst flag and the biggest amount first, one page at a time."""
    owner_id = owner_scope(actor, owner_id, doing=f"see the deals in {stage}")
    today = _today()
    key = _risk_key(today)
    conds = [*_open_deals(owner_id), Deal.stage == stage]
    if risk:
        conds.append(key == risk)
    total = int(session.scalar(select(func.count()).select_from(Deal).where(*conds)) or 0)
    severity = case(*((key == k, i) for i, k in enumerate(RISK_ORDER)), else_=len(RISK_ORDER))
    rows = session.execute(
        _card_query(today).where(*conds).order_by(severity, Deal.amount.is_(None), Deal.amount.desc(), Deal.id).limit(limit).offset(offset)
    ).all()
    return DealPage(rows=_cards(session, rows, clock.now(), stage_duration_norms(session)), total=total)


def _card(session: Session, deal_id: int) -> DealCard:
    row = session.execute(_card_query(_today()).where(Deal.id == deal_id)).first()
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    return _cards(session, [row], clock.now(), stage_duration_norms(session))[0]


def deal_card(session: Session, deal_id: int, *, actor: Actor) -> DealCard:
    deal = session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    authorize_view(actor, deal.owner_id, doing="open this deal")
    return _with_evidence(session, [_card(session, deal_id)])[0]


def snooze_deal(session: Session, deal_id: int, *, until: date, reason: str, actor: Actor) -> DealCard:
    """Hide an amber or red flag until `until` (the resume date), with the reason; audited as the actor.

    A rep snoozes flags on their own deals only (`act_on_any` for anyone's)."""
    reason = (reason or "").strip()
    if not reason:
        raise UserError(f"snooze deal {deal_id}: give a reason (what makes the flag safe to ignore until {until:%Y-%m-%d})")
    today = _today()
    if until <= today:
        raise UserError(f"snooze deal {deal_id}: the resume date {until:%Y-%m-%d} must be after today ({today:%Y-%m-%d})")
    if until > today + timedelta(days=MAX_SNOOZE_DAYS):
        raise UserError(f"snooze deal {deal_id}: the resume date {until:%Y-%m-%d} is more than {MAX_SNOOZE_DAYS} days away")
    deal = session.get(Deal, deal_id, with_for_update=True)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    authorize_record(actor, deal.owner_id, doing="snooze this deal's flag")
    if deal.status != "open":
        raise UserError(f"snooze deal {deal_id} ({deal.name}): it is {deal.status}; only open deals carry flags")
    if deal.risk not in ("amber", "red"):
        raise UserError(f"snooze deal {deal_id} ({deal.name}): its flag is {deal.risk or 'not set'}; only amber or red flags can be snoozed")
    old = {"until": deal.risk_snoozed_until, "reason": deal.risk_snooze_reason, "by": deal.risk_snoozed_by}
    deal.risk_snoozed_until = until
    deal.risk_snooze_reason = reason
    deal.risk_snoozed_by = actor.name
    session.flush()
    record_as(session, "deal.risk_snoozed", actor=actor, subject_type="deal", subject_id=deal.id,
              risk=deal.risk, until=until, reason=reason, old=old)
    return _card(session, deal.id)


def resume_deal_flag(session: Session, deal_id: int, *, actor: Actor) -> DealCard:
    """End a snooze now: the flag shows again; audited as the actor (a rep: own deals only)."""
    deal = session.get(Deal, deal_id, with_for_update=True)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    authorize_record(actor, deal.owner_id, doing="resume this deal's flag")
    if deal.risk_snoozed_until is None or deal.risk_snoozed_until <= _today():
        raise UserError(f"deal {deal_id} ({deal.name}): its flag is not snoozed")
    old = {"until": deal.risk_snoozed_until, "reason": deal.risk_snooze_reason, "by": deal.risk_snoozed_by}
    deal.risk_snoozed_until = None
    deal.risk_snooze_reason = None
    deal.risk_snoozed_by = None
    session.flush()
    record_as(session, "deal.risk_unsnoozed", actor=actor, subject_type="deal", subject_id=deal.id, old=old)
    return _card(session, deal.id)
