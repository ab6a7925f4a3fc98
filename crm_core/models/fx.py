"""Exchange rates and the reporting currency: what turns deals in several currencies into one pipeline number.

Rates are stored as ECB reference rates are published: units of a currency per one euro, on a
date. A conversion between two currencies goes through the euro (amount / rate_from * rate_to),
so one table of N rates converts between every pair. Each rate keeps its date and source, so a
total always says how old the rates behind it are.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class ExchangeRate(Base):
    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("currency", "rate_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))          # ISO 4217, upper case
    units_per_eur: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    rate_date: Mapped[date]
    source: Mapped[str] = mapped_column(String(200))          # "ECB reference rate", "entered by Morgan Lee", ...
    updated_by: Mapped[str] = mapped_column(String(200), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class ReportingCurrency(Base):
    """The one currency every total is shown in (a single row, id 1)."""

    __tablename__ = "reporting_currency"

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    updated_by: Mapped[str] = mapped_column(String(200), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
