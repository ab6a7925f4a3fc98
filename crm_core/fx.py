"""Exchange rates and the reporting currency as the store holds them: read-only, no rights, no audit.

The rate table and the reporting currency are read by the Pipeline health service
(`crm_core.services.fx`, which also stores rates) and by the pipeline agent's context builder
(`crm_core.contexts.pipeline_routing`, which ranks deals by size). Both read them here, so a
context builder never calls a service.

Built-in default: the European Central Bank's euro foreign exchange reference rates of 28 June 2024
(units of each currency per euro), so a fresh store can total a mixed book without a network call.
The newest stored rate of a currency wins over the default. A currency with no rate at all is
never guessed: `RateTable.convert` returns None for it.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.errors import UserError
from crm_core.models import Deal, ExchangeRate, ReportingCurrency
from crm_core.settings import get_settings

DEFAULT_RATES_DATE = date(2024, 6, 28)
DEFAULT_RATES_SOURCE = "ECB euro reference rates of 28 June 2024 (built in)"
# Units of currency per 1 EUR, ECB reference rates of 28 June 2024.
DEFAULT_RATES: dict[str, Decimal] = {code: Decimal(v) for code, v in {
    "EUR": "1", "USD": "1.0705", "JPY": "171.94", "BGN": "1.9558", "CZK": "25.025", "DKK": "7.4575",
    "GBP": "0.84638", "HUF": "395.10", "PLN": "4.3090", "RON": "4.9773", "SEK": "11.3595", "CHF": "0.9634",
    "ISK": "148.90", "NOK": "11.3965", "TRY": "35.1868", "AUD": "1.6079", "BRL": "5.8915", "CAD": "1.4670",
    "CNY": "7.7748", "HKD": "8.3594", "IDR": "17487.21", "ILS": "4.0200", "INR": "89.2495", "KRW": "1474.86",
    "MXN": "19.5654", "MYR": "5.0501", "NZD": "1.7601", "PHP": "62.560", "SGD": "1.4513", "THB": "39.319",
    "ZAR": "19.4970",
}.items()}


class Rate(BaseModel):
    currency: str
    units_per_eur: float
    rate_date: date
    source: str
    built_in: bool = False


class RateTable(BaseModel):
    rates: dict[str, Rate]

    def convert(self, amount: float, from_currency: str, to_currency: str) -> float | None:
        """`amount` in `to_currency`, through the euro; None when either currency has no rate."""
        if from_currency == to_currency:
            return amount
        src, dst = self.rates.get(from_currency), self.rates.get(to_currency)
        if src is None or dst is None or src.units_per_eur <= 0:
            return None
        return amount / src.units_per_eur * dst.units_per_eur

    def rate(self, from_currency: str, to_currency: str) -> float | None:
        return self.convert(1.0, from_currency, to_currency)

    def oldest_date(self, currencies: set[str]) -> date | None:
        dates = [self.rates[c].rate_date for c in currencies if c in self.rates and c != "EUR"]
        return min(dates) if dates else None


def currency_code(value: str, where: str = "currency") -> str:
    code = (value or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise UserError(f"{where}: {value!r} is not a three-letter currency code (USD, EUR, GBP, ...)")
    return code


def rate_table(session: Session) -> RateTable:
    """The built-in ECB defaults with the newest stored rate of each currency on top."""
    rates = {code: Rate(currency=code, units_per_eur=float(v), rate_date=DEFAULT_RATES_DATE,
                        source=DEFAULT_RATES_SOURCE, built_in=True) for code, v in DEFAULT_RATES.items()}
    newest = select(ExchangeRate.currency, func.max(ExchangeRate.rate_date).label("d")).group_by(ExchangeRate.currency).subquery()
    rows = session.scalars(select(ExchangeRate).join(
        newest, (newest.c.currency == ExchangeRate.currency) & (newest.c.d == ExchangeRate.rate_date)))
    for r in rows:
        if r.currency == "EUR":
            continue
        rates[r.currency] = Rate(currency=r.currency, units_per_eur=float(r.units_per_eur), rate_date=r.rate_date,
                                 source=r.source)
    return RateTable(rates=rates)


def reporting_currency(session: Session) -> str:
    """The currency totals are shown in: as set on the page, else CRM_REPORTING_CURRENCY, else the
    currency most open deals are in."""
    row = session.get(ReportingCurrency, 1)
    if row is not None:
        return row.currency
    configured = get_settings().reporting_currency
    if configured:
        return currency_code(configured, "CRM_REPORTING_CURRENCY")
    top = session.execute(
        select(Deal.currency, func.count()).where(Deal.status == "open").group_by(Deal.currency)
        .order_by(func.count().desc(), Deal.currency).limit(1)).first()
    return top[0] if top and top[0] else "USD"
