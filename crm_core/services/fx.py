"""Exchange rates and the reporting currency: one pipeline number for a book in several currencies.

This service changes them (rights, audit); reading them is `crm_core.fx`, re-exported here.
Default source: the European Central Bank's euro foreign exchange reference rates of
28 June 2024 (units of each currency per euro, as the ECB publishes them), shipped in
`crm_core.fx.DEFAULT_RATES` so a fresh store can total a mixed book without a network call. They are
a starting point, not a feed: the Pipeline health page shows their date, and anyone can enter
newer rates one by one or upload a CSV (`currency,units_per_eur,date[,source]`, e.g. from
https://www.ecb.europa.eu/stats/eurofxref/). The newest stored rate of a currency wins over
the default; every change is audited.

Changing a rate or the reporting currency needs the right `edit_exchange_rates` (managers and
admins): every total on the board moves with it.

A currency with no rate at all is never guessed: its deals are left out of the converted
total and counted, and the page says which currency lacks a rate.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import has_right, require, roles_with
from crm_core.errors import UserError
from crm_core.fx import (  # noqa: F401 - pages and services read these through this module
    DEFAULT_RATES,
    DEFAULT_RATES_DATE,
    DEFAULT_RATES_SOURCE,
    Rate,
    RateTable,
    currency_code,
    rate_table,
    reporting_currency,
)
from crm_core.models import ExchangeRate, ReportingCurrency
from crm_core.oversight.audit import record_as

MAX_RATE_CSV_ROWS = 5000
EDIT_RIGHT = "edit_exchange_rates"


def may_edit_rates(actor: Actor | None) -> bool:
    """Whether `actor` may enter or upload rates and choose the reporting currency: the page shows them the
    forms, or the rates read-only with `who_sets_rates()` said upfront instead of a form that fails."""
    return actor is not None and has_right(actor, EDIT_RIGHT)


def who_sets_rates() -> str:
    """'a manager or admin': who holds the right, for the page's sentence."""
    return roles_with(EDIT_RIGHT)


def set_rate(session: Session, currency: str, units_per_eur: float | Decimal | str, *, rate_date: date,
             actor: Actor, source: str | None = None) -> Rate:
    """Store one rate (units of `currency` per euro on `rate_date`); replaces that day's rate; audited."""
    require(actor, EDIT_RIGHT, doing="change an exchange rate")
    user = actor.name
    code = currency_code(currency)
    if code == "EUR":
        raise UserError("EUR is the base of the table: its rate is always 1.")
    value = _units(code, units_per_eur)
    if rate_date > clock.now().date():
        raise UserError(f"{code}: the rate date {rate_date:%Y-%m-%d} is in the future")
    source = (source or f"entered by {user}").strip()[:200]
    row = session.scalar(select(ExchangeRate).where(ExchangeRate.currency == code, ExchangeRate.rate_date == rate_date))
    old = float(row.units_per_eur) if row else None
    if row is None:
        row = ExchangeRate(currency=code, rate_date=rate_date, units_per_eur=value, source=source, updated_by=user)
        session.add(row)
    else:
        row.units_per_eur, row.source, row.updated_by = value, source, user
    session.flush()
    record_as(session, "fx.rate_set", actor=actor, currency=code, rate_date=rate_date.isoformat(),
           units_per_eur=str(value), old=old, source=source)
    return Rate(currency=code, units_per_eur=float(value), rate_date=rate_date, source=source)


def _units(code: str, units_per_eur: float | Decimal | str) -> Decimal:
    try:
        value = Decimal(str(units_per_eur).strip().replace(",", ""))
    except InvalidOperation:
        raise UserError(f"{code}: {units_per_eur!r} is not a number (units of {code} per 1 EUR, e.g. 1.0705)") from None
    if not value.is_finite() or value <= 0:
        raise UserError(f"{code}: the rate must be a positive number of {code} per 1 EUR")
    return value


def _date(value: str, where: str) -> date:
    text = (value or "").strip()
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise UserError(f"{where}: {value!r} is not a date as YYYY-MM-DD") from None


def import_rates_csv(session: Session, data: bytes, *, actor: Actor, filename: str = "rates.csv") -> int:
    """Rates from a CSV with columns currency, units_per_eur, date (YYYY-MM-DD) and optionally source.

    All rows or none: a bad row stops the upload with its row number. Returns rates stored.
    """
    require(actor, EDIT_RIGHT, doing=f"upload exchange rates from {filename}")
    user = actor.name
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{filename}: not UTF-8 text; save the rates as a CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    headers = {h.strip().lower(): h for h in (reader.fieldnames or [])}
    missing = [h for h in ("currency", "units_per_eur", "date") if h not in headers]
    if missing:
        raise UserError(f"{filename}: missing column(s) {', '.join(missing)}; expected currency, units_per_eur, date "
                        "and optionally source")
    parsed = []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_RATE_CSV_ROWS:
            raise UserError(f"{filename}: more than {MAX_RATE_CSV_ROWS:,} rates; upload the latest day only")
        where = f"{filename}, row {number}"
        code = currency_code(row.get(headers["currency"], ""), where)
        try:  # every row checked before any is stored: all rows or none
            value = _units(code, row.get(headers["units_per_eur"], ""))
        except UserError as exc:
            raise UserError(f"{where}: {exc}; nothing was stored") from None
        when = _date(row.get(headers["date"], ""), where)
        if when > clock.now().date():
            raise UserError(f"{where}: {code}: the rate date {when:%Y-%m-%d} is in the future; nothing was stored")
        parsed.append((code, value, when,
                       (row.get(headers["source"]) if "source" in headers else None) or f"{filename}, uploaded by {user}", where))
    if not parsed:
        raise UserError(f"{filename}: no rates in the file")
    stored = 0
    for code, value, when, source, where in parsed:
        if code == "EUR":
            continue
        try:
            set_rate(session, code, value, rate_date=when, actor=actor, source=source)
        except UserError as exc:
            raise UserError(f"{where}: {exc}; nothing was stored") from None
        stored += 1
    return stored


def set_reporting_currency(session: Session, currency: str, *, actor: Actor) -> str:
    require(actor, EDIT_RIGHT, doing="change the reporting currency")
    user = actor.name
    code = currency_code(currency)
    if code not in rate_table(session).rates:
        raise UserError(f"There is no exchange rate for {code}: add one first, then make it the reporting currency.")
    row = session.get(ReportingCurrency, 1, with_for_update=True)
    old = row.currency if row else None
    if row is None:
        session.add(ReportingCurrency(id=1, currency=code, updated_by=user))
    else:
        row.currency, row.updated_by = code, user
    session.flush()
    record_as(session, "fx.reporting_currency_set", actor=actor, currency=code, old=old)
    return code
