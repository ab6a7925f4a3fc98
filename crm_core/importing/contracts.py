"""The typed values the import service takes and returns (the dashboard builds on these)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from crm_core.errors import UserError
from crm_core.importing.history import HistoryCounts
from crm_core.importing.parsing import DATE_FORMAT_LABELS
from crm_core.importing.plausibility import ImportCheck

ImportKind = Literal["accounts", "contacts", "deals", "activities"]
IMPORT_KINDS: tuple[str, ...] = ImportKind.__args__  # type: ignore[attr-defined]
SPECIAL_KEYS = ("__defaults__", "__scale__", "__date_formats__")
# Written by the Import page when it saves a mapping; information only, ignored when reading.
METADATA_KEYS = ("__kind__", "__saved_by__")
AttributeType = Literal["number", "date", "boolean", "text"]
DuplicateReason = Literal["email_variant", "same_phone", "same_name", "similar_name"]


class RawTable(BaseModel):
    """A CSV as read: every cell a string ('' when empty), headers as in the file."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    filename: str
    encoding: str    # utf-8, utf-8-sig (BOM), utf-16, cp1252 or latin-1
    delimiter: str   # ',', ';', '\t' or '|'
    headers: list[str]
    row_count: int
    # index = the row number in the file as a spreadsheet shows it (header = row 1)
    frame: pd.DataFrame = Field(exclude=True, repr=False)

    def preview(self, n: int = 20) -> list[dict[str, str]]:
        return [dict(zip(self.headers, map(str, values))) for values in self.frame.head(n).itertuples(index=False)]


class ImportMapping(BaseModel):
    """How CSV headers become fields. Headers not named here are mapped automatically.

    File form (JSON): {"CSV header": "field" | "attributes.NAME" | null, ...,
    "__defaults__": {"field": value}, "__scale__": {"CSV header": 1000000},
    "__date_formats__": {"CSV header": "D/M/YYYY"}}.
    """

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str | None] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)  # constant per field, also fills empty cells
    scale: dict[str, float] = Field(default_factory=dict)   # header -> multiplier (revenue in millions)
    date_formats: dict[str, str] = Field(default_factory=dict)  # header -> format label, for an ambiguous column

    @classmethod
    def from_json(cls, data: Any, source: str = "mapping") -> ImportMapping:
        if not isinstance(data, dict):
            raise UserError(f"{source}: a mapping is a JSON object from CSV header to field name, 'attributes.NAME' or null")
        columns: dict[str, str | None] = {}
        defaults = data.get("__defaults__", {})
        scale = data.get("__scale__", {})
        date_formats = data.get("__date_formats__", {})
        if not all(isinstance(v, dict) for v in (defaults, scale, date_formats)):
            raise UserError(f"{source}: '__defaults__', '__scale__' and '__date_formats__' must be JSON objects")
        for header, target in data.items():
            if header in SPECIAL_KEYS or header in METADATA_KEYS:
                continue
            if header.startswith("__"):
                raise UserError(f"{source}: unknown key {header!r}; allowed special keys: {', '.join(SPECIAL_KEYS)}")
            if target is not None and not isinstance(target, str):
                raise UserError(f"{source}: header {header!r} maps to {target!r}; expected a field name, 'attributes.NAME' or null")
            columns[header] = target
        for header, factor in scale.items():
            if not isinstance(factor, int | float) or isinstance(factor, bool):
                raise UserError(f"{source}: __scale__ of {header!r} is {factor!r}; expected a number")

        for header, label in date_formats.items():
            if label not in DATE_FORMAT_LABELS:
                raise UserError(f"{source}: __date_formats__ of {header!r} is {label!r}; use one of "
                                f"{', '.join(DATE_FORMAT_LABELS)}")
        return cls(columns=columns, defaults=defaults, scale=scale, date_formats=date_formats)

    @classmethod
    def load(cls, path: str | Path) -> ImportMapping:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise UserError(f"{path}: mapping file not found") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return cls.from_json(data, source=str(path))


class RowError(BaseModel):
    file: str
    row: int | None          # as in the file, header = row 1; None for a problem with the whole file
    column: str | None       # the CSV header, when one cell is at fault
    value: str | None = None
    reason: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.reason}"


class DuplicateCandidate(BaseModel):
    """Two contacts that are likely one person. Each side is a stored contact, a row of this file, or both."""

    reasons: list[DuplicateReason]
    detail: str
    confidence: float
    row: int | None = None
    contact_id: int | None = None
    label: str
    other_row: int | None = None
    other_contact_id: int | None = None
    other_label: str
    decision_id: int | None = None  # the merge proposal, once the import is applied


class ImportCounts(BaseModel):
    create: int = 0
    update: int = 0
    unchanged: int = 0
    invalid: int = 0
    accounts_create: int = 0
    users_create: int = 0


class ImportPlan(BaseModel):
    """What an import would do: nothing is written until `apply_import`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: ImportKind
    filename: str
    encoding: str
    delimiter: str
    mapping: dict[str, str | None]        # every header -> field, 'attributes.NAME' or None (ignored)
    defaults: dict[str, Any] = Field(default_factory=dict)
    date_formats: dict[str, str] = Field(default_factory=dict)      # header -> 'ISO', 'M/D/YYYY', ...
    attribute_types: dict[str, AttributeType] = Field(default_factory=dict)
    total_rows: int
    counts: ImportCounts
    errors: list[RowError] = Field(default_factory=list)
    duplicates: list[DuplicateCandidate] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    checks: list[ImportCheck] = Field(default_factory=list)  # implausible values, rows that would change live views
    as_history: bool = False
    history: HistoryCounts | None = None                     # what a history import does to the rows (as_history only)

    _table: RawTable | None = PrivateAttr(default=None)
    _rows: list[Any] = PrivateAttr(default_factory=list)      # validated row models of the kind
    _headers: dict[str, str] = PrivateAttr(default_factory=dict)  # field -> the header it came from
    _cache: Any = PrivateAttr(default=None)                  # the matching, reused in the same transaction

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def history_suggested(self) -> bool:
        """The dry run saw old, closed or stale records that an import as history would keep off the live views."""
        return not self.as_history and any(c.suggests_history for c in self.checks)

    @property
    def invalid_rows(self) -> set[int]:
        return {e.row for e in self.errors if e.row is not None}


class ImportSummary(BaseModel):
    kind: ImportKind
    filename: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_invalid: int = 0
    accounts_created: int = 0
    users_created: int = 0
    contacts_made_customers: int = 0
    stage_changes: int = 0
    merge_proposals: list[int] = Field(default_factory=list)  # Decision ids, queued for a human
    duplicates: list[DuplicateCandidate] = Field(default_factory=list)
    errors: list[RowError] = Field(default_factory=list)      # the rows skipped with --skip-invalid
    reject_file: str | None = None
    as_history: bool = False
    history: HistoryCounts | None = None
    duplicates_not_proposed: int = 0   # a history import lists likely duplicates but queues no merge for them
    batch_id: int | None = None
