"""Back-test of the pipeline flags on whatever book is in the store.

At each as-of date in a series, the deals open then are flagged with only what was known then:
their stage changes and touches up to that date, and weights learned only from deals closed
before it (`agents.pipeline.signals.learn`). Each flag is then compared with how the deal ended.
A deal still open at the end of the data has no outcome yet: counted, not scored.

Per flag it prints how many deal-dates and deals, how many ended lost, the lost share with its
Wilson 95 % interval, and the lift of red over green (lost share of red / lost share of green)
with a 95 % interval from a bootstrap that resamples deals (a deal open at several dates counts
once per resample, so the dates do not pass for independent evidence). Beside the learned weights'
lift, the lift of what the agent itself flags with at each date: the learned weights where they
passed the later-period check (`usable`), its built-in prior weights where they did not. Two
baselines on the same dates, in the same run: a single rule ("days in stage above the average for similar deals", or
where the book has no stage history, "open longer than the typical won cycle") and a constant
(every deal the same flag: lift 1 by definition).
"""
from __future__ import annotations

import argparse
import math
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel

from agents.learning.metrics import auc as auc_of
from agents.pipeline.signals import (
    DEFAULT_AMBER_SHARE,
    DEFAULT_C,
    DEFAULT_HORIZON_QUANTILE,
    DEFAULT_RED_SHARE,
    Book,
    NotEnoughHistory,
    SnapshotCache,
    horizon_days,
    learn,
    prior_flag,
    prior_probability,
)
from crm_core import clock
from crm_core.contexts.pipeline import load_book
from crm_core.db import unit_of_work
from crm_core.errors import UserError
from orchestration.cli.run_eval import parse_as_of

FLAGS = ("red", "amber", "green")
DEFAULT_DATES = 8
DEFAULT_EVERY_DAYS = 14
BOOTSTRAP = 1000


class FlagRow(BaseModel):
    flag: str
    deal_dates: int
    deals: int
    with_outcome: int
    lost: int
    still_open: int
    lost_share: float | None
    low: float | None
    high: float | None


class Lift(BaseModel):
    name: str
    high_group: str
    low_group: str
    lift: float | None
    low: float | None
    high: float | None
    high_share: float | None
    low_share: float | None


class DateRow(BaseModel):
    as_of: datetime
    open_deals: int
    with_outcome: int
    learned: bool
    trained_on_deals: int = 0
    holdout_auc: float | None = None
    red_min: float | None = None
    amber_min: float | None = None
    counts: dict[str, list[int]] = {}   # flag -> [with outcome, lost]
    note: str | None = None
    usable: bool = True                 # the weights passed the later-period check; False: the agent used its prior
    rule_auc: float | None = None       # the single rule's AUC on the same later periods
    agent_counts: dict[str, list[int]] = {}  # flag the agent used (learned or prior) -> [with outcome, lost]


class PipelineBacktest(BaseModel):
    dates: list[DateRow]
    flags: list[FlagRow]
    lift: Lift
    agent_lift: Lift                    # red over green of the flags the agent itself would have raised
    agent_auc: float | None = None      # AUC of the probability the agent used (learned or prior) per date
    baseline_rule: Lift
    baseline_rule_name: str
    baseline_constant: Lift
    auc: float | None
    overall_lost_share: float | None
    settings: dict
    notes: list[str] = []


# -- statistics ---------------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def cluster_lift(per_deal: dict[int, list[int]], *, n_boot: int = BOOTSTRAP, seed: int = 7) -> tuple[float | None, float | None, float | None]:
    """Lift (hi lost / hi n) / (lo lost / lo n) and a bootstrap 95 % interval resampling deals.

    `per_deal`: deal -> [hi_n, hi_lost, lo_n, lo_lost] over the dates it was scored.
    """
    if not per_deal:
        return None, None, None
    m = np.array(list(per_deal.values()), dtype=float)
    tot = m.sum(axis=0)
    if tot[0] == 0 or tot[2] == 0 or tot[3] == 0:
        return None, None, None
    lift = (tot[1] / tot[0]) / (tot[3] / tot[2])
    rng = np.random.default_rng(seed)
    lifts = []
    for _ in range(n_boot):
        s = m[rng.integers(0, len(m), len(m))].sum(axis=0)
        if s[0] > 0 and s[2] > 0 and s[3] > 0:
            lifts.append((s[1] / s[0]) / (s[3] / s[2]))
    if len(lifts) < n_boot // 2:
        return float(lift), None, None
    lo, hi = np.quantile(lifts, [0.025, 0.975])
    return float(lift), float(lo), float(hi)


def _lift(name: str, hi: str, lo: str, per_deal: dict[int, list[int]], n_boot: int) -> Lift:
    value, low, high = cluster_lift(per_deal, n_boot=n_boot)
    m = np.array(list(per_deal.values()), dtype=float) if per_deal else np.zeros((1, 4))
    tot = m.sum(axis=0)
    return Lift(name=name, high_group=hi, low_group=lo, lift=_r(value), low=_r(low), high=_r(high),
                high_share=_r(tot[1] / tot[0]) if tot[0] else None, low_share=_r(tot[3] / tot[2]) if tot[2] else None)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


# -- the replay ---------------------------------------------------------------------------------------
def _tally(per_deal: dict[int, list[int]], deal_id: int, flag: str, lost: int) -> None:
    """Red and green deal-dates (and their losses) per deal, for the clustered lift."""
    if flag == "red":
        per_deal[deal_id][0] += 1
        per_deal[deal_id][1] += lost
    elif flag == "green":
        per_deal[deal_id][2] += 1
        per_deal[deal_id][3] += lost


def default_dates(book: Book, count: int = DEFAULT_DATES, every_days: int = DEFAULT_EVERY_DAYS) -> list[datetime]:
    """The latest dates whose open deals have mostly ended: `count` dates, `every_days` apart,
    the last one a typical deal length before the newest close."""
    closed = book.closed_before(datetime.max)
    if not closed:
        raise UserError("pipeline back-test: the store holds no won or lost deal with a close date; nothing to compare flags with")
    newest = max(d.closed_at for d in closed)
    last = datetime.combine((newest - timedelta(days=horizon_days(book, newest + timedelta(days=1)))).date(), datetime.min.time())
    return [last - timedelta(days=every_days * i) for i in reversed(range(count))]


def rule_fires(readings) -> tuple[bool | None, str]:
    """The single-rule baseline: days in stage above the average for similar deals (or, with no
    stage history, open longer than the typical won cycle). None: the rule cannot be read."""
    by = {r.signal: r for r in readings}
    if "time_in_stage" in by:
        return by["time_in_stage"].value > 1.0, "days in stage > the average for similar deals"
    if "cycle_and_quarter" in by:
        return by["cycle_and_quarter"].value > 1.0, "days open > the typical won cycle"
    return None, "no rule readable"


def run(book: Book, dates: list[datetime], *, c: float = DEFAULT_C, horizon_quantile: float = DEFAULT_HORIZON_QUANTILE,
        red_share: float = DEFAULT_RED_SHARE, amber_share: float = DEFAULT_AMBER_SHARE, n_boot: int = BOOTSTRAP,
        cache: SnapshotCache | None = None) -> PipelineBacktest:
    if not dates:
        raise UserError("pipeline back-test: give at least one --as-of date")
    cache = cache or SnapshotCache(book)
    rows: list[DateRow] = []
    per_flag: dict[str, dict] = {f: {"dd": 0, "deals": set(), "known": 0, "lost": 0, "open": 0} for f in FLAGS}
    red_green: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    agent_red_green: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    agent_ps: list[float] = []
    rule: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    const: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rule_names: set[str] = set()
    ys, ps = [], []
    notes: list[str] = []
    for as_of in sorted(dates):
        open_deals = [d for d in book.deals if d.open_at(as_of)]
        try:
            model = learn(book, cache, as_of, c=c, horizon_quantile=horizon_quantile, red_share=red_share, amber_share=amber_share)
        except NotEnoughHistory as exc:
            rows.append(DateRow(as_of=as_of, open_deals=len(open_deals), with_outcome=0, learned=False, note=str(exc)))
            continue
        readings = [cache.readings(d, as_of) for d in open_deals]
        p = model.predict(readings)
        counts = {f: [0, 0] for f in FLAGS}
        agent_counts = {f: [0, 0] for f in FLAGS}
        known_here = 0
        for deal, prob, rs in zip(open_deals, p, readings, strict=True):
            flag = model.flag(float(prob))
            acc = per_flag[flag]
            acc["dd"] += 1
            acc["deals"].add(deal.deal_id)
            if deal.closed_at is None or deal.outcome not in ("won", "lost"):
                acc["open"] += 1
                continue
            lost = int(deal.outcome == "lost")
            known_here += 1
            acc["known"] += 1
            acc["lost"] += lost
            counts[flag][0] += 1
            counts[flag][1] += lost
            ys.append(lost)
            ps.append(float(prob))
            _tally(red_green, deal.deal_id, flag, lost)
            # What the agent flags with here: these weights only where they passed the check, else its prior.
            agent_p = float(prob) if model.usable else prior_probability(rs)
            agent_flag = flag if model.usable else prior_flag(agent_p)
            agent_ps.append(agent_p)
            agent_counts[agent_flag][0] += 1
            agent_counts[agent_flag][1] += lost
            _tally(agent_red_green, deal.deal_id, agent_flag, lost)
            fires, name = rule_fires(rs)
            if fires is not None:
                rule_names.add(name)
                slot = rule[deal.deal_id]
                slot[0 if fires else 2] += 1
                slot[1 if fires else 3] += lost
            c_slot = const[deal.deal_id]
            c_slot[0] += 1
            c_slot[1] += lost
            c_slot[2] += 1
            c_slot[3] += lost
        rows.append(DateRow(as_of=as_of, open_deals=len(open_deals), with_outcome=known_here, learned=True,
                            trained_on_deals=model.deals, holdout_auc=_r(model.holdout_auc), red_min=_r(model.red_min),
                            amber_min=_r(model.amber_min), counts=counts, usable=model.usable, rule_auc=_r(model.rule_auc),
                            note=model.why_not_usable, agent_counts=agent_counts))
    flags = []
    for f in FLAGS:
        acc = per_flag[f]
        lo, hi = wilson(acc["lost"], acc["known"])
        flags.append(FlagRow(flag=f, deal_dates=acc["dd"], deals=len(acc["deals"]), with_outcome=acc["known"], lost=acc["lost"],
                             still_open=acc["open"], lost_share=_r(acc["lost"] / acc["known"]) if acc["known"] else None,
                             low=_r(lo), high=_r(hi)))
    if not ys:
        raise UserError("pipeline back-test: no deal open at those dates has ended yet (or too few closed deals to "
                        "learn from before them); choose earlier --as-of dates")
    rule_name = " / ".join(sorted(rule_names)) or "no rule readable"
    return PipelineBacktest(
        dates=rows, flags=flags,
        lift=_lift("red over green", "red", "green", red_green, n_boot),
        agent_lift=_lift("the agent's flags, red over green", "red", "green", agent_red_green, n_boot),
        agent_auc=_r(auc_of(ys, agent_ps)),
        baseline_rule=_lift(f"rule: {rule_name}", "rule fires", "rule silent", rule, n_boot),
        baseline_rule_name=rule_name,
        baseline_constant=_lift("constant (every deal the same flag)", "all", "all", const, n_boot),
        auc=_r(auc_of(ys, ps)), overall_lost_share=_r(sum(ys) / len(ys)),
        settings={"regularisation_c": c, "horizon_quantile": horizon_quantile, "red_share": red_share,
                  "amber_share": amber_share, "bootstrap": n_boot},
        notes=notes,
    )


# -- printing -----------------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "    -" if v is None else f"{v * 100:5.1f}%"


def _lift_text(lift: Lift) -> str:
    if lift.lift is None:
        return "n/a"
    ci = f" [95% CI {lift.low:.2f}-{lift.high:.2f}]" if lift.low is not None else " [CI n/a]"
    return f"{lift.lift:.2f}{ci} ({_pct(lift.high_share).strip()} vs {_pct(lift.low_share).strip()} lost)"


def format_text(r: PipelineBacktest) -> str:
    learned = [d for d in r.dates if d.learned]
    lines = [
        f"Pipeline back-test: {len(r.dates)} as-of date(s) from {r.dates[0].as_of:%Y-%m-%d} to {r.dates[-1].as_of:%Y-%m-%d}",
        "  at each date: deals open then, flagged with weights learned only from deals closed before it",
        f"  settings: C={r.settings['regularisation_c']}, horizon quantile {r.settings['horizon_quantile']}, "
        f"red share {r.settings['red_share']}, amber share {r.settings['amber_share']}",
        "",
        f"  {'as of':10s} {'open':>6s} {'ended':>6s} {'learned from':>13s} {'fold AUC':>13s} {'red from':>9s} {'amber from':>11s}",
    ]
    for d in r.dates:
        if not d.learned:
            lines.append(f"  {d.as_of:%Y-%m-%d} {d.open_deals:6d}      -  skipped: {d.note}")
            continue
        auc = f"{d.holdout_auc:.3f}" if d.holdout_auc is not None else "n/a"
        lines.append(f"  {d.as_of:%Y-%m-%d} {d.open_deals:6d} {d.with_outcome:6d} {d.trained_on_deals:8d} deals {auc:>13s} "
                     f"{_pct(d.red_min):>9s} {_pct(d.amber_min):>11s}"
                     + ("  agent: learned" if d.usable else f"  agent: prior (weights not used: rule AUC {d.rule_auc})"))
    unused = sum(1 for d in learned if not d.usable)
    if unused:
        lines.append(f"  on {unused} of {len(learned)} dates the weights did not clearly beat chance and the single rule on "
                     "later periods: the agent flagged with its prior weights there; the table below is the learned "
                     "weights', the agent's lift is reported beside theirs")
    lines += ["", "  lost share per flag (deal-dates with an outcome; Wilson 95% CI)",
              f"  {'flag':6s} {'deal-dates':>10s} {'deals':>6s} {'ended':>6s} {'lost':>6s} {'lost share':>11s} {'95% CI':>16s} {'still open':>11s}"]
    for f in r.flags:
        ci = f"{_pct(f.low).strip()}-{_pct(f.high).strip()}" if f.low is not None else "-"
        lines.append(f"  {f.flag:6s} {f.deal_dates:10d} {f.deals:6d} {f.with_outcome:6d} {f.lost:6d} {_pct(f.lost_share):>11s} "
                     f"{ci:>16s} {f.still_open:11d}")
    lines += [
        "",
        f"  overall lost share {_pct(r.overall_lost_share).strip()}; AUC of the loss probability {r.auc if r.auc is not None else 'n/a'}",
        f"  lift red over green, learned weights:  {_lift_text(r.lift)}",
        f"  lift red over green, the agent's flags (learned where usable, prior elsewhere): {_lift_text(r.agent_lift)}; "
        f"AUC {r.agent_auc if r.agent_auc is not None else 'n/a'}",
        "    the agent's flags, ended deal-dates (lost): " + ", ".join(
            f"{f} {sum(d.agent_counts.get(f, [0, 0])[0] for d in learned)} "
            f"({sum(d.agent_counts.get(f, [0, 0])[1] for d in learned)})" for f in FLAGS),
        f"  baseline {r.baseline_rule.name}: {_lift_text(r.baseline_rule)}",
        f"  baseline {r.baseline_constant.name}: {_lift_text(r.baseline_constant)}",
        "  (lift CIs: bootstrap resampling deals, so a deal open at several dates is one unit)",
    ]
    if r.lift.lift is not None and r.baseline_rule.lift:
        lines.append(f"  ratio of lifts, learned weights vs rule: {r.lift.lift / r.baseline_rule.lift:.2f}")
    if r.agent_lift.lift is not None and r.baseline_rule.lift:
        lines.append(f"  ratio of lifts, the agent's flags vs rule: {r.agent_lift.lift / r.baseline_rule.lift:.2f}")
    if not learned:
        lines.append("  note: no date had enough closed deals before it to learn from")
    for note in r.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=parse_as_of, action="append", dest="as_of",
                        help="a replay date (repeatable); default: the latest dates whose open deals have mostly ended")
    parser.add_argument("--from", type=parse_as_of, dest="date_from", help="first replay date of a series (with --to)")
    parser.add_argument("--to", type=parse_as_of, dest="date_to", help="last replay date of a series (with --from)")
    parser.add_argument("--every-days", type=int, default=DEFAULT_EVERY_DAYS, help="days between replay dates (default 14)")
    parser.add_argument("--regularisation-c", type=float, default=DEFAULT_C, help=f"inverse L2 strength (default {DEFAULT_C})")
    parser.add_argument("--horizon-quantile", type=float, default=DEFAULT_HORIZON_QUANTILE,
                        help="learn only from snapshots this quantile of deal lengths before each date (default 0.25)")
    parser.add_argument("--red-share", type=float, default=DEFAULT_RED_SHARE, help="share of training snapshots flagged red (default 0.2)")
    parser.add_argument("--amber-share", type=float, default=DEFAULT_AMBER_SHARE, help="next share flagged amber (default 0.3)")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP, help="bootstrap resamples for the lift CI (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def series(date_from: datetime, date_to: datetime, every_days: int) -> list[datetime]:
    if date_to < date_from:
        raise UserError(f"pipeline back-test: --to {date_to:%Y-%m-%d} is before --from {date_from:%Y-%m-%d}")
    if every_days < 1:
        raise UserError(f"pipeline back-test: --every-days {every_days} must be 1 or more")
    out, t = [], date_from
    while t <= date_to:
        out.append(t)
        t += timedelta(days=every_days)
    return out


def dates_from_args(args: argparse.Namespace, book: Book) -> list[datetime]:
    dates = [clock.to_naive_utc(d) for d in (args.as_of or [])]
    if args.date_from or args.date_to:
        if not (args.date_from and args.date_to):
            raise UserError("pipeline back-test: --from and --to go together")
        dates += series(clock.to_naive_utc(args.date_from), clock.to_naive_utc(args.date_to), args.every_days)
    return sorted(set(dates)) or default_dates(book, every_days=args.every_days)


def replay(args: argparse.Namespace) -> PipelineBacktest:
    """The back-test the command line asks for, on the deals in the store."""
    for name in ("red_share", "amber_share", "horizon_quantile"):
        value = getattr(args, name)
        if not 0 < value < 1:
            raise UserError(f"pipeline back-test: --{name.replace('_', '-')} {value} must be between 0 and 1")
    if args.red_share + args.amber_share >= 1:
        raise UserError("pipeline back-test: --red-share plus --amber-share must leave some deals green")
    with unit_of_work(readonly=True) as session:
        book = load_book(session)
    if not book.deals:
        raise UserError("pipeline back-test: the store holds no deals")
    return run(book, dates_from_args(args, book), c=args.regularisation_c, horizon_quantile=args.horizon_quantile,
               red_share=args.red_share, amber_share=args.amber_share, n_boot=args.bootstrap)
