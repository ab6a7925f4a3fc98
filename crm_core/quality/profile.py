"""One field's profile: how full it is, what it holds, and what is wrong with it, with a score.

Placeholders are a known placeholder word, a 0 or a sentinel (-1, 999...) in a number field where
nothing else comes near it, or, in a field whose values are meant to be unique (emails, phones,
free text), one value repeated far too often. Category fields are also searched for spelling
variants; number fields for outliers and unit errors; date fields for impossible dates.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

from crm_core.quality.fields import FieldValues
from crm_core.quality.outliers import (
    as_datetime,
    impossible_date,
    numeric_outliers,
    sentinel_numbers,
    zero_is_placeholder,
)
from crm_core.quality.placeholders import is_placeholder_text, value_text
from crm_core.quality.schemas import Finding, FieldReport, TopValue
from crm_core.quality.variants import variant_clusters

TOP_VALUES = 5
_JUNK = re.compile(r"^(.)\1{3,}$|test|noemail|no-email|no_email|example\.(com|org)|noreply|fake|dummy|asdf|^n/?a@|^none@")
_ATTRIBUTE_EARLIEST = datetime(1900, 1, 1)


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _frequent_placeholders(fv: FieldValues, counts: Counter[str], filled: int) -> set[str]:
    """In a field meant to hold one value per record, a value shared by many records is a stand-in."""
    if fv.kind not in ("identifier", "text") or filled < 20 or len(counts) < 0.5 * filled:
        return set()
    found = set()
    for text, n in counts.items():
        if n < 3:
            continue
        junk = bool(_JUNK.search(text.casefold())) or text.strip("0+-() ") == ""
        if junk or n >= max(10, 0.01 * filled):
            found.add(text)
    return found


def profile_field(fv: FieldValues, records: int, now: datetime) -> FieldReport:
    texts_by_record: list[tuple[int, str]] = [(rid, value_text(v)) for rid, v in zip(fv.ids, fv.values, strict=True) if _filled(v)]
    filled = len(texts_by_record)
    counts: Counter[str] = Counter(t for _, t in texts_by_record)
    placeholders = {t for t in counts if is_placeholder_text(t)}
    findings: list[Finding] = []
    numbers: list[tuple[int, float]] = []
    if fv.kind == "number":
        numbers = [(rid, n) for rid, v in zip(fv.ids, fv.values, strict=True) if _filled(v) and (n := _number(v)) is not None]
        values = [n for _, n in numbers]
        if zero_is_placeholder(values):
            placeholders.add("0")
        placeholders |= {value_text(v) for v in sentinel_numbers(values)}
    placeholders |= _frequent_placeholders(fv, counts, filled)
    placeholder_ids = {t: [rid for rid, x in texts_by_record if x == t] for t in placeholders}
    for text in sorted(placeholders, key=lambda t: -counts[t]):
        n = counts[text]
        findings.append(Finding(
            kind="placeholder", field_key=fv.key, value=text, count=n, record_ids=placeholder_ids[text],
            message=f"“{text}” in {_plural(n, 'record')} stands for a missing value.",
        ))

    if fv.kind == "category":
        clean = Counter({t: n for t, n in counts.items() if t not in placeholders})
        for canonical, variants in variant_clusters(clean):
            for variant, n in sorted(variants.items(), key=lambda kv: -kv[1]):
                findings.append(Finding(
                    kind="variant", field_key=fv.key, value=variant, canonical=canonical, count=n,
                    record_ids=[rid for rid, x in texts_by_record if x == variant],
                    message=f"“{variant}” ({_plural(n, 'record')}) is another spelling of “{canonical}”.",
                ))

    if fv.kind == "number":
        kept = [(rid, n) for rid, n in numbers if value_text(n) not in placeholders]
        units, others = numeric_outliers(kept)
        by_id = dict(kept)
        by_factor: dict[float, list[int]] = {}
        for rid, factor in units.items():
            by_factor.setdefault(factor, []).append(rid)
        for factor, ids in sorted(by_factor.items()):
            size = f"{factor:,.0f} times too large" if factor >= 1 else f"{1 / factor:,.0f} times too small"
            findings.append(Finding(
                kind="unit", field_key=fv.key, factor=factor, count=len(ids), record_ids=sorted(ids),
                message=f"{_plural(len(ids), 'record')} look{'s' if len(ids) == 1 else ''} {size} "
                        f"(e.g. {value_text(by_id[ids[0]])}): likely typed in the wrong unit.",
            ))
        if others:
            findings.append(Finding(
                kind="outlier", field_key=fv.key, count=len(others), record_ids=sorted(others),
                message=f"{_plural(len(others), 'value')} sit{'s' if len(others) == 1 else ''} far from the rest "
                        f"(e.g. {value_text(by_id[others[0]])}); worth a look.",
            ))

    if fv.kind in ("date", "plan_date"):
        earliest = _ATTRIBUTE_EARLIEST if fv.field.startswith("attributes.") else None
        bad: dict[str, list[int]] = {}
        for rid, v in zip(fv.ids, fv.values, strict=True):
            when = as_datetime(v) if _filled(v) else None
            if when is None:
                continue
            why = (impossible_date(when, now, planned=fv.kind == "plan_date", earliest=earliest) if earliest
                   else impossible_date(when, now, planned=fv.kind == "plan_date"))
            if why:
                bad.setdefault(why, []).append(rid)
        for why, ids in bad.items():
            findings.append(Finding(
                kind="date", field_key=fv.key, value=why, count=len(ids), record_ids=ids,
                message=f"{_plural(len(ids), 'date')} {'is' if len(ids) == 1 else 'are'} {why}, which cannot be right.",
            ))

    placeholder_records = sum(counts[t] for t in placeholders)
    problem_records = placeholder_records + sum(f.count for f in findings if f.kind in ("variant", "unit", "outlier", "date"))
    real = filled - placeholder_records
    fill_rate = real / records if records else 0.0
    problem_share = min(1.0, problem_records / filled) if filled else 0.0
    # Wrong values hurt more than missing ones (an agent trusts them): a half-empty column scores 75
    # at best. Event dates (closed, last touched...) are empty until the event happens, and custom
    # fields are often meant for some records only (a lost reason, a webinar name): emptiness costs
    # them at most a fifth.
    if fv.kind in ("date", "plan_date"):
        fill_part = 1.0
    elif fv.field.startswith("attributes."):
        fill_part = 0.8 + 0.2 * fill_rate
    else:
        fill_part = 0.5 + 0.5 * fill_rate
    score = round(100.0 * (1.0 - problem_share) * fill_part, 1) if records else 100.0
    top = [TopValue(value=t, count=n) for t, n in counts.most_common(TOP_VALUES)]
    return FieldReport(
        field_key=fv.key, label=fv.label, kind=fv.kind, records=records, filled=filled,
        fill_rate=round(fill_rate, 4), distinct_values=len(counts), top_values=top,
        placeholders=sorted(placeholders), findings=findings, score=score, counted_in_book=filled > 0,
    )
