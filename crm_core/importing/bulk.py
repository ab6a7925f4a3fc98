"""Bulk inserts for large imports: ids reserved up front, then one fast path per back-end.

SQLite: one executemany of plain tuples, each value already converted by the column type's
own bind processor (memoised: an import repeats the same timestamps and stages 100,000
times). PostgreSQL: COPY on the session's own connection, inside the same transaction.

Not RETURNING: on SQLite an ordered RETURNING runs one statement per row, and the ORM splits
a batch wherever the set of None values changes; both turn 100,000 rows into 100,000
statements. Pending references (accounts and users this import creates) become ids here.
"""
from __future__ import annotations

import contextlib
import gc
import json
import operator
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import JSON, func, select, text
from sqlalchemy.orm import Session

from crm_core.importing.refs import CHUNK, Pending

# SQLite's default page cache (2 MB) thrashes when 100,000 rows go into a table with nine
# indexes; 64 MB for the duration of an import's writes makes the inserts ~30 % faster.
SQLITE_IMPORT_CACHE_KIB = 65536


def allocate_ids(session: Session, table: Any, count: int) -> list[int]:
    """Primary keys for `count` new rows, reserved before inserting them.

    PostgreSQL: drawn from the column's sequence. SQLite: the ids after the largest one; a
    writer's unit of work holds the database write lock (BEGIN IMMEDIATE), so no other
    writer can take them meanwhile, and if one somehow did the insert fails as a whole.
    """
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sequence = session.scalar(text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name})
        return list(session.scalars(text("SELECT nextval(:seq) FROM generate_series(1, :n)"),
                                    {"seq": sequence, "n": count}))
    start = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    return list(range(start, start + count))


def _memoised(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    assert processor is not None
    cache: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        if value is None:
            return None
        try:
            return cache[value]
        except KeyError:
            cache[value] = result = processor(value)
            return result
        except TypeError:  # dicts and lists (JSON columns) are not hashable
            return processor(value)
    return process


def insert_rows(session: Session, model: Any, records: list[dict[str, Any]],
                on_chunk: Callable[[int], None] | None = None) -> list[int]:
    """Insert `records` (column -> value dicts) into the model's table; returns their ids in order."""
    table = model.__table__
    ids = allocate_ids(session, table, len(records))
    if not records:
        return ids
    names = ["id", *sorted({key for record in records for key in record} - {"id"})]
    # The fast paths skip SQLAlchemy's Python-side defaults, so columns the records leave out get them here.
    blank = dict.fromkeys(names)
    for column in table.columns:
        if column.name not in blank and column.default is not None and not column.primary_key:
            default = column.default
            blank[column.name] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
            names.append(column.name)
    refs = [n for n in names if n.endswith("_id") and n != "id"]
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        # COPY adapts every Python type itself except JSON, which goes as its text.
        converters = {i: _json_text for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)}
    else:
        processors = {i: table.c[n].type.bind_processor(connection.dialect) for i, n in enumerate(names)}
        converters = {i: _memoised(p) for i, p in processors.items() if p is not None}
        quote = connection.dialect.identifier_preparer.quote
        statement = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                     f"VALUES ({', '.join('?' for _ in names)})")
    values_of = operator.itemgetter(*names)
    for start in range(0, len(records), CHUNK):
        rows: list[Any] = []
        for new_id, record in zip(ids[start:start + CHUNK], records[start:start + CHUNK], strict=True):
            row = {**blank, **record, "id": new_id}
            for name in refs:
                if isinstance(row[name], Pending):
                    row[name] = row[name].id
            values = list(values_of(row)) if len(names) > 1 else [values_of(row)]
            for i, convert in converters.items():
                values[i] = convert(values[i])
            rows.append(values)
        if postgres:
            driver = connection.connection.driver_connection
            quoted = ", ".join(f'"{n}"' for n in names)
            with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                for values in rows:
                    copy.write_row(values)
        else:
            connection.exec_driver_sql(statement, [tuple(values) for values in rows])
        if on_chunk is not None:
            on_chunk(start + len(rows))
    return ids


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if not value:  # {} and [], the common case
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


@contextlib.contextmanager
def write_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache while an import writes; the connection's own size afterwards."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while an import builds 100,000s of small objects.

    The collector would walk the whole growing heap again and again (about a sixth of the run
    time of bench/bench_import.py at 100,000 rows); the import makes no reference cycles, so
    refcounting frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
