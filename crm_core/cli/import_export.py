"""import / export: CSV in and out of the store.

    python -m crm_core import {accounts,contacts,deals,activities} FILE [--mapping M.json]
        [--dry-run] [--skip-invalid] [--reject-file F] [--as-history] [--json] [--as USER]
    python -m crm_core export {contacts,deals,decisions} FILE [--as USER]

An import runs as a real user with the right `import_data` (a manager or an admin): `--as NAME`,
else the owner of CRM_TOKEN, else CRM_USER. A dry run writes nothing and needs no one.

Exit codes: 0 imported (or a clean dry run), 2 bad input: an unreadable file, a bad mapping,
or rows with errors (then nothing is imported unless --skip-invalid).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crm_core.auth.cli_identity import cli_actor
from crm_core.auth.rights import require
from crm_core.db import unit_of_work
from crm_core.exporting import EXPORT_KINDS, export_csv
from crm_core.importing import (
    IMPORT_KINDS,
    ImportMapping,
    ImportPlan,
    ImportRejected,
    ImportSummary,
    apply_import,
    plan_import,
    read_csv,
    write_rejects,
)
from crm_core.importing.reading import delimiter_name
from crm_core.services.imports import SHIPPED_MAPPINGS, saved_mappings_dir, suggested_preset

_SHOWN_ERRORS = 50
_SHOWN_DUPLICATES = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import", help="import a CSV of accounts, contacts, deals or activities",
                              description="Import a CSV export (HubSpot, Salesforce, Pipedrive or any other). "
                                          "Headers are mapped automatically; a mapping file overrides.")
    p.add_argument("kind", choices=IMPORT_KINDS)
    p.add_argument("file", type=Path)
    p.add_argument("--mapping", type=Path, metavar="M.json",
                   help='JSON: {"CSV header": "field" | "attributes.NAME" | null, "__defaults__": {...}}')
    p.add_argument("--dry-run", action="store_true", help="validate and show what would change; write nothing")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the good rows and write the bad ones to a reject CSV")
    p.add_argument("--reject-file", type=Path, metavar="F",
                   help="where --skip-invalid writes bad rows (default: ./<file>.rejected.csv)")
    p.add_argument("--as-history", action="store_true",
                   help="import closed and stale records as history for learning: open deals untouched for a year "
                        "(or undated) go in as lost, leads untouched for a year as disqualified, and no agent is "
                        "woken per imported row")
    p.add_argument("--json", action="store_true", help="print the plan and summary as JSON")
    p.add_argument("--as", dest="as_user", metavar="USER",
                   help="who imports: an active manager or admin (default: CRM_USER, or CRM_TOKEN's owner); "
                        "not needed for --dry-run")
    p.set_defaults(func=_import)

    e = subparsers.add_parser("export", help="export contacts, deals or decisions as CSV (formula-safe)")
    e.add_argument("kind", choices=EXPORT_KINDS)
    e.add_argument("file", help="output CSV path, or - for standard output")
    e.add_argument("--as", dest="as_user", metavar="USER",
                   help="who exports: an active user (default: CRM_USER, or CRM_TOKEN's owner); a rep's file holds "
                        "their own contacts and deals, the decision log needs a manager or admin")
    e.set_defaults(func=_export)


def _import(args: argparse.Namespace) -> int:
    mapping = ImportMapping.load(args.mapping) if args.mapping else None
    table = read_csv(args.file)
    summary: ImportSummary | None = None
    reject_path: Path | None = None
    with unit_of_work(readonly=args.dry_run) as session:
        actor = None
        if not args.dry_run:  # refused before the file is planned: a long plan should not end in "no"
            doing = f"import {args.file.name}"
            actor = cli_actor(session, args.as_user, doing=doing)
            require(actor, "import_data", doing=doing)
        plan = plan_import(session, args.kind, table, mapping, as_history=args.as_history)
        if not args.dry_run:
            if plan.errors and not args.skip_invalid:
                _report(plan, None, args)
                raise ImportRejected(plan.filename, plan.errors)
            summary = apply_import(session, plan, skip_invalid=args.skip_invalid, actor=actor.audit_name)
            if summary.errors:
                reject_path = args.reject_file or Path.cwd() / f"{args.file.stem}.rejected.csv"
                write_rejects(plan, reject_path, summary.errors)
                summary.reject_file = str(reject_path)
    _report(plan, summary, args)
    if mapping is None and not args.json and (fits := suggested_preset(args.kind, table.headers)) is not None:
        folder = SHIPPED_MAPPINGS if fits.source == "shipped" else saved_mappings_dir()
        print(f"hint: the mapping {folder / (fits.name + '.json')} was made for files like this one; "
              f"use it with --mapping")
    if args.dry_run and plan.errors:
        return 2
    return 0


def _report(plan: ImportPlan, summary: ImportSummary | None, args: argparse.Namespace) -> None:
    if args.json:
        out = {"plan": plan.model_dump(mode="json"), "summary": summary.model_dump(mode="json") if summary else None}
        print(json.dumps(out, indent=2))
        return
    c = plan.counts
    print(f"{plan.filename}: {plan.total_rows:,} rows ({plan.encoding}, {delimiter_name(plan.delimiter)}-separated) "
          f"as {plan.kind}")
    for header, target in plan.mapping.items():
        fmt = f"  [{plan.date_formats[header]}]" if header in plan.date_formats else ""
        print(f"  {header!r:32} -> {target or '(ignored)'}{fmt}")
    for warning in plan.warnings:
        print(f"warning: {warning}")
    for check in plan.checks:
        print(f"warning: {check.message}")
    if plan.history_suggested:
        print("hint: --as-history imports these records as history, off the live board and without an agent "
              "decision per row")
    if plan.history is not None:
        h = plan.history
        print(f"as history: {h.deals_stale:,} stale open deals recorded as lost, {h.deals_closed:,} closed deals, "
              f"{h.deals_live:,} recent open deals stay live; {h.contacts_stale:,} stale leads recorded as "
              f"disqualified, {h.contacts_live:,} contacts stay live; {h.activities:,} activities")
    for error in plan.errors[:_SHOWN_ERRORS]:
        print(f"error: {error}", file=sys.stderr)
    if len(plan.errors) > _SHOWN_ERRORS:
        print(f"error: ... and {len(plan.errors) - _SHOWN_ERRORS} more errors", file=sys.stderr)
    duplicates = summary.duplicates if summary else plan.duplicates
    for dup in duplicates[:_SHOWN_DUPLICATES]:
        left = f"row {dup.row}" if dup.row is not None else f"contact #{dup.contact_id}"
        right = f"row {dup.other_row}" if dup.other_row is not None else f"contact #{dup.other_contact_id}"
        queued = f" -> merge proposal #{dup.decision_id}" if dup.decision_id else ""
        print(f"likely duplicate: {left} {dup.label!r} ~ {right} {dup.other_label!r}: {dup.detail}{queued}")
    if len(duplicates) > _SHOWN_DUPLICATES:
        print(f"likely duplicate: ... and {len(duplicates) - _SHOWN_DUPLICATES} more")
    if summary is None:
        verdict = "dry run, nothing written" if args.dry_run else "nothing imported"
        print(f"would create {c.create:,}, update {c.update:,}, leave {c.unchanged:,} unchanged; "
              f"{c.invalid:,} invalid rows; new accounts {c.accounts_create:,}, new users {c.users_create:,}; "
              f"{len(plan.duplicates):,} likely duplicates ({verdict})")
        return
    print(f"created {summary.created:,}, updated {summary.updated:,}, unchanged {summary.unchanged:,}, "
          f"skipped {summary.skipped_invalid:,} invalid; new accounts {summary.accounts_created:,}, "
          f"new users {summary.users_created:,}; stage changes {summary.stage_changes:,}; "
          f"contacts made customers {summary.contacts_made_customers:,}; "
          f"merge proposals queued {len(summary.merge_proposals):,}")
    if summary.duplicates_not_proposed:
        print(f"history import: {summary.duplicates_not_proposed:,} likely duplicates listed, no merge proposals queued")
    if summary.reject_file:
        print(f"bad rows written to {summary.reject_file}")


def _export(args: argparse.Namespace) -> int:
    with unit_of_work(readonly=True) as session:
        actor = cli_actor(session, args.as_user, doing=f"export {args.kind}")
        count = export_csv(session, args.kind, args.file, actor=actor)
    if args.file != "-":
        print(f"{args.kind}: {count:,} rows written to {args.file}")
    return 0
