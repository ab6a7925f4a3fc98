"""Deal-risk signals and the weights the store's own closed deals give them. No database here.

Every signal is a HYPOTHESIS about what makes an open deal likely to be lost: time in stage
against similar deals, days since the last touch or reply, a slipped close date, an amount far
from the typical one, stage regressions, a fading engagement trend, the owner's record, the
deal's age against the typical won cycle near the quarter's end, a competitor named in the deal's
notes, emails or transcripts, whether a decision-maker (C-level, VP, head of, director) on the
deal engaged in the last 30 days. Each reading falls into a band
("3x the average stay"). Whether a band predicts a loss is not assumed: the weights are learned
from deals that had closed (won or lost) before the as-of moment, observed as they stood on
past dates while still open (weekly snapshots), never reading anything after each snapshot.

Leakage rules, because history in a CRM is partial:
  * a snapshot at time t reads only what was true at t: stage changes, touches and outcomes of
    other deals up to t; the norms (average stays, the typical cycle, owner records) are
    computed from deals closed before t;
  * a deal is learned from only if it closed before the cut-off (its label was known then),
    and only at snapshot times at least `horizon_days` before the cut-off, so the training
    snapshots are not all deals about to close (those that were still open at the cut-off would
    otherwise be missing from the recent snapshots, which tilts the rates);
  * amounts are used only when the book records them on open deals (books that fill the amount
    at close, e.g. 0 on every lost deal, would leak the outcome);
  * a signal the book cannot measure (no activity log, no stage history, no text, no titled
    contact) is absent, not zero;
  * competitor mentions count only texts dated at or before t; a decision-maker counts from the
    first moment the store knew the contact (created, or first engaged) and engaged only by
    touches dated before t.
The store keeps no history of `expected_close` or of contact titles: their current values are
read, so on closed deals the close date may be the one set at closing (say so when reporting a
back-test on such a book).

The model: L2-regularised logistic regression over one-hot bands, its hold-out AUC measured on
the newest quarter of snapshots, flag thresholds from its predicted loss probabilities on the
training snapshots (red: the riskiest `red_share`, amber: up to `red_share + amber_share`).
"""
from __future__ import annotations

import bisect
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median

import numpy as np

DAY = 86400.0
GRID_DAYS = 7
MIN_CLOSED = 30            # closed deals (both outcomes present) before a model is learned
MIN_PER_CLASS = 5
MIN_NORM = 5               # stays/deals behind an average before it is used
OWNER_PRIOR = 10           # pseudo-deals pulling an owner's loss rate toward the book's
DEFAULT_C = 0.1               # chosen on the Maven validation dates (bench/bench_backtest_maven.py)
DEFAULT_RED_SHARE = 0.2
DEFAULT_AMBER_SHARE = 0.3
DEFAULT_HORIZON_QUANTILE = 0.25  # horizon = this quantile of open->close durations (days); chosen likewise
PRIOR_BASE_LOSS = 0.35
PRIOR_AMBER = 0.45
PRIOR_RED = 0.60


# -- what the store knows about one deal (cut at any moment by the functions below) -------------
@dataclass
class DealHistory:
    deal_id: int
    began: datetime                      # engaged (opened_at), else created
    closed_at: datetime | None = None
    outcome: str | None = None           # won | lost | None (open now)
    product: str | None = None
    owner_id: int | None = None
    amount: float | None = None
    expected_close: date | None = None
    stages: list[tuple[datetime, str | None, str]] = field(default_factory=list)  # (at, from, to), by time
    touches: list[datetime] = field(default_factory=list)    # any logged touch (sorted)
    replies: list[datetime] = field(default_factory=list)    # the buyer answered: inbound email, meeting held
    texts: list[datetime] = field(default_factory=list)      # dates of the deal's notes, buyer emails, transcripts
    mentions: list[datetime] = field(default_factory=list)   # dates of those texts that name a competitor
    dm_known: list[datetime] = field(default_factory=list)   # when each decision-maker on the deal became known
    dm_touches: list[datetime] = field(default_factory=list)  # when a decision-maker engaged

    def __post_init__(self) -> None:
        # Bisecting needs time order; callers need not promise it.
        self.stages.sort(key=lambda s: s[0])
        for times in (self.touches, self.replies, self.texts, self.mentions, self.dm_known, self.dm_touches):
            times.sort()

    def open_at(self, t: datetime) -> bool:
        return self.began <= t and (self.closed_at is None or self.closed_at > t)

    def lost_by(self, cutoff: datetime) -> bool | None:
        """The outcome if it was known before `cutoff`, else None."""
        if self.closed_at is None or self.closed_at >= cutoff or self.outcome not in ("won", "lost"):
            return None
        return self.outcome == "lost"

    def stage_at(self, t: datetime) -> tuple[str, datetime] | None:
        """(stage, entered) of the last open-stage change at or before t; None if the log is silent."""
        last = None
        for at, _frm, to in self.stages:
            if at > t:
                break
            last = (to, at)
        if last is None or _terminal(last[0]):
            return None
        return last


def _terminal(stage: str) -> bool:
    words = set(stage.strip().lower().replace("_", " ").replace("-", " ").split())
    return bool(words & {"won", "lost"})


def _count_until(times: list[datetime], t: datetime) -> int:
    return bisect.bisect_right(times, t)


def _last_before(times: list[datetime], t: datetime) -> datetime | None:
    i = bisect.bisect_right(times, t)
    return times[i - 1] if i else None


# -- norms: what "typical" meant at time t ---------------------------------------------------------
@dataclass
class Norms:
    at: datetime
    closed: int = 0
    lost: int = 0
    won_cycle_days: float | None = None                # median engaged->won duration
    stays: dict[tuple[str, str | None], tuple[float, int]] = field(default_factory=dict)  # (stage, product) -> (avg days, n)
    stage_stays: dict[str, tuple[float, int]] = field(default_factory=dict)
    won_amount: dict[str | None, tuple[float, int]] = field(default_factory=dict)  # product -> (median, n); None: all
    owner: dict[int, tuple[int, int]] = field(default_factory=dict)  # owner -> (lost, closed)
    stage_rank: dict[str, float] = field(default_factory=dict)
    has_touches: bool = False
    has_replies: bool = False
    has_texts: bool = False
    has_decision_makers: bool = False
    amounts_known_open: bool = False

    @property
    def base_loss(self) -> float | None:
        return self.lost / self.closed if self.closed else None


class Book:
    """All deals of a store, with the norms at any moment computed once and cached."""

    def __init__(self, deals: Iterable[DealHistory], *, amounts_known_open: bool | None = None):
        self.deals = sorted(deals, key=lambda d: (d.began, d.deal_id))
        self.by_id = {d.deal_id: d for d in self.deals}
        self._norms: dict[datetime, Norms] = {}
        self._closed = sorted((d for d in self.deals if d.closed_at is not None and d.outcome in ("won", "lost")),
                              key=lambda d: d.closed_at)
        self._closed_at = [d.closed_at for d in self._closed]
        first_touch = [d.touches[0] for d in self.deals if d.touches]
        first_reply = [d.replies[0] for d in self.deals if d.replies]
        self._first_touch = min(first_touch) if first_touch else None
        self._first_reply = min(first_reply) if first_reply else None
        first_text = [d.texts[0] for d in self.deals if d.texts]
        first_dm = [d.dm_known[0] for d in self.deals if d.dm_known]
        self._first_text = min(first_text) if first_text else None
        self._first_dm = min(first_dm) if first_dm else None
        if amounts_known_open is None:
            amounts_known_open = amounts_recorded_before_close(self.deals)
        self.amounts_known_open = amounts_known_open

    @property
    def start(self) -> datetime | None:
        return self.deals[0].began if self.deals else None

    def closed_before(self, t: datetime) -> list[DealHistory]:
        return self._closed[:bisect.bisect_left(self._closed_at, t)]

    def norms(self, t: datetime) -> Norms:
        cached = self._norms.get(t)
        if cached is None:
            cached = self._norms[t] = self._compute_norms(t)
        return cached

    def _compute_norms(self, t: datetime) -> Norms:
        closed = self.closed_before(t)
        n = Norms(at=t, closed=len(closed), lost=sum(d.outcome == "lost" for d in closed))
        won_cycles = [(d.closed_at - d.began).total_seconds() / DAY for d in closed if d.outcome == "won"]
        if len(won_cycles) >= MIN_NORM:
            n.won_cycle_days = max(1.0, median(won_cycles))
        owner: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        amounts: dict[str | None, list[float]] = defaultdict(list)
        for d in closed:
            if d.owner_id is not None:
                owner[d.owner_id][0] += d.outcome == "lost"
                owner[d.owner_id][1] += 1
            if d.outcome == "won" and d.amount:
                amounts[d.product].append(d.amount)
                amounts[None].append(d.amount)
        n.owner = {k: (v[0], v[1]) for k, v in owner.items()}
        n.won_amount = {k: (median(v), len(v)) for k, v in amounts.items() if len(v) >= MIN_NORM}
        n.amounts_known_open = self.amounts_known_open
        n.has_touches = self._first_touch is not None and self._first_touch <= t
        n.has_replies = self._first_reply is not None and self._first_reply <= t
        n.has_texts = self._first_text is not None and self._first_text <= t
        n.has_decision_makers = self._first_dm is not None and self._first_dm <= t
        # Completed stays and the order of stages, from every change logged before t.
        stays: dict[tuple[str, str | None], list[float]] = defaultdict(list)
        steps: dict[str, list[int]] = defaultdict(list)
        for d in self.deals:
            if d.began > t or not d.stages:
                continue
            seen = [s for s in d.stages if s[0] <= t]
            for i, (at, _frm, to) in enumerate(seen):
                steps[to].append(i)
                if i + 1 < len(seen) and not _terminal(to):
                    stays[(to, d.product)].append((seen[i + 1][0] - at).total_seconds() / DAY)
        per_stage: dict[str, list[float]] = defaultdict(list)
        for (stage, product), v in stays.items():
            per_stage[stage].extend(v)
            if len(v) >= MIN_NORM:
                n.stays[(stage, product)] = (sum(v) / len(v), len(v))
        n.stage_stays = {s: (sum(v) / len(v), len(v)) for s, v in per_stage.items() if len(v) >= MIN_NORM}
        n.stage_rank = {s: sum(v) / len(v) for s, v in steps.items()}
        return n


def amounts_recorded_before_close(deals: Sequence[DealHistory]) -> bool:
    """True when open deals carry amounts: the amount was known while the deal was open.

    A book that fills the amount only when a deal closes (Maven: none on open deals, 0 on every
    lost one) would teach "amount 0 means lost", which no one can know before the loss.
    """
    open_now = [d for d in deals if d.closed_at is None]
    if not open_now:
        return any(d.amount for d in deals if d.outcome == "lost")
    return sum(1 for d in open_now if d.amount) >= 0.5 * len(open_now)


# -- the signals ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    signal: str
    band: str            # what the model learns a weight for
    value: float | None  # the measured figure (days, ratio, count)
    words: str           # the reading in words: "time in stage 3.1x the average for similar deals"
    adverse_if: str = ""  # the hypothesis, for the prior: which bands are thought to hurt


SIGNAL_NAMES = ("time_in_stage", "days_since_activity", "days_since_reply", "close_date", "amount",
                "stage_regressions", "engagement_trend", "owner_record", "cycle_and_quarter", "competitor",
                "decision_maker")
DM_WINDOW_DAYS = 30
DM_ENGAGED, DM_NOT_ENGAGED, DM_UNKNOWN = "engaged", "not engaged", "no decision-maker known"

SIGNAL_LABELS = {
    "time_in_stage": "time in stage vs similar deals",
    "days_since_activity": "days since the last activity",
    "days_since_reply": "days since the buyer last replied",
    "close_date": "expected close date",
    "amount": "amount vs typical",
    "stage_regressions": "stage moved backwards",
    "engagement_trend": "engagement trend",
    "owner_record": "owner's record",
    "cycle_and_quarter": "deal age vs the won cycle, by month of quarter",
    "competitor": "competitor mentioned in notes or emails",
    "decision_maker": "decision-maker engagement (last 30 days)",
}


def _band(value: float, edges: Sequence[float], labels: Sequence[str]) -> str:
    return labels[bisect.bisect_right(list(edges), value)]


def _days(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds() / DAY


def _quarter_month(t: datetime) -> int:
    return (t.month - 1) % 3 + 1


def _quarter_end(t: datetime) -> date:
    last_month = ((t.month - 1) // 3) * 3 + 3
    nxt = date(t.year + (last_month == 12), last_month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def read_signals(deal: DealHistory, t: datetime, n: Norms) -> list[Reading]:
    """Every signal the book can measure for `deal` at `t` (only what was known at t)."""
    out: list[Reading] = []
    age = _days(t, deal.began)
    stage = deal.stage_at(t)
    if stage is not None:
        name, entered = stage
        norm = n.stays.get((name, deal.product))
        basis = f"{deal.product} deals in {name}" if norm else None
        if norm is None and name in n.stage_stays:
            norm, basis = n.stage_stays[name], f"deals in {name}"
        if norm is not None:
            days_in = _days(t, entered)
            ratio = days_in / max(norm[0], 0.5)
            out.append(Reading("time_in_stage", _band(ratio, (1, 2, 3), ("<1x", "1-2x", "2-3x", ">=3x")), round(ratio, 2),
                               f"time in stage {ratio:.1f}x the average for similar deals ({days_in:.0f} days in {name} "
                               f"vs {norm[0]:.0f} for {basis})"))
        if n.stage_rank:
            back = 0
            for at, frm, to in deal.stages:
                if at > t:
                    break
                if frm is not None and not _terminal(to) and n.stage_rank.get(to, 0) < n.stage_rank.get(frm, 0) - 0.5:
                    back += 1
            out.append(Reading("stage_regressions", "none" if back == 0 else "1+", float(back),
                               "never moved back a stage" if back == 0 else f"moved back a stage {back} time{'s' * (back > 1)}"))
    if n.has_touches:
        last = _last_before(deal.touches, t)
        if last is None or last < deal.began - timedelta(days=30):
            out.append(Reading("days_since_activity", "none", None, "no activity logged on the deal"))
        else:
            since = _days(t, last)
            out.append(Reading("days_since_activity", _band(since, (7, 14, 30), ("<7d", "7-14d", "14-30d", ">=30d")),
                               round(since, 1), f"last activity {since:.0f} days ago"))
        recent = _count_until(deal.touches, t) - _count_until(deal.touches, t - timedelta(days=14))
        before = _count_until(deal.touches, t - timedelta(days=14)) - _count_until(deal.touches, t - timedelta(days=42))
        if recent == 0 and before == 0:
            trend, words = "quiet", "no touches in the last 6 weeks"
        else:
            rate_now, rate_before = recent / 14, before / 28
            if rate_before == 0 or rate_now >= 1.5 * rate_before:
                trend = "rising"
            elif rate_now <= 0.5 * rate_before:
                trend = "falling"
            else:
                trend = "steady"
            words = f"engagement {trend}: {recent} touches in the last 2 weeks vs {before} in the 4 weeks before"
        out.append(Reading("engagement_trend", trend, float(recent), words))
    if n.has_replies:
        last = _last_before(deal.replies, t)
        if last is None or last < deal.began - timedelta(days=30):
            out.append(Reading("days_since_reply", "never", None, "the buyer has not replied since the deal opened"))
        else:
            since = _days(t, last)
            out.append(Reading("days_since_reply", _band(since, (7, 21), ("<7d", "7-21d", ">=21d")), round(since, 1),
                               f"last reply from the buyer {since:.0f} days ago"))
    if deal.expected_close is not None:
        late = (t.date() - deal.expected_close).days
        band = _band(late, (-30, 0, 30), ("later", "within 30d", "slipped", "slipped >30d"))
        words = (f"expected close date {deal.expected_close:%Y-%m-%d} passed {late} days ago" if late > 0
                 else f"expected to close {deal.expected_close:%Y-%m-%d}, in {-late} days")
        out.append(Reading("close_date", band, float(late), words))
    if n.amounts_known_open and deal.amount:
        typical = n.won_amount.get(deal.product) or n.won_amount.get(None)
        if typical:
            ratio = deal.amount / typical[0]
            out.append(Reading("amount", _band(ratio, (0.5, 2), ("<0.5x", "0.5-2x", ">=2x")), round(ratio, 2),
                               f"amount {ratio:.1f}x the typical won {deal.product or 'deal'} ({typical[0]:,.0f})"))
    if deal.owner_id is not None and deal.owner_id in n.owner and n.base_loss is not None:
        lost, closed = n.owner[deal.owner_id]
        if closed >= MIN_NORM:
            rate = (lost + OWNER_PRIOR * n.base_loss) / (closed + OWNER_PRIOR)
            band = _band(rate - n.base_loss, (-0.05, 0.05), ("better", "typical", "worse"))
            out.append(Reading("owner_record", band, round(rate, 3),
                               f"the owner lost {lost} of {closed} closed deals ({lost / closed:.0%})"))
    if n.won_cycle_days is not None:
        ratio = age / n.won_cycle_days
        q = _quarter_month(t)
        left = (_quarter_end(t) - t.date()).days
        band = _band(ratio, (0.15, 0.5, 1.0, 1.5), ("<0.15", "0.15-0.5", "0.5-1", "1-1.5", ">=1.5")) + f"|m{q}"
        out.append(Reading("cycle_and_quarter", band, round(ratio, 2),
                           f"open {age:.0f} days, {ratio:.1f}x the typical won cycle ({n.won_cycle_days:.0f} days), "
                           f"{left} days before the quarter ends"))
    if n.has_texts:
        mentioned = _count_until(deal.mentions, t)
        if mentioned:
            last = deal.mentions[mentioned - 1]
            words = (f"a competitor is mentioned in {mentioned} of the deal's notes or emails "
                     f"(latest {last:%Y-%m-%d})")
        else:
            words = "no competitor mentioned in the deal's notes or emails"
        out.append(Reading("competitor", "mentioned" if mentioned else "none", float(mentioned), words))
    if n.has_decision_makers:
        known = _count_until(deal.dm_known, t)
        last = _last_before(deal.dm_touches, t)
        if not known:
            out.append(Reading("decision_maker", DM_UNKNOWN, None,
                               "no decision-maker (C-level, VP, head of, director) known on the deal"))
        elif last is not None and _days(t, last) <= DM_WINDOW_DAYS:
            since = _days(t, last)
            out.append(Reading("decision_maker", DM_ENGAGED, round(since, 1),
                               f"a decision-maker engaged {since:.0f} days ago ({known} known on the deal)"))
        else:
            out.append(Reading("decision_maker", DM_NOT_ENGAGED, None,
                               f"no decision-maker engaged in the last {DM_WINDOW_DAYS} days ({known} known on the deal)"))
    return out


# -- snapshots and the model --------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    deal_id: int
    at: datetime
    readings: tuple[Reading, ...]


class SnapshotCache:
    """Readings of each deal at each grid time it was open, computed once per book (a back-test
    reuses them across its dates)."""

    def __init__(self, book: Book, step_days: int = GRID_DAYS):
        self.book = book
        self.step = timedelta(days=step_days)
        self.t0 = datetime.combine(book.start.date(), datetime.min.time()) if book.start else None
        self._readings: dict[tuple[int, datetime], tuple[Reading, ...]] = {}
        self._lives: dict[int, tuple[list[datetime], list[tuple[Reading, ...]]]] = {}

    def readings(self, deal: DealHistory, t: datetime) -> tuple[Reading, ...]:
        key = (deal.deal_id, t)
        got = self._readings.get(key)
        if got is None:
            got = self._readings[key] = tuple(read_signals(deal, t, self.book.norms(t)))
        return got

    def life(self, deal: DealHistory) -> tuple[list[datetime], list[tuple[Reading, ...]]]:
        """Grid times at which a closed deal was open, with its readings at each."""
        got = self._lives.get(deal.deal_id)
        if got is None:
            times: list[datetime] = []
            if self.t0 is not None and deal.closed_at is not None:
                k = max(0, math.ceil((deal.began - self.t0) / self.step))
                t = self.t0 + k * self.step
                while t < deal.closed_at:
                    times.append(t)
                    t += self.step
            got = self._lives[deal.deal_id] = (times, [self.readings(deal, t) for t in times])
        return got


def horizon_days(book: Book, cutoff: datetime, quantile: float = DEFAULT_HORIZON_QUANTILE) -> float:
    durations = sorted(_days(d.closed_at, d.began) for d in book.closed_before(cutoff))
    if not durations:
        return 30.0
    return max(GRID_DAYS, float(np.quantile(durations, quantile)))


def training_rows(book: Book, cache: SnapshotCache, cutoff: datetime, horizon: float) -> tuple[list[Snapshot], list[int]]:
    """Snapshots of deals whose outcome was known before `cutoff`, taken at least `horizon` days before it."""
    rows, labels = [], []
    last = cutoff - timedelta(days=horizon)
    for deal in book.closed_before(cutoff):
        lost = deal.lost_by(cutoff)
        if lost is None:
            continue
        times, readings = cache.life(deal)
        for i in range(bisect.bisect_right(times, last)):
            rows.append(Snapshot(deal.deal_id, times[i], readings[i]))
            labels.append(int(lost))
    return rows, labels


class NotEnoughHistory(Exception):
    """Too few closed deals (or one outcome only) to learn weights from."""


@dataclass(frozen=True)
class BandStat:
    snapshots: int
    lost: int

    @property
    def rate(self) -> float | None:
        return self.lost / self.snapshots if self.snapshots else None


@dataclass
class RiskModel:
    """Learned weights per (signal, band), the loss rate behind each band, and the flag thresholds."""

    columns: list[tuple[str, str]]
    coef: np.ndarray
    intercept: float
    stats: dict[tuple[str, str], BandStat]
    base_loss: float
    red_min: float
    amber_min: float
    holdout_auc: float | None      # mean AUC over rolling time-ordered folds (later periods)
    deals: int
    snapshots: int
    cutoff: datetime
    horizon_days: float
    c: float
    holdout_auc_low: float | None = None   # lower end of its 90 % interval
    rule_auc: float | None = None          # the single rule's mean AUC on the same folds
    fold_aucs: list[float] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Validated on later periods: clearly above chance and above the single rule (see `fold_scores`)."""
        return (self.holdout_auc is not None and self.holdout_auc_low is not None and self.holdout_auc >= FOLD_MIN_AUC
                and self.holdout_auc_low > 0.5 and (self.rule_auc is None or self.holdout_auc > self.rule_auc))

    @property
    def why_not_usable(self) -> str | None:
        if self.usable:
            return None
        if self.holdout_auc is None:
            return "the learned weights could not be tested on a later period yet"
        rule = f", the single rule {self.rule_auc:.2f}" if self.rule_auc is not None else ""
        return (f"the learned weights did not clearly beat chance and the single rule on later periods (AUC "
                f"{self.holdout_auc:.2f}, 90 % interval from {self.holdout_auc_low:.2f}{rule})")

    def _matrix(self, rows: Sequence[Sequence[Reading]]) -> np.ndarray:
        index = {col: i for i, col in enumerate(self.columns)}
        x = np.zeros((len(rows), len(self.columns)))
        for r, readings in enumerate(rows):
            for reading in readings:
                j = index.get((reading.signal, reading.band))
                if j is not None:
                    x[r, j] = 1.0
        return x

    def predict(self, rows: Sequence[Sequence[Reading]]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        z = self._matrix(rows) @ self.coef + self.intercept
        return 1 / (1 + np.exp(-z))

    def weight(self, reading: Reading) -> float:
        try:
            return float(self.coef[self.columns.index((reading.signal, reading.band))])
        except ValueError:
            return 0.0

    def flag(self, p: float) -> str:
        return "red" if p >= self.red_min else "amber" if p >= self.amber_min else "green"

    def to_dict(self) -> dict:
        return {
            "version": 2, "columns": [list(c) for c in self.columns], "coef": [float(v) for v in self.coef],
            "intercept": self.intercept, "stats": [[s, b, st.snapshots, st.lost] for (s, b), st in self.stats.items()],
            "base_loss": self.base_loss, "red_min": self.red_min, "amber_min": self.amber_min,
            "holdout_auc": self.holdout_auc, "deals": self.deals, "snapshots": self.snapshots,
            "cutoff": self.cutoff.isoformat(), "horizon_days": self.horizon_days, "c": self.c,
            "holdout_auc_low": self.holdout_auc_low, "rule_auc": self.rule_auc, "fold_aucs": self.fold_aucs,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RiskModel:
        if data.get("version") != 2:
            raise ValueError(f"pipeline model version {data.get('version')!r}, expected 2")
        return cls(
            columns=[(s, b) for s, b in data["columns"]], coef=np.asarray(data["coef"], dtype=float),
            intercept=float(data["intercept"]), stats={(s, b): BandStat(int(n), int(lost)) for s, b, n, lost in data["stats"]},
            base_loss=float(data["base_loss"]), red_min=float(data["red_min"]), amber_min=float(data["amber_min"]),
            holdout_auc=data["holdout_auc"], deals=int(data["deals"]), snapshots=int(data["snapshots"]),
            cutoff=datetime.fromisoformat(data["cutoff"]), horizon_days=float(data["horizon_days"]), c=float(data["c"]),
            holdout_auc_low=data["holdout_auc_low"], rule_auc=data["rule_auc"], fold_aucs=list(data["fold_aucs"]),
        )


class _Patterns:
    """Snapshots grouped by their set of bands: one-hot rows repeat, so the fit sees each once, weighted."""

    def __init__(self, columns: list[tuple[str, str]]):
        self.index = {col: i for i, col in enumerate(columns)}
        self.keys: dict[tuple[int, ...], int] = {}
        self.counts: list[list[int]] = []  # [won, lost]

    def add(self, readings: Sequence[Reading], lost: int) -> None:
        key = tuple(sorted(self.index[(r.signal, r.band)] for r in readings if (r.signal, r.band) in self.index))
        slot = self.keys.get(key)
        if slot is None:
            slot = self.keys[key] = len(self.counts)
            self.counts.append([0, 0])
        self.counts[slot][lost] += 1

    def design(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, weight): each pattern twice, once per outcome, weighted by its count."""
        x = np.zeros((2 * len(self.keys), len(self.index)))
        for key, slot in self.keys.items():
            x[2 * slot, list(key)] = 1.0
            x[2 * slot + 1, list(key)] = 1.0
        y = np.tile([0, 1], len(self.keys))
        w = np.array([c for pair in self.counts for c in pair], dtype=float)
        keep = w > 0
        return x[keep], y[keep], w[keep]


def _fit_lr(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=c, max_iter=1000).fit(x, y, sample_weight=w)


def _weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float | None:
    """AUC with counted rows: P(a lost snapshot scores above a won one), ties half."""
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    p, y, w = p[order], y[order], w[order]
    wins, neg_below, i = 0.0, 0.0, 0
    while i < len(p):
        j = i
        while j < len(p) and p[j] == p[i]:
            j += 1
        pos_here, neg_here = w[i:j][y[i:j] == 1].sum(), w[i:j][y[i:j] == 0].sum()
        wins += pos_here * (neg_below + 0.5 * neg_here)
        neg_below += neg_here
        i = j
    return float(wins / (pos * neg))


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(len(values) - 1, int(np.searchsorted(cum, q * cum[-1])))])


def fit_model(rows: Sequence[Snapshot], labels: Sequence[int], *, cutoff: datetime, horizon: float,
              c: float = DEFAULT_C, red_share: float = DEFAULT_RED_SHARE,
              amber_share: float = DEFAULT_AMBER_SHARE) -> RiskModel:
    deals = len({s.deal_id for s in rows})
    lost_deals = len({s.deal_id for s, lab in zip(rows, labels, strict=True) if lab})
    if deals < MIN_CLOSED or lost_deals < MIN_PER_CLASS or deals - lost_deals < MIN_PER_CLASS:
        raise NotEnoughHistory(f"{deals} closed deals ({lost_deals} lost) seen while open before {cutoff:%Y-%m-%d}; "
                               f"learning needs {MIN_CLOSED}, with at least {MIN_PER_CLASS} won and {MIN_PER_CLASS} lost")
    stats_acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s, lab in zip(rows, labels, strict=True):
        for r in s.readings:
            acc = stats_acc[(r.signal, r.band)]
            acc[0] += 1
            acc[1] += lab
    columns = sorted(stats_acc)
    model = RiskModel(columns=columns, coef=np.zeros(len(columns)), intercept=0.0,
                      stats={k: BandStat(v[0], v[1]) for k, v in stats_acc.items()},
                      base_loss=sum(labels) / len(labels), red_min=1.0, amber_min=1.0, holdout_auc=None, deals=deals,
                      snapshots=len(rows), cutoff=cutoff, horizon_days=horizon, c=c)
    fold_scores(model, rows, labels, columns, c)
    everything = _Patterns(columns)
    for s, lab in zip(rows, labels, strict=True):
        everything.add(s.readings, lab)
    x, y, w = everything.design()
    lr = _fit_lr(x, y, w, c)
    model.coef, model.intercept = lr.coef_[0], float(lr.intercept_[0])
    p = lr.predict_proba(x)[:, 1]
    model.red_min = _weighted_quantile(p, w, 1 - red_share)
    model.amber_min = _weighted_quantile(p, w, 1 - red_share - amber_share)
    if model.amber_min >= model.red_min:
        model.amber_min = model.red_min - 1e-9
    return model


FOLD_CUTS = (0.55, 0.7, 0.85)  # of the snapshot times: learn before a cut, judge up to the next
FOLD_MIN_AUC = 0.55
FOLD_Z = 1.645


def _rule_score(readings: Sequence[Reading]) -> float:
    """The single rule the weights must beat: days in stage against similar deals, else age against the won cycle."""
    by = {r.signal: r for r in readings}
    for name in ("time_in_stage", "cycle_and_quarter"):
        if name in by and by[name].value is not None:
            return float(by[name].value)
    return 0.0


def fold_scores(model: RiskModel, rows: Sequence[Snapshot], labels: Sequence[int], columns: list[tuple[str, str]],
                c: float) -> None:
    """Rolling time-ordered folds: the weights' AUC on each later period, its interval, and the rule's.

    The mean weighs the folds 1, 2, 3 from the oldest period to the newest; its standard error
    combines each fold's sampling error (Hanley-McNeil, counted in deals, not snapshots: one deal
    seen on many days is one case) with the same weights. A newest period ranked backwards
    caps the lower end at 0.5, so the weights are not used.
    """
    times = sorted({s.at for s in rows})
    if len(times) < 8:
        return
    bounds = [times[int(len(times) * q)] for q in FOLD_CUTS] + [None]
    aucs, ses, rule_aucs = [], [], []
    for start, stop in zip(bounds, bounds[1:]):
        old, new = _Patterns(columns), _Patterns(columns)
        rule_y, rule_p, rule_w = [], [], []
        lost_deals, won_deals = set(), set()
        for s, lab in zip(rows, labels, strict=True):
            if s.at < start:
                old.add(s.readings, lab)
            elif stop is None or s.at < stop:
                new.add(s.readings, lab)
                rule_y.append(lab)
                rule_p.append(_rule_score(s.readings))
                rule_w.append(1.0)
                (lost_deals if lab else won_deals).add(s.deal_id)
        x_old, y_old, w_old = old.design()
        x_new, y_new, w_new = new.design()
        if len(set(y_old)) < 2 or len(set(y_new)) < 2 or min(len(lost_deals), len(won_deals)) < 3:
            continue
        lr = _fit_lr(x_old, y_old, w_old, c)
        auc = _weighted_auc(y_new, lr.predict_proba(x_new)[:, 1], w_new)
        if auc is None:
            continue
        aucs.append(auc)
        ses.append(_hanley_se(auc, len(lost_deals), len(won_deals)))
        rule = _weighted_auc(np.array(rule_y), np.array(rule_p), np.array(rule_w))
        if rule is not None:
            rule_aucs.append(rule)
    if not aucs:
        return
    weights = np.arange(1, len(aucs) + 1, dtype=float)  # the newest period weighs most, as for the lead scorer
    mean = float(np.sum(weights * np.array(aucs)) / weights.sum())
    se = float(np.sqrt(np.sum((weights * np.array(ses)) ** 2)) / weights.sum())
    model.holdout_auc = mean
    model.holdout_auc_low = mean - FOLD_Z * se if aucs[-1] > 0.5 else min(0.5, mean - FOLD_Z * se)
    model.rule_auc = float(np.mean(rule_aucs)) if rule_aucs else None
    model.fold_aucs = [round(a, 4) for a in aucs]


def _hanley_se(a: float, n_pos: int, n_neg: int) -> float:
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def learn(book: Book, cache: SnapshotCache, cutoff: datetime, *, c: float = DEFAULT_C,
          horizon_quantile: float = DEFAULT_HORIZON_QUANTILE, red_share: float = DEFAULT_RED_SHARE,
          amber_share: float = DEFAULT_AMBER_SHARE) -> RiskModel:
    """The model as it could have been learned at `cutoff`: raises NotEnoughHistory when it cannot."""
    horizon = horizon_days(book, cutoff, horizon_quantile)
    rows, labels = training_rows(book, cache, cutoff, horizon)
    return fit_model(rows, labels, cutoff=cutoff, horizon=horizon, c=c, red_share=red_share, amber_share=amber_share)


# -- the prior: the hypotheses with guessed weights, until history can test them ----------------------
PRIOR_WEIGHTS: dict[tuple[str, str], float] = {
    ("time_in_stage", "2-3x"): 0.6, ("time_in_stage", ">=3x"): 1.0,
    ("days_since_activity", "14-30d"): 0.5, ("days_since_activity", ">=30d"): 1.0, ("days_since_activity", "none"): 0.4,
    ("days_since_reply", ">=21d"): 0.7, ("days_since_reply", "never"): 0.4,
    ("close_date", "slipped"): 0.5, ("close_date", "slipped >30d"): 0.9,
    ("stage_regressions", "1+"): 0.5,
    ("engagement_trend", "falling"): 0.5, ("engagement_trend", "quiet"): 0.7, ("engagement_trend", "rising"): -0.3,
    ("owner_record", "worse"): 0.2, ("owner_record", "better"): -0.2,
    ("competitor", "mentioned"): 0.4,
    ("decision_maker", DM_NOT_ENGAGED): 0.4, ("decision_maker", DM_UNKNOWN): 0.2, ("decision_maker", DM_ENGAGED): -0.3,
}


def prior_probability(readings: Sequence[Reading]) -> float:
    z = math.log(PRIOR_BASE_LOSS / (1 - PRIOR_BASE_LOSS)) + sum(PRIOR_WEIGHTS.get((r.signal, r.band), 0.0) for r in readings)
    return 1 / (1 + math.exp(-z))


def prior_flag(p: float) -> str:
    return "red" if p >= PRIOR_RED else "amber" if p >= PRIOR_AMBER else "green"
