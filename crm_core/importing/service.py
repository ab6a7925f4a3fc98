"""plan_import / apply_import / write_rejects: the import service the CLI and the dashboard call."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.errors import UserError
from crm_core.exporting import escape_cell
from crm_core.importing import accounts, activities, contacts, deals
from crm_core.importing.bulk import gc_paused, write_cache
from crm_core.importing.contracts import (
    IMPORT_KINDS,
    DuplicateCandidate,
    ImportCounts,
    ImportKind,
    ImportMapping,
    ImportPlan,
    ImportSummary,
    RawTable,
    RowError,
)
from crm_core.importing.duplicates import find_duplicates
from crm_core.importing.fields import resolve_mapping
from crm_core.importing.history import HistoryCounts, contact_creates_as_history, deals_as_history, record_batch
from crm_core.importing.plausibility import check_rows
from crm_core.importing.proposals import propose_merges
from crm_core.importing.upsert import Progress, Resolution
from crm_core.importing.validation import validate_table
from crm_core.models import AuditEntry

_KINDS: dict[str, ModuleType] = {"accounts": accounts, "contacts": contacts, "deals": deals,
                                 "activities": activities}
_MAX_ERRORS_IN_MESSAGE = 3


class ImportRejected(UserError):
    """The file has bad rows and --skip-invalid was not given: nothing was imported."""

    def __init__(self, filename: str, errors: list[RowError],
                 advice: str = "Fix the file, or import the good rows with --skip-invalid") -> None:
        self.errors = errors
        rows = {e.row for e in errors}
        shown = "; ".join(str(e).removeprefix(f"{filename}, ") for e in errors[:_MAX_ERRORS_IN_MESSAGE])
        more = f" (and {len(errors) - _MAX_ERRORS_IN_MESSAGE} more)" if len(errors) > _MAX_ERRORS_IN_MESSAGE else ""
        super().__init__(f"{filename}: {len(errors)} error(s) in {len(rows)} row(s), nothing imported: {shown}{more}. "
                         f"{advice}")


@dataclass
class _Cached:
    transaction: Any
    resolution: Resolution
    duplicates: list[DuplicateCandidate]


def _as_mapping(mapping: ImportMapping | dict[str, Any] | None) -> ImportMapping:
    if mapping is None:
        return ImportMapping()
    if isinstance(mapping, ImportMapping):
        return mapping
    return ImportMapping.from_json(mapping)


def _resolve(session: Session, kind: str, rows: list[Any], filename: str, headers: dict[str, str],
             history: HistoryCounts | None = None) -> Resolution:
    now = clock.now()
    resolution = _KINDS[kind].resolve(session, rows, filename, now, headers)
    if history is not None and kind == "contacts":
        history.contacts_stale = history.contacts_live = 0
        contact_creates_as_history(resolution.creates, now, history)
    return resolution


def plan_import(session: Session, kind: ImportKind, table: RawTable,
                mapping: ImportMapping | dict[str, Any] | None = None, *, as_history: bool = False) -> ImportPlan:
    """Validate every row and match it against the store; writes nothing.

    `as_history`: closed and stale records go in as history (see crm_core.importing.history).
    Raises UserError for a problem with the whole file (unknown kind, bad mapping, missing
    required column). Row problems are in `plan.errors`; implausible values and rows that would
    change live views in `plan.checks`.
    """
    with gc_paused():
        return _plan(session, kind, table, mapping, as_history)


def _plan(session: Session, kind: ImportKind, table: RawTable,
          mapping: ImportMapping | dict[str, Any] | None, as_history: bool) -> ImportPlan:
    if kind not in IMPORT_KINDS:
        raise UserError(f"unknown import kind {kind!r}; use one of {', '.join(IMPORT_KINDS)}")
    options = _as_mapping(mapping)
    effective, warnings = resolve_mapping(kind, table.headers, options, table.filename)
    validated = validate_table(kind, table, effective, options)
    module = _KINDS[kind]
    file_errors = module.check_file(validated.rows, table.filename)
    duplicate_rows = {e.row for e in file_errors}
    rows = [r for r in validated.rows if r.row not in duplicate_rows]
    headers = {target: header for header, target in effective.items() if target}
    checks = [c for c in check_rows(session, kind, rows, headers, clock.now())
              if not (as_history and c.suggests_history)]  # the history counts say what becomes of those rows
    history = HistoryCounts() if as_history else None
    if history is not None and kind == "deals":
        rows = deals_as_history(rows, clock.now(), history)
    elif history is not None and kind == "activities":
        history.activities = len(rows)
    resolution = _resolve(session, kind, rows, table.filename, headers, history)
    duplicates = find_duplicates(session, resolution) if kind == "contacts" else []
    errors = sorted([*validated.errors, *file_errors, *resolution.errors], key=lambda e: (e.row or 0, e.column or ""))
    bad_rows = {e.row for e in errors if e.row is not None}
    plan = ImportPlan(
        kind=kind, filename=table.filename, encoding=table.encoding, delimiter=table.delimiter,
        mapping=effective, defaults=options.defaults, date_formats=validated.date_formats,
        attribute_types=validated.attribute_types, total_rows=table.row_count,
        counts=ImportCounts(create=len(resolution.creates), update=len(resolution.updates),
                            unchanged=len(resolution.unchanged_rows), invalid=len(bad_rows),
                            accounts_create=resolution.accounts_to_create(), users_create=resolution.users_to_create()),
        errors=errors, duplicates=duplicates, warnings=[*warnings, *validated.warnings],
        checks=checks, as_history=as_history, history=history,
    )
    plan._table = table
    plan._rows = rows
    plan._headers = headers
    plan._cache = _Cached(session.get_transaction(), resolution, duplicates)
    return plan


def apply_import(session: Session, plan: ImportPlan, *, skip_invalid: bool = False,
                 progress: Progress | None = None, actor: str = "system") -> ImportSummary:
    """Write the plan in the caller's transaction (a `unit_of_work`): all of it, or with
    `skip_invalid` every valid row. Raises ImportRejected when rows are bad and skip_invalid is off.
    """
    with gc_paused():
        return _apply(session, plan, skip_invalid=skip_invalid, progress=progress, actor=actor)


def _apply(session: Session, plan: ImportPlan, *, skip_invalid: bool, progress: Progress | None,
           actor: str) -> ImportSummary:
    if plan.errors and not skip_invalid:
        raise ImportRejected(plan.filename, plan.errors)
    kind = plan.kind
    cache: _Cached | None = plan._cache
    if cache is not None and cache.transaction is not None and cache.transaction is session.get_transaction():
        resolution, duplicates = cache.resolution, cache.duplicates
    else:  # applied in another transaction: match again against the store as it is now
        resolution = _resolve(session, kind, plan._rows, plan.filename, plan._headers, plan.history)
        duplicates = find_duplicates(session, resolution) if kind == "contacts" else []
    # Rows that fail to match (a contact that is not there) are already left out of the resolution.
    known = {(e.row, e.column, e.reason) for e in plan.errors}
    late_errors = [e for e in resolution.errors if (e.row, e.column, e.reason) not in known]
    if late_errors and not skip_invalid:
        raise ImportRejected(plan.filename, late_errors)
    skipped_errors = [*plan.errors, *late_errors]
    summary = ImportSummary(kind=kind, filename=plan.filename, errors=skipped_errors,
                            skipped_invalid=len({e.row for e in skipped_errors if e.row is not None}),
                            as_history=plan.as_history, history=plan.history)
    now = clock.now()
    try:
        with write_cache(session):
            _KINDS[kind].write(session, resolution, summary, progress)
        if duplicates and plan.as_history:
            # History is for learning: a merge proposal per old record is the kind of per-row
            # decision a history import exists to avoid. The dry run lists them.
            summary.duplicates_not_proposed = len(duplicates)
        elif duplicates:
            summary.merge_proposals = propose_merges(session, duplicates, resolution.row_ids, plan.filename, actor, now)
        summary.duplicates = duplicates
        details = {
            "kind": kind, "file": plan.filename, "created": summary.created, "updated": summary.updated,
            "unchanged": summary.unchanged, "skipped_invalid": summary.skipped_invalid,
            "accounts_created": summary.accounts_created, "users_created": summary.users_created,
            "merge_proposals": len(summary.merge_proposals), "as_history": plan.as_history}
        if plan.history is not None:
            details["history"] = plan.history.model_dump()
        batch = record_batch(session, kind=kind, table=kind, filename=plan.filename, actor=actor, at=now,
                             historical=plan.as_history, created_ids=resolution.created_ids, counts=details)
        session.flush()
        summary.batch_id = batch.id
        # One audit entry per import, however many rows it wrote.
        session.add(AuditEntry(at=now, actor=actor, event="import.applied", subject_type="import", subject_id=batch.id,
                               details=details))
        session.flush()
    except IntegrityError as exc:
        raise UserError(f"{plan.filename}: the store refused the import ({exc.orig}); nothing was imported") from None
    plan._cache = None  # the next apply (after a rollback, say) matches again
    if progress is not None:
        progress(1.0, f"{kind}: done")
    return summary


def write_rejects(plan: ImportPlan, path: str | Path, errors: list[RowError] | None = None) -> int:
    """The bad rows as they were in the file, plus `row` and `errors` columns; returns rows written.

    Cells are escaped like every export (a leading = + - @ gets an apostrophe): the file is
    meant to be opened in a spreadsheet and fixed.
    """

    errors = plan.errors if errors is None else errors
    by_row: dict[int, list[str]] = {}
    for error in errors:
        if error.row is not None:
            reason = f"{error.column}: {error.reason}" if error.column else error.reason
            by_row.setdefault(error.row, []).append(reason)
    table = plan._table
    if table is None:  # pragma: no cover - plans always carry their table
        raise UserError("this plan has no source rows to write")
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "errors", *table.headers])
        for row in sorted(by_row):
            cells = table.frame.loc[row].tolist() if row in table.frame.index else [""] * len(table.headers)
            writer.writerow([row, escape_cell(" | ".join(by_row[row])), *(escape_cell(c) for c in cells)])
    return len(by_row)

