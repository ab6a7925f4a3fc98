"""`python -m crm_core data audit [--json] [--propose]`: the data-quality audit from the command line."""
from __future__ import annotations

import argparse
import json

from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.quality.schemas import AuditReport
from crm_core.services.data_health import audit_now


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="data quality: audit the book, propose fixes",
                                 description="Data-quality commands.")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    audit = commands.add_parser(
        "audit", help="audit every contact, account and deal field; keep the score for the trend",
        description="Per field: fill rate, distinct and top values, placeholders, spelling variants, outliers and "
                    "unit errors, impossible dates; duplicate groups; a score per field and for the book. The audit "
                    "is kept (the Data health page charts the trend). Exit code 0 whatever the score.")
    audit.add_argument("--json", action="store_true", help="print the whole report as JSON")
    audit.add_argument("--propose", action="store_true",
                       help="also queue the fixes the audit supports (each one waits for a person's approval)")
    audit.add_argument("--all-fields", action="store_true", help="list every field, not only the ones with findings")
    audit.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        report, ids = audit_now(session, Actor.system("data audit"), propose=args.propose)
    if args.json:
        payload = report.model_dump(mode="json")
        payload["proposed_decisions"] = ids
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print(_text(report, all_fields=args.all_fields))
    if args.propose:
        print(f"\n{len(ids)} fix(es) queued for approval" + (f": decisions {', '.join(map(str, ids))}" if ids else
                                                                " (nothing new to fix, or already waiting)"))
    return 0


def _text(report: AuditReport, *, all_fields: bool) -> str:
    if not report.records:
        return f"The book is empty: no contact, account or deal to audit yet (audit {report.audit_id} kept)."
    lines = [f"Book score {report.book_score:.1f}/100 over {report.records:,} records (audit {report.audit_id})."]
    shown = [f for f in report.fields if f.filled and (all_fields or f.findings)]
    for f in sorted(shown, key=lambda f: f.score):
        filled = "under 1%" if 0 < f.fill_rate < 0.005 else f"{f.fill_rate:.0%}"
        lines.append(f"\n{f.label}: score {f.score:.0f}, filled {filled}, {f.distinct_values:,} distinct values")
        if all_fields and f.top_values:
            lines.append("  top: " + ", ".join(f"{t.value} ({t.count:,})" for t in f.top_values))
        lines.extend(f"  - {x.message}" for x in f.findings)
    empty = [f.label for f in report.fields if not f.filled]
    if empty:
        lines.append(f"\nNever filled: {', '.join(empty)}.")
    if report.duplicates:
        lines.append(f"\n{len(report.duplicates)} group(s) of likely duplicates:")
        lines.extend(f"  - {g.field_key.split('.')[0]}: {' / '.join(g.labels[:4])}" for g in report.duplicates[:20])
    if not any(f.findings for f in report.fields) and not report.duplicates:
        lines.append("No placeholder, variant, outlier, impossible date or duplicate found.")
    return "\n".join(lines)
