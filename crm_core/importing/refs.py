"""References to records an import creates itself, resolved to ids once they are inserted."""
from __future__ import annotations

from typing import Any

CHUNK = 5000  # rows per statement batch and ids per IN (...) list


class Pending:
    """A record this import will create; `id` is set once it is inserted."""

    __slots__ = ("values", "id")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.id: int | None = None


Ref = int | Pending | None


def ref_id(ref: Ref) -> int | None:
    if isinstance(ref, Pending):
        if ref.id is None:  # pragma: no cover - flush() always runs before rows are written
            raise RuntimeError("pending record used before it was inserted")
        return ref.id
    return ref


def materialise(record: dict[str, Any]) -> dict[str, Any]:
    """A row dict with every Pending replaced by its new id."""
    return {k: (ref_id(v) if isinstance(v, Pending) else v) for k, v in record.items()}
