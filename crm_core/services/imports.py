"""The Import page's calls: thin wrappers over `crm_core.importing`, worded for a web user.

The importing package owns reading, mapping, validation and writing. This module adds what a
screen needs: the mapping files to choose from (the shipped ones in `mappings/`, offered by
name, and those saved from the page), a mapping built from the edited table (field, scale and
date format per column, default values), saving a mapping for next time, the rejected rows as
bytes for a download button, and who ran the import. Messages never give command-line advice.
"""
from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from crm_core import importing
from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.errors import PermissionDenied, UserError
from crm_core.importing import IMPORT_KINDS, ImportMapping, ImportPlan, ImportRejected, ImportSummary, RawTable
from crm_core.importing.contracts import SPECIAL_KEYS
from crm_core.importing.fields import resolve_mapping
from crm_core.importing.history import HistoryCounts
from crm_core.importing.parsing import DATE_FORMAT_LABELS
from crm_core.settings import PROJECT_ROOT, get_settings

KINDS: tuple[str, ...] = IMPORT_KINDS
IGNORE = "(ignore)"
AS_ATTRIBUTE = "(custom attribute)"
AUTO_DATE = "(detect)"
AUDITED_KINDS = ("accounts", "contacts", "deals")  # the tables the data-quality audit scores
DATE_FORMATS: tuple[str, ...] = (AUTO_DATE, *DATE_FORMAT_LABELS)
SHIPPED_MAPPINGS = PROJECT_ROOT / "mappings"
# What each shipped mapping is for, as a sales manager would pick it.
_SHIPPED_LABELS = {
    "maven_accounts": ("Maven CRM accounts (revenue in millions)", "accounts"),
    "maven_pipeline": ("Maven CRM sales pipeline", "deals"),
    "olist_leads": ("Olist marketing-qualified leads", "contacts"),
    "olist_closed_deals": ("Olist closed deals", "deals"),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}$")
_PAGE_ADVICE = ("Fix the file and upload it again, or tick the box to import the good rows and skip the bad ones "
                "(they can be downloaded as a CSV).")


class FieldChoice(BaseModel):
    name: str
    help: str


class MappingPreset(BaseModel):
    name: str                                  # file stem, what save/load take
    label: str                                 # what the page shows
    source: Literal["shipped", "saved"]
    kind: str | None = None                    # the kind of file it was written for, when known


class ColumnSetting(BaseModel):
    """One row of the page's mapping table."""

    column: str
    example: str = ""
    maps_to: str                               # a field name, IGNORE or AS_ATTRIBUTE
    scale: float | None = None                 # multiply every value (1,000,000 for "in millions")
    date_format: str = AUTO_DATE


def read_upload(data: bytes, filename: str) -> RawTable:
    return importing.read_csv(data, filename)


def field_choices(kind: str) -> list[FieldChoice]:
    return [FieldChoice(name=name, help=spec.help) for name, spec in importing.field_specs(kind).items()]


def suggested_mapping(kind: str, headers: list[str]) -> dict[str, str | None]:
    return importing.auto_mapping(kind, headers)


# ---- mapping files ----------------------------------------------------------------------------------------

def saved_mappings_dir() -> Path:
    configured = get_settings().mappings_dir
    return Path(configured) if configured else PROJECT_ROOT / "data" / "mappings"


def mapping_presets(kind: str | None = None) -> list[MappingPreset]:
    """The shipped mapping files by name, then those saved from the page; for `kind` first when given."""
    presets: list[MappingPreset] = []
    for path in sorted(SHIPPED_MAPPINGS.glob("*.json")):
        label, for_kind = _SHIPPED_LABELS.get(path.stem, (path.stem.replace("_", " "), None))
        presets.append(MappingPreset(name=path.stem, label=label, source="shipped", kind=for_kind))
    folder = saved_mappings_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            saved_kind = _saved_kind(path)
            presets.append(MappingPreset(name=path.stem, label=f"{path.stem} (saved)", source="saved", kind=saved_kind))
    if kind is not None:
        presets.sort(key=lambda p: p.kind not in (None, kind))
        presets = [p for p in presets if p.kind in (None, kind)]
    return presets


def suggested_preset(kind: str, headers: list[str]) -> MappingPreset | None:
    """The mapping file made for files like this one: of this kind, naming at least three columns, all in the file.

    Offered first on the page, so Maven's accounts.csv gets its revenue scale without anyone knowing it needs one.
    """
    present = set(headers)
    best: tuple[int, MappingPreset] | None = None
    for preset in mapping_presets(kind):
        if preset.kind != kind:
            continue
        try:
            named = set(load_preset(preset.name, preset.source).columns)
        except UserError:
            continue
        if len(named) >= 3 and named <= present and (best is None or len(named) > best[0]):
            best = (len(named), preset)
    return best[1] if best else None


def _saved_kind(path: Path) -> str | None:
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("__kind__")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if kind in KINDS else None


def _preset_path(preset: MappingPreset) -> Path:
    folder = SHIPPED_MAPPINGS if preset.source == "shipped" else saved_mappings_dir()
    return folder / f"{preset.name}.json"


def load_preset(name: str, source: Literal["shipped", "saved"] = "shipped") -> ImportMapping:
    preset = next((p for p in mapping_presets() if p.name == name and p.source == source), None)
    if preset is None:
        raise UserError(f"There is no mapping called {name!r}; pick one from the list or upload a mapping file.")
    return mapping_from_file(_preset_path(preset).read_bytes(), preset.label)


def mapping_from_file(data: bytes, filename: str) -> ImportMapping:
    """A mapping file as uploaded (the JSON the command line takes), or a clear error."""
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UserError(f"{filename}: not a text file; a mapping file is JSON, e.g. one saved from this page") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{filename}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return ImportMapping.from_json(raw, source=filename)


def mapping_file(mapping: ImportMapping, kind: str | None = None) -> dict[str, Any]:
    """The JSON form of a mapping, as the command line reads it (plus the kind it was made for)."""
    out: dict[str, Any] = dict(mapping.columns)
    if mapping.defaults:
        out["__defaults__"] = mapping.defaults
    if mapping.scale:
        out["__scale__"] = mapping.scale
    if mapping.date_formats:
        out["__date_formats__"] = mapping.date_formats
    if kind:
        out["__kind__"] = kind
    return out


def save_mapping(name: str, mapping: ImportMapping, *, kind: str, actor: Actor, overwrite: bool = False) -> MappingPreset:
    """Keep a mapping for next time under data/mappings (never over a shipped one, never silently over a saved one).
    Needs `import_data`: the saved mappings are everyone's import presets."""
    require(actor, "import_data", doing="save an import mapping")
    name = (name or "").strip()
    if not _NAME.match(name):
        raise UserError("Give the mapping a name of letters, digits, spaces, dots, dashes or underscores "
                        "(up to 80 characters), e.g. 'Salesforce contacts'.")
    stem = name.replace(" ", "_")
    if (SHIPPED_MAPPINGS / f"{stem}.json").exists():
        raise UserError(f"{name!r} is the name of a mapping that ships with the CRM; choose another name.")
    folder = saved_mappings_dir()
    path = folder / f"{stem}.json"
    if path.exists() and not overwrite:
        raise UserError(f"A saved mapping called {name!r} already exists; tick 'replace it' to overwrite it, "
                        "or choose another name.")
    folder.mkdir(parents=True, exist_ok=True)
    body = mapping_file(mapping, kind)
    body["__saved_by__"] = actor.name
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return MappingPreset(name=stem, label=f"{stem} (saved)", source="saved", kind=kind)


# ---- the mapping table --------------------------------------------------------------------------------------

def column_settings(kind: str, table: RawTable, base: ImportMapping | None = None) -> list[ColumnSetting]:
    """One row per CSV column: what it maps to, its scale and date format; from `base` where it says."""
    effective = _effective(kind, table, base)
    examples = table.preview(3)
    base = base or ImportMapping()
    rows: list[ColumnSetting] = []
    for header in table.headers:
        target = effective.get(header)
        rows.append(ColumnSetting(
            column=header, example=next((r[header] for r in examples if r.get(header)), ""),
            maps_to=IGNORE if target is None else AS_ATTRIBUTE if str(target).startswith("attributes.") else target,
            scale=base.scale.get(header), date_format=base.date_formats.get(header, AUTO_DATE)))
    return rows


def _effective(kind: str, table: RawTable, base: ImportMapping | None) -> dict[str, str | None]:
    try:
        effective, _ = resolve_mapping(kind, table.headers, base, table.filename)
        return effective
    except UserError:  # a mapping for another file: start from the automatic one with its columns on top
        auto = importing.auto_mapping(kind, table.headers)
        if base:
            auto.update({h: t for h, t in base.columns.items() if h in auto})
        return auto


def mapping_from_settings(kind: str, rows: list[ColumnSetting], defaults: dict[str, Any] | None = None,
                          attribute_names: dict[str, str] | None = None) -> ImportMapping:
    """The mapping the page's table, scales, date formats and default values describe.

    attribute_names: the custom-attribute name a column kept from a loaded mapping (else the header).
    """
    specs = importing.field_specs(kind)
    columns: dict[str, str | None] = {}
    scale: dict[str, float | int] = {}
    date_formats: dict[str, str] = {}
    for row in rows:
        choice = row.maps_to
        if choice in (None, "", IGNORE):
            columns[row.column] = None
        elif choice == AS_ATTRIBUTE:
            columns[row.column] = (attribute_names or {}).get(row.column) or f"attributes.{row.column}"
        elif choice in specs:
            columns[row.column] = choice
        else:
            raise UserError(f"Column {row.column!r}: {choice!r} is not a {kind} field.")
        if row.scale not in (None, 0, 1, 1.0) and row.scale == row.scale:  # NaN from an emptied cell is no scale
            if row.scale < 0:
                raise UserError(f"Column {row.column!r}: the scale must be a positive number (1,000,000 for millions).")
            scale[row.column] = int(row.scale) if float(row.scale).is_integer() else float(row.scale)
        if row.date_format and row.date_format != AUTO_DATE:
            if row.date_format not in DATE_FORMAT_LABELS:
                raise UserError(f"Column {row.column!r}: unknown date format {row.date_format!r}.")
            date_formats[row.column] = row.date_format
    clean_defaults: dict[str, Any] = {}
    for field, value in (defaults or {}).items():
        if field in (None, "") or value in (None, ""):
            continue
        if field not in specs and not str(field).startswith("attributes."):
            raise UserError(f"Default value: {field!r} is not a {kind} field.")
        clean_defaults[str(field)] = value
    return ImportMapping(columns=columns, scale=scale, date_formats=date_formats, defaults=clean_defaults)


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


def attribute_names(mapping: ImportMapping | None) -> dict[str, str]:
    """Columns a mapping keeps as custom attributes under a name of its own."""
    if mapping is None:
        return {}
    return {h: t for h, t in mapping.columns.items() if t and t.startswith("attributes.")}


# ---- dry run and import -------------------------------------------------------------------------------------

def page_wording(message: str) -> str:
    """Importing's messages name mapping-file keys; on the page those are the table's columns."""
    return (message.replace("mapping __defaults__: ", "Default value: ")
            .replace("__defaults__: ", "Default value: ")
            .replace("__scale__", "scale").replace("__date_formats__", "date format"))


def dry_run(session: Session, kind: str, table: RawTable, mapping: ImportMapping, as_history: bool = False) -> ImportPlan:
    """Validate every row against the store; writes nothing."""
    try:
        return importing.plan_import(session, kind, table, mapping, as_history=as_history)
    except UserError as exc:
        raise UserError(page_wording(str(exc))) from None


def import_refusal(actor: Actor | None) -> str | None:
    """Why this person may not import (the refusal an import would give them), or None when they may."""
    if actor is None:
        return "Sign in first: an import records who ran it."
    try:
        require(actor, "import_data", doing="import files into the book")
    except PermissionDenied as exc:
        return str(exc)
    return None


def run_import(session: Session, plan: ImportPlan, *, actor: Actor, skip_invalid: bool = False,
               progress: Callable[[float, str], None] | None = None) -> ImportSummary:
    """Write the plan as `actor` (needs `import_data`); the audit and the records name them."""
    require(actor, "import_data", doing=f"import {plan.filename}")
    try:
        return importing.apply_import(session, plan, skip_invalid=skip_invalid, progress=progress, actor=actor.audit_name)
    except ImportRejected as exc:
        raise ImportRejected(plan.filename, exc.errors, advice=_PAGE_ADVICE) from None


def summary_text(summary: ImportSummary, user: str) -> str:
    """One paragraph a manager reads after an import."""
    text = (f"{summary.filename} imported by {user}: {summary.created:,} created, {summary.updated:,} updated, "
            f"{summary.unchanged:,} unchanged, {summary.skipped_invalid:,} bad rows skipped"
            + (f", {summary.accounts_created:,} accounts and {summary.users_created:,} users created"
               if summary.accounts_created or summary.users_created else "")
            + (f"; {len(summary.merge_proposals)} merge proposal(s) wait in the approval queue" if summary.merge_proposals else "")
            + ".")
    if summary.as_history and summary.history is not None:
        text += " " + history_text(summary.history, done=True)
    return text


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def history_text(h: HistoryCounts, *, done: bool = False) -> str:
    verb = "went in" if done else "go in"
    parts = []
    if h.deals_stale:
        parts.append(f"{_n(h.deals_stale, 'open deal')} untouched for over a year {verb} as lost (stale)")
    if h.deals_closed:
        parts.append(f"{_n(h.deals_closed, 'closed deal')} {verb} as they are")
    if h.deals_live:
        parts.append(f"{_n(h.deals_live, 'open deal')} touched this year {'stays' if h.deals_live == 1 else 'stay'} on the board")
    if h.contacts_stale:
        parts.append(f"{_n(h.contacts_stale, 'lead')} untouched for over a year {verb} as disqualified (stale)")
    if h.contacts_live:
        parts.append(f"{_n(h.contacts_live, 'contact')} {'stays' if h.contacts_live == 1 else 'stay'} live")
    if h.activities:
        parts.append(f"{_n(h.activities, 'activity', 'activities')} {verb} without waking an agent")
    head = "As history: " if parts else "As history: nothing to change; "
    return head + "; ".join(parts) + ". No agent decision is made per imported row, and the audit log gets one entry."


def rejects_csv(plan: ImportPlan) -> bytes:
    """The bad rows as they were in the file, with `row` and `errors` columns first."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rejects.csv"
        importing.write_rejects(plan, path)
        return path.read_bytes()


__all__ = ["AS_ATTRIBUTE", "AUDITED_KINDS", "AUTO_DATE", "DATE_FORMATS", "IGNORE", "KINDS", "SPECIAL_KEYS", "ColumnSetting", "FieldChoice",
           "MappingPreset", "attribute_names", "column_settings", "dry_run", "field_choices", "history_text",
           "load_preset", "mapping_file", "mapping_from_choices", "mapping_from_file", "mapping_from_settings",
           "import_refusal", "mapping_presets", "page_wording", "suggested_preset", "read_upload", "rejects_csv", "run_import", "save_mapping", "suggested_mapping",
           "summary_text"]
