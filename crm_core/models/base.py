"""Declarative base and the created/updated timestamp mixin every entity carries."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_core import clock

# Stable constraint names, so Alembic migrations can refer to them on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime()}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=clock.now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now, nullable=False)
