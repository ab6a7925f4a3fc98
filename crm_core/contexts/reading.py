"""Small helpers every context builder uses to read the store."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

# Ids per IN (...) list: under SQLite's default limit of 999 bound parameters per statement.
CHUNK = 900


def chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i:i + CHUNK])


def payload_text(payload: dict[str, Any] | None, *keys: str) -> str | None:
    """The first non-empty value among `keys` of an activity's JSON payload, as text."""
    if not payload:
        return None
    for key in keys:
        value = payload.get(key)
        if value not in (None, ""):
            return str(value)
    return None
