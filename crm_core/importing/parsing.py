"""Column-wise typing of CSV cells with pandas: text, dates, numbers, booleans, phones, attributes.

Each parser takes a column (object dtype, None for an empty cell) and returns the typed values
plus a mask of the cells it could not read. Whole columns are judged at once: a date column is
M/D/YYYY or D/M/YYYY for all its values, and a number column uses one decimal separator.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from crm_core.errors import UserError

_FORMULA_CHARS = "=+-@\t\r"

# ---------------------------------------------------------------- text


def clean_text(column: pd.Series) -> pd.Series:
    """Trimmed strings, None for empty cells; undoes our export's formula escape ('=1 -> =1).

    A plain loop: on object columns it beats pandas' string methods, which convert to Arrow
    strings and back for every call.
    """
    out: list[str | None] = []
    for value in column.tolist():
        if value is None or value != value:  # None or NaN
            out.append(None)
            continue
        text = str(value).strip()
        if not text:
            out.append(None)
        elif text[0] == "'" and len(text) > 1 and text[1] in _FORMULA_CHARS:
            out.append(text[1:])
        else:
            out.append(text)
    return pd.Series(out, index=column.index, dtype=object)


# ---------------------------------------------------------------- dates

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}:?\d{2}|UTC)?$",
                  re.IGNORECASE)
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", "T%H:%M:%S", " %H:%M:%S.%f")


@dataclass(frozen=True)
class DateFormat:
    label: str
    pattern: str          # strptime pattern of the date part
    shape: re.Pattern[str]


_SLASH4 = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}\b")
_SLASH2 = re.compile(r"^\d{1,2}/\d{1,2}/\d{2}\b")
_DASH4 = re.compile(r"^\d{1,2}-\d{1,2}-\d{4}\b")
_DOT4 = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}\b")
_YMD_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}\b")

# Order is the tie-break for a column whose every value reads both ways: US order for
# slashes (what US CRM exports write), day first for dashes and dots (European exports).
DATE_FORMATS: tuple[DateFormat, ...] = (
    DateFormat("M/D/YYYY", "%m/%d/%Y", _SLASH4),
    DateFormat("D/M/YYYY", "%d/%m/%Y", _SLASH4),
    DateFormat("D-M-YYYY", "%d-%m-%Y", _DASH4),
    DateFormat("M-D-YYYY", "%m-%d-%Y", _DASH4),
    DateFormat("D.M.YYYY", "%d.%m.%Y", _DOT4),
    DateFormat("YYYY/M/D", "%Y/%m/%d", _YMD_SLASH),
    DateFormat("M/D/YY", "%m/%d/%y", _SLASH2),
    DateFormat("D/M/YY", "%d/%m/%y", _SLASH2),
)
DATE_FORMAT_LABELS = ("ISO", *(f.label for f in DATE_FORMATS))


@dataclass
class DateColumn:
    values: pd.Series            # naive UTC pandas Timestamps, NaT where empty or unreadable
    bad: pd.Series               # bool: a value was there and could not be read
    label: str | None            # the format the column was read in
    ambiguous_with: list[str] = field(default_factory=list)

    def as_python(self, *, date_only: bool = False) -> list[Any]:
        out: list[Any] = []
        for ts in self.values:
            if pd.isna(ts):
                out.append(None)
            else:
                value: datetime = ts.to_pydatetime()
                out.append(value.date() if date_only else value)
        return out


def _parse_with(values: pd.Series, pattern: str) -> pd.Series:
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = values
    for suffix in _TIME_SUFFIXES:
        if todo.empty:
            break
        parsed = pd.to_datetime(todo, format=pattern + suffix, errors="coerce")
        hit = parsed.notna()
        result.loc[hit[hit].index] = parsed[hit].astype("datetime64[us]")
        todo = todo[~hit]
        if not suffix:  # only values with a time part can still be read by the formats with times
            todo = todo[todo.str.contains(r"\d[ T]\d", regex=True)]
    return result


def parse_dates(column: pd.Series, forced: str | None = None) -> DateColumn:
    """Read a date/datetime column; one format for the whole column, ISO always accepted too.

    The format is the one that reads every non-ISO value. When several do (every day is 12 or
    less), the order of DATE_FORMATS decides and `ambiguous_with` names the others; `forced`
    (a label from a mapping's __date_formats__) overrides the choice.
    """
    present = column.notna()
    text = column[present].astype(str)
    result = pd.Series(pd.NaT, index=column.index, dtype="datetime64[us]")
    iso = text.str.match(_ISO)
    if iso.any():
        iso_text = text[iso].str.replace(r"\s*UTC$", "", regex=True, case=False).str.replace(",", ".", regex=False)
        parsed = pd.to_datetime(iso_text, format="ISO8601", errors="coerce", utc=True)
        result.loc[parsed.index] = parsed.dt.tz_convert(None).astype("datetime64[us]")
    rest = text[~iso]
    label: str | None = "ISO" if iso.any() else None
    ambiguous: list[str] = []
    if not rest.empty:
        candidates = [f for f in DATE_FORMATS if forced is None or f.label == forced]
        if forced is not None and forced != "ISO" and not candidates:
            raise UserError(f"unknown date format {forced!r}; use one of {', '.join(DATE_FORMAT_LABELS)}")
        scored: list[tuple[int, int, DateFormat, pd.Series]] = []
        for order, fmt in enumerate(candidates):
            shaped = rest[rest.str.match(fmt.shape)]
            if shaped.empty:
                continue
            parsed = _parse_with(shaped, fmt.pattern)
            scored.append((int(parsed.notna().sum()), -order, fmt, parsed))
        if scored:
            scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
            best_count, _, best, parsed = scored[0]
            ambiguous = [fmt.label for count, _, fmt, _ in scored[1:] if count == best_count]
            result.loc[parsed.index] = parsed
            label = best.label
    bad = present & result.isna()
    return DateColumn(values=result, bad=bad, label=label, ambiguous_with=ambiguous)


# ---------------------------------------------------------------- numbers

_CURRENCY = re.compile(r"^(?:[A-Z]{3}|R\$|[$€£¥₹])\s*|\s*(?:[A-Z]{3}|[$€£¥₹])$")
_PLAIN = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_US_GROUPED = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_EU_GROUPED = re.compile(r"^[-+]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$")
_SPACE_GROUPED = re.compile(r"^[-+]?\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?$")
_MAX_ABS = Decimal("1e15")


@dataclass
class NumberColumn:
    values: list[Decimal | None]
    bad: pd.Series
    reasons: dict[Any, str] = field(default_factory=dict)  # index -> why, for cells that are numbers but not allowed


def parse_decimals(column: pd.Series) -> NumberColumn:
    """Numbers as Decimal: '1,234.50', '$1 234', '1.234,50' (EU) and '(12)' (accounting minus) are read."""
    present = column.notna()
    text = column[present].astype(str).str.strip()
    text = text.str.replace(r"^\((.*)\)$", r"-\1", regex=True)
    text = text.str.replace(_CURRENCY, "", regex=True).str.strip()
    normalised = pd.Series(None, index=text.index, dtype=object)
    plain = text.str.match(_PLAIN)
    normalised[plain] = text[plain]
    rest = text[~plain]
    if not rest.empty:
        # One decimal separator per column: any unmistakably European value makes the column European.
        european = bool(rest.str.match(_EU_GROUPED).any()
                        or (rest.str.match(_COMMA_DECIMAL).any() and not rest.str.match(_US_GROUPED).any()))
        spaced = rest.str.match(_SPACE_GROUPED)
        compact = rest.where(~spaced, rest.str.replace(r"[ \u00a0\u202f']", "", regex=True))
        if european:
            ok = compact.str.match(_EU_GROUPED) | compact.str.match(_COMMA_DECIMAL) | compact.str.match(_PLAIN)
            fixed = compact.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        else:
            ok = compact.str.match(_US_GROUPED) | compact.str.match(_PLAIN)
            fixed = compact.str.replace(",", "", regex=False)
        normalised[ok[ok].index] = fixed[ok]
    values: list[Decimal | None] = [None] * len(column)
    bad = pd.Series(False, index=column.index)
    reasons: dict[Any, str] = {}
    positions = {label: i for i, label in enumerate(column.index)}
    for label, raw in normalised.items():
        if not isinstance(raw, str):
            bad[label] = True
            continue
        try:
            number = Decimal(raw)
        except InvalidOperation:
            bad[label] = True
            continue
        if not number.is_finite() or abs(number) >= _MAX_ABS:
            bad[label] = True
            reasons[label] = "number out of range"
            continue
        values[positions[label]] = number
    return NumberColumn(values=values, bad=bad, reasons=reasons)


def parse_integers(column: pd.Series) -> NumberColumn:
    numbers = parse_decimals(column)
    values: list[Decimal | None] = []
    for label, value in zip(column.index, numbers.values, strict=True):
        if value is not None and value != value.to_integral_value():
            numbers.bad[label] = True
            numbers.reasons[label] = "not a whole number"
            values.append(None)
        else:
            values.append(None if value is None else int(value))  # type: ignore[arg-type]
    numbers.values = values
    return numbers


# ---------------------------------------------------------------- booleans

_TRUE = {"true", "yes", "y", "t", "1", "x", "on", "ja", "oui", "sim", "si"}
_FALSE = {"false", "no", "n", "f", "0", "off", "nein", "non", "nao", "não"}


def parse_booleans(column: pd.Series) -> tuple[list[bool | None], pd.Series]:
    lowered = column.where(column.isna(), column.astype(str).str.strip().str.lower())
    values: list[bool | None] = []
    bad = pd.Series(False, index=column.index)
    for label, value in lowered.items():
        if value is None or (isinstance(value, float) and pd.isna(value)):
            values.append(None)
        elif value in _TRUE:
            values.append(True)
        elif value in _FALSE:
            values.append(False)
        else:
            values.append(None)
            bad[label] = True
    return values, bad


# ---------------------------------------------------------------- phones

_PHONE_EXTENSION = r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$"


def normalise_phones(column: pd.Series) -> pd.Series:
    """`normalize.phone_key` for a whole column (vectorised; the two agree)."""
    out = pd.Series([None] * len(column), index=column.index, dtype=object)
    present = column.notna()
    if not present.any():
        return out
    text = column[present].astype(str).str.replace(_PHONE_EXTENSION, "", regex=True).str.strip()
    international = text.str.startswith("+")
    digits = text.str.replace(r"\D", "", regex=True)
    double_zero = ~international & digits.str.startswith("00")
    digits = digits.where(~double_zero, digits.str[2:])
    international = international | double_zero
    length = digits.str.len()
    readable = (length >= 7) & (length <= 15)
    nanp10 = readable & ~international & (length == 10) & digits.str[0].isin(list("23456789"))
    nanp11 = readable & ~international & (length == 11) & digits.str.startswith("1")
    national = readable & ~international & ~nanp10 & ~nanp11
    keyed = pd.Series(None, index=text.index, dtype=object)
    keyed[readable & international] = "+" + digits[readable & international]
    keyed[nanp10] = "+1" + digits[nanp10]
    keyed[nanp11] = "+" + digits[nanp11]
    keyed[national] = digits[national]
    out[keyed.index] = keyed
    return out.where(out.notna(), None)


# ---------------------------------------------------------------- custom attributes

_ATTR_NUMBER = re.compile(r"^-?(?:0|[1-9]\d{0,14})(?:\.\d+)?$")
# '$1,250,000', '1.250.000,50', '(12.50)': numbers a spreadsheet formatted; ids never look like this.
_ATTR_GROUPED_NUMBER = re.compile(r"^\(?[-+]?(?:[A-Z]{3}\s?|[$€£¥₹]\s?)?\d{1,3}(?:[.,' \u00a0]\d{3})*(?:[.,]\d+)?\s?(?:[A-Z]{3}|[$€£¥₹])?\)?$")
_LEADING_ZERO = re.compile(r"^\D*0\d")
_ATTR_TRUE = {"true", "yes"}
_ATTR_FALSE = {"false", "no"}


@dataclass
class AttributeColumn:
    type: str                 # number, date, boolean or text
    values: list[Any]         # JSON-ready: int/float, 'YYYY-MM-DD[THH:MM:SS]', bool, str; None when empty
    date_format: str | None = None


def infer_attribute(column: pd.Series, scale: float | None = None) -> AttributeColumn:
    """Type a column that maps to no field from all its values: number, date, boolean, else text.

    Digits with a leading zero (zip codes, ids) and 16+ digit numbers stay text: a number
    would lose the zero or the last digits.
    """
    present = column[column.notna()].astype(str)
    if present.empty:
        return AttributeColumn("text", [None] * len(column))
    lowered = present.str.lower()
    if lowered.isin(_ATTR_TRUE | _ATTR_FALSE).all():
        return AttributeColumn("boolean", [None if v is None else str(v).lower() in _ATTR_TRUE for v in column])
    if present.str.match(_ATTR_NUMBER).all():
        factor = scale or 1
        integral = not present.str.contains(".", regex=False).any() and float(factor).is_integer()
        values: list[Any] = []
        for v in column:
            if v is None:
                values.append(None)
            elif integral:
                values.append(int(v) * int(factor))
            else:
                values.append(float(v) * factor)
        return AttributeColumn("number", values)
    if present.str.match(_ATTR_GROUPED_NUMBER).all() and not present.str.match(_LEADING_ZERO).any():
        grouped = parse_decimals(column)
        if not grouped.bad.any():
            factor = Decimal(str(scale or 1))
            return AttributeColumn("number", [None if v is None else _json_number(v * factor) for v in grouped.values])
    dates = parse_dates(column)
    if not dates.bad.any() and dates.label is not None:
        parsed = dates.values.dropna()
        date_only = bool((parsed.dt.normalize() == parsed).all())
        out = [None if pd.isna(ts) else (ts.strftime("%Y-%m-%d") if date_only else ts.strftime("%Y-%m-%dT%H:%M:%S"))
               for ts in dates.values]
        return AttributeColumn("date", out, date_format=dates.label)
    return AttributeColumn("text", list(column))


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
