"""From a RawTable and a mapping to validated rows of one kind, and every error with its place.

Cells are typed column by column (vectorised), then each row goes through its pydantic model.
A row with any error is reported and left out; nothing here touches the store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from crm_core.errors import UserError
from crm_core.importing.contracts import ImportKind, ImportMapping, RawTable, RowError
from crm_core.importing.fields import ATTRIBUTES_PREFIX, FieldSpec, field_specs
from crm_core.importing.parsing import (
    clean_text,
    infer_attribute,
    normalise_phones,
    parse_booleans,
    parse_dates,
    parse_decimals,
    parse_integers,
)
from crm_core.importing.rows import ROW_MODELS

_MAX_SHOWN_VALUE = 80


@dataclass
class Validated:
    rows: list[Any]                                    # row models of the kind, valid ones only
    errors: list[RowError]
    date_formats: dict[str, str] = field(default_factory=dict)
    attribute_types: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else text[: _MAX_SHOWN_VALUE - 1] + "…"


class _Collector:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[RowError] = []
        self.bad_cells: set[tuple[int, str]] = set()  # (row, field)

    def cell(self, row: int, header: str, field_name: str, value: Any, reason: str) -> None:
        self.errors.append(RowError(file=self.filename, row=row, column=header, value=_shown(value), reason=reason))
        self.bad_cells.add((row, field_name))


def validate_table(kind: ImportKind, table: RawTable, mapping: dict[str, str | None],
                   options: ImportMapping) -> Validated:
    specs = field_specs(kind)
    frame = table.frame
    rows_index = [int(i) for i in frame.index]
    collect = _Collector(table.filename)
    columns: dict[str, list[Any]] = {}
    field_header: dict[str, str] = {}
    date_formats: dict[str, str] = {}
    warnings: list[str] = []
    attributes: dict[str, list[Any]] = {}
    attribute_types: dict[str, str] = {}

    for header, target in mapping.items():
        if target is None:
            continue
        raw = clean_text(frame[header])
        if target.startswith(ATTRIBUTES_PREFIX):
            name = target[len(ATTRIBUTES_PREFIX):]
            typed = infer_attribute(raw, options.scale.get(header))
            attributes[name] = typed.values
            attribute_types[name] = typed.type
            if typed.date_format:
                date_formats[header] = typed.date_format
            continue
        spec = specs[target]
        field_header[target] = header
        values, fmt, ambiguous = _typed(spec, raw, header, options, collect)
        columns[target] = values
        if fmt:
            date_formats[header] = fmt
        if ambiguous:
            warnings.append(f"column {header!r}: every date reads as {fmt} and as {', '.join(ambiguous)}; "
                            f"read as {fmt}; set the column's date format to read it otherwise")
        if spec.type == "phone":
            columns["phone_normalized"] = normalise_phones(raw).tolist()

    n = len(rows_index)
    for name, value in options.defaults.items():
        if name.startswith(ATTRIBUTES_PREFIX):
            attr = name[len(ATTRIBUTES_PREFIX):]
            existing = attributes.get(attr, [None] * n)
            attributes[attr] = [value if v is None else v for v in existing]
            attribute_types.setdefault(attr, "text")
            continue
        spec = specs[name]
        typed_default = _typed_default(spec, value)
        existing = columns.get(name, [None] * n)
        columns[name] = [typed_default if v is None else v for v in existing]
        if spec.type == "phone" and "phone_normalized" not in field_header:
            columns["phone_normalized"] = normalise_phones(pd.Series(columns[name], dtype=object)).tolist()

    # Rows as dicts, then the pydantic model of the kind for all of them at once.
    keys = ["row", *columns]
    records = [dict(zip(keys, values)) for values in zip(rows_index, *columns.values())]
    if attributes:
        names = list(attributes)
        for record, attr_values in zip(records, zip(*attributes.values())):
            record["attributes"] = {k: v for k, v in zip(names, attr_values) if v is not None}
    valid = _validate_rows(kind, records, field_header, collect)
    bad_rows = {e.row for e in collect.errors}
    rows = [r for r in valid if r.row not in bad_rows]
    return Validated(rows=rows, errors=collect.errors, date_formats=date_formats,
                     attribute_types=attribute_types, warnings=warnings)


def _typed(spec: FieldSpec, raw: pd.Series, header: str, options: ImportMapping,
           collect: _Collector) -> tuple[list[Any], str | None, list[str]]:
    if spec.type in ("datetime", "date"):
        parsed = parse_dates(raw, forced=options.date_formats.get(header))
        for label in parsed.bad[parsed.bad].index:
            how = f" as {parsed.label}" if parsed.label else ""
            collect.cell(int(label), header, spec.name, raw[label],
                         f"{raw[label]!r} is not a date{how} (dates read: ISO, M/D/YYYY, D-M-YYYY, D/M/YYYY, ...)")
        return parsed.as_python(date_only=spec.type == "date"), parsed.label, parsed.ambiguous_with
    if spec.type in ("decimal", "integer"):
        numbers = parse_integers(raw) if spec.type == "integer" else parse_decimals(raw)
        factor = options.scale.get(header)
        values = numbers.values
        if factor is not None:
            values = [None if v is None else (v * Decimal(str(factor))) for v in values]
            if spec.type == "integer":
                values = [None if v is None else int(v) for v in values]
        for label in numbers.bad[numbers.bad].index:
            reason = numbers.reasons.get(label, f"{raw[label]!r} is not a number")
            collect.cell(int(label), header, spec.name, raw[label], reason)
        return values, None, []
    if spec.type == "boolean":
        values, bad = parse_booleans(raw)
        for label in bad[bad].index:
            collect.cell(int(label), header, spec.name, raw[label], f"{raw[label]!r} is not yes/no or true/false")
        return values, None, []
    return raw.tolist(), None, []


def _typed_default(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    collector = _Collector("__defaults__")
    series = pd.Series([value if isinstance(value, str) else str(value)], index=[0], dtype=object)
    typed, _, _ = _typed(spec, clean_text(series), "__defaults__", ImportMapping(), collector)
    if collector.errors:
        raise UserError(f"mapping __defaults__: {spec.name} = {value!r}: {collector.errors[0].reason}")
    return typed[0]


_ADAPTERS: dict[str, TypeAdapter[list[Any]]] = {}


def _adapter(kind: str) -> TypeAdapter[list[Any]]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(list[ROW_MODELS[kind]])  # type: ignore[valid-type]
    return _ADAPTERS[kind]


def _validate_rows(kind: str, records: list[dict[str, Any]], field_header: dict[str, str],
                   collect: _Collector) -> list[BaseModel]:
    adapter = _adapter(kind)
    try:
        return adapter.validate_python(records)
    except ValidationError as exc:
        failed: set[int] = set()
        for err in exc.errors(include_url=False):
            index = err["loc"][0]
            assert isinstance(index, int)
            failed.add(index)
            record = records[index]
            row = record["row"]
            field_name = str(err["loc"][1]) if len(err["loc"]) > 1 else None
            if field_name is not None and (row, field_name) in collect.bad_cells:
                continue  # the cell's own error already says it
            message = err["msg"].removeprefix("Value error, ")
            if field_name is None:
                collect.errors.append(RowError(file=collect.filename, row=row, column=None, reason=message))
                continue
            header = field_header.get(field_name, field_name)
            value = record.get(field_name)
            if err["type"] == "missing" or value is None:
                message = f"empty, but {field_name} is required"
            elif err["type"] == "string_too_long":
                message = f"longer than {err.get('ctx', {}).get('max_length')} characters"
            elif err["type"] in ("greater_than_equal",):
                message = f"{_shown(value)!r} must not be negative"
            collect.errors.append(RowError(file=collect.filename, row=row, column=header, value=_shown(value),
                                           reason=message))
        good = [r for i, r in enumerate(records) if i not in failed]
        return adapter.validate_python(good) if good else []
