"""What an import will create, update or leave alone, and the bulk writes that carry it out.

Rules every kind keeps: an empty cell never erases a stored value (rows carry None for empty
cells and None is never written over a value); custom attributes merge key by key; a row whose
values all equal the stored ones is 'unchanged' and not written at all, so importing the same
file twice changes nothing.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core.importing.bulk import insert_rows
from crm_core.importing.contracts import ImportSummary, RowError
from crm_core.importing.directories import AccountDirectory, UserDirectory
from crm_core.importing.refs import CHUNK, Pending, materialise

Progress = Callable[[float, str], None]


@dataclass
class Resolution:
    """The outcome of matching validated rows against the store; nothing written yet."""

    creates: list[dict[str, Any]] = field(default_factory=list)   # column values
    create_rows: list[int] = field(default_factory=list)          # file row of each create
    updates: list[dict[str, Any]] = field(default_factory=list)   # {"id": ..., changed columns}
    update_rows: list[int] = field(default_factory=list)
    unchanged_rows: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    accounts: AccountDirectory | None = None
    users: UserDirectory | None = None
    extra: dict[str, Any] = field(default_factory=dict)          # kind-specific follow-ups
    created_ids: list[int] = field(default_factory=list)         # filled by write()

    @property
    def row_ids(self) -> dict[int, int]:
        ids = dict(zip(self.create_rows, self.created_ids))
        ids.update({row: u["id"] for row, u in zip(self.update_rows, self.updates)})
        return ids

    def accounts_to_create(self) -> int:
        return len(self.accounts.pending) if self.accounts else 0

    def users_to_create(self) -> int:
        return len(self.users.pending) if self.users else 0


def changed(stored: Any, values: dict[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """The columns whose new (non-empty) value differs from the stored one."""
    changes: dict[str, Any] = {}
    for column in columns:
        value = values.get(column)
        if value is None:
            continue
        if isinstance(value, Pending) or getattr(stored, column) != value:
            changes[column] = value
    return changes


def merged_attributes(stored: dict[str, Any] | None, incoming: dict[str, Any]) -> dict[str, Any] | None:
    """Stored attributes with the incoming ones on top, or None when nothing would change."""
    current = dict(stored or {})
    if all(current.get(k) == v for k, v in incoming.items()):
        return None
    current.update(incoming)
    return current


def load_rows(session: Session, model: type, ids: Iterable[int], columns: list[Any]) -> dict[int, Any]:
    """Stored column values by id, in chunks of ids (never a query per row)."""
    wanted = sorted(set(ids))
    found: dict[int, Any] = {}
    for start in range(0, len(wanted), CHUNK):
        query = select(model.id, *columns).where(model.id.in_(wanted[start:start + CHUNK]))
        for row in session.execute(query):
            found[row.id] = row
    return found


def bulk_update(session: Session, model: type, updates: list[dict[str, Any]]) -> None:
    """UPDATE ... WHERE id = ? as executemany, one statement per set of changed columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for values in updates:
        record = materialise(values)
        groups[tuple(sorted(record))].append(record)
    for records in groups.values():
        for start in range(0, len(records), CHUNK):
            session.execute(update(model), records[start:start + CHUNK])


def flush_related(session: Session, resolution: Resolution, summary: ImportSummary) -> None:
    if resolution.users is not None:
        summary.users_created += resolution.users.flush(session)
    if resolution.accounts is not None:
        summary.accounts_created += resolution.accounts.flush(session)


def write_creates(session: Session, model: type, resolution: Resolution, progress: Progress | None,
                  label: str) -> None:
    total = len(resolution.creates) + len(resolution.updates)

    def report(done: int) -> None:
        if progress is not None and total:
            progress(min(done / total, 1.0), f"{label}: {done:,} of {total:,} rows written")

    resolution.created_ids = insert_rows(session, model, resolution.creates, on_chunk=report)
    bulk_update(session, model, resolution.updates)
    report(total)
