"""The Import page's calls: thin wrappers over `crm_core.importing`.

The importing package owns reading, mapping, validation and writing. This module adds what a
screen needs: the choices for a mapping editor, a mapping built from the edited table, the
rejected rows as bytes for a download button, and who ran the import.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy.orm import Session

from crm_core import importing
from crm_core.errors import UserError
from crm_core.importing import IMPORT_KINDS, ImportMapping, ImportPlan, ImportSummary, RawTable

KINDS: tuple[str, ...] = IMPORT_KINDS
IGNORE = "(ignore)"
AS_ATTRIBUTE = "(custom attribute)"


class FieldChoice(BaseModel):
    name: str
    help: str


def read_upload(data: bytes, filename: str) -> RawTable:
    return importing.read_csv(data, filename)


def field_choices(kind: str) -> list[FieldChoice]:
    return [FieldChoice(name=name, help=spec.help) for name, spec in importing.field_specs(kind).items()]


def suggested_mapping(kind: str, headers: list[str]) -> dict[str, str | None]:
    return importing.auto_mapping(kind, headers)


def mapping_from_choices(headers: list[str], chosen: dict[str, str | None]) -> ImportMapping:
    """The editor's choice per header: a field name, IGNORE, or AS_ATTRIBUTE (kept under the header's name)."""
    columns: dict[str, str | None] = {}
    for header in headers:
        choice = chosen.get(header)
        if choice in (None, "", IGNORE):
            columns[header] = None
        elif choice == AS_ATTRIBUTE:
            columns[header] = f"attributes.{header}"
        else:
            columns[header] = choice
    return ImportMapping(columns=columns)


def dry_run(session: Session, kind: str, table: RawTable, mapping: ImportMapping) -> ImportPlan:
    """Validate every row against the store; writes nothing."""
    return importing.plan_import(session, kind, table, mapping)


def run_import(session: Session, plan: ImportPlan, *, user: str, skip_invalid: bool = False,
               progress: Callable[[float, str], None] | None = None) -> ImportSummary:
    if not user:
        raise UserError(f"{plan.filename}: pick your name in the sidebar first; the import records who ran it")
    return importing.apply_import(session, plan, skip_invalid=skip_invalid, progress=progress, actor=user)


def rejects_csv(plan: ImportPlan) -> bytes:
    """The bad rows as they were in the file, with `row` and `errors` columns first."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rejects.csv"
        importing.write_rejects(plan, path)
        return path.read_bytes()
