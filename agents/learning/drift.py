"""Features whose distribution moves with time: a macro rate, a form field that changed options.

Under drift a model can lean on a feature that mostly says *when* a lead arrived (an interest
rate, an index, a campaign code reused with a new meaning). The selection then tries each
candidate with and without these features and lets rolling time-ordered folds decide.

A feature drifts when the older half of the contacts (by entry) and the newest quarter are
told apart by it alone: for a number, the AUC of the value separating new from old is at least
`NUMERIC_AUC` away from 0.5; for a category, the total variation distance between the two
value distributions is at least `CATEGORY_TVD`. Engagement windows and the snapshot's age are
not judged: they describe a moment in the contact's own life.

A calendar feature is a property of the day rather than of the lead: contacts that entered on
the same day share its value (a number whose variance is at least `CALENDAR_R2` explained by the
entry day; a category equal to its day's most common value for `CALENDAR_SHARE` of contacts),
like an interest rate or an index. It cannot rank leads that are open at the same moment (they
share it), only say how the base rate moved, which calibration to the newest period already
does; extrapolated to a new regime it ranks backwards. So the scorer always leaves it out.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np

from agents.learning import metrics

NUMERIC_AUC = 0.25      # |AUC - 0.5| at or above this: the value mostly tells old from new
CATEGORY_TVD = 0.35
MIN_ROWS = 40
NOT_JUDGED = frozenset({"age_days"})
CALENDAR_R2 = 0.9
CALENDAR_SHARE = 0.95
MIN_SHARED_DAYS = 10    # days with two or more contacts, to judge "shared by the day" at all
CALENDAR_WHY = ("contacts that came in on the same day share its value: it says when a lead came, not which lead "
                "is better, and the newest period's rate already sets the level")


def drifting_features(rows_by_entry: Sequence[dict[str, Any]], *, skip: Sequence[str] = ()) -> dict[str, str]:
    """feature -> why it counts as drifting, judged on one row per contact in entry order."""
    return _drifting(rows_by_entry, skip)


def calendar_features(rows: Sequence[dict[str, Any]], days: Sequence[date], *, skip: Sequence[str] = ()) -> dict[str, str]:
    """feature -> why it is a property of the entry day rather than of the lead."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for i, d in enumerate(days):
        by_day[d].append(i)
    shared = [idx for idx in by_day.values() if len(idx) >= 2]
    if len(shared) < MIN_SHARED_DAYS:
        return {}
    names = sorted({k for row in rows for k in row} - set(skip) - NOT_JUDGED)
    out: dict[str, str] = {}
    for name in names:
        values = [rows[i].get(name) for idx in shared for i in idx]
        present = [v for v in values if v is not None]
        if len(present) < len(values) * 0.5 or len({str(v) for v in present}) < 2:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            total, within = [], []
            for idx in shared:
                xs = [float(rows[i][name]) for i in idx if rows[i].get(name) is not None]
                if len(xs) >= 2:
                    m = sum(xs) / len(xs)
                    within.extend(x - m for x in xs)
                    total.extend(xs)
            var = float(np.var(total)) if total else 0.0
            if var > 0 and 1 - float(np.mean(np.square(within))) / var >= CALENDAR_R2:
                out[name] = CALENDAR_WHY
        else:
            same = 0
            for idx in shared:
                c = Counter(str(rows[i].get(name)) for i in idx)
                same += c.most_common(1)[0][1]
            if same / sum(len(idx) for idx in shared) >= CALENDAR_SHARE:
                out[name] = CALENDAR_WHY
    return out


def _drifting(rows_by_entry: Sequence[dict[str, Any]], skip: Sequence[str]) -> dict[str, str]:
    n = len(rows_by_entry)
    if n < MIN_ROWS:
        return {}
    old = rows_by_entry[: n // 2]
    new = rows_by_entry[n - max(1, n // 4):]
    names = sorted({k for row in rows_by_entry for k in row} - set(skip) - NOT_JUDGED)
    out: dict[str, str] = {}
    for name in names:
        a = [r.get(name) for r in old]
        b = [r.get(name) for r in new]
        present = [v for v in a + b if v is not None]
        if not present:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            xa = np.array([float(v) for v in a if v is not None])
            xb = np.array([float(v) for v in b if v is not None])
            if len(xa) < 10 or len(xb) < 10:
                continue
            value = metrics.auc(np.r_[np.zeros(len(xa)), np.ones(len(xb))], np.r_[xa, xb])
            if value is not None and abs(value - 0.5) >= NUMERIC_AUC:
                direction = "higher" if value > 0.5 else "lower"
                out[name] = (f"newer contacts have {direction} values (median {np.median(xb):.3g} against "
                             f"{np.median(xa):.3g} in the older half)")
        else:
            ca, cb = Counter(map(_text, a)), Counter(map(_text, b))
            tvd = 0.5 * sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in set(ca) | set(cb))
            if tvd >= CATEGORY_TVD:
                top_new = cb.most_common(1)[0][0]
                out[name] = (f"its values changed over time ({tvd:.0%} of the mix differs between older and newer "
                             f"contacts; most common now: {top_new})")
    return out


def _text(value: Any) -> str:
    return "(empty)" if value is None else str(value)[:40]
