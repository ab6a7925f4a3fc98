"""The one clock. Code asks `now()`; tests and back-tests pin it with `frozen_at(...)`.

Times are naive UTC everywhere in the store: SQLite has no time zones, and one convention
avoids comparing aware with naive values.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime

_pinned: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("crm_now", default=None)


def now() -> datetime:
    pinned = _pinned.get()
    if pinned is not None:
        return pinned
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@contextlib.contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    token = _pinned.set(to_naive_utc(moment))
    try:
        yield moment
    finally:
        _pinned.reset(token)
