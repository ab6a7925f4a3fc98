"""Normalisation proposals: each fix the audit can make becomes one queued, revertible decision.

A fix is one `normalise_values` action over many records: a placeholder to empty, the variants of
one value to its canonical spelling, or the unit errors of one field divided back. The proposer is
`data_quality` (rules, no model); its envelopes go through `crm_core.oversight.submit` like an
agent's, so the policy (always asks), the audit log and revert apply unchanged. Records whose
field a person typed go into a separate proposal that says so: approving the ordinary fix never
overwrites them. A fix already waiting in the queue, or one a person rejected or reverted, is not
proposed again.

Outliers without a unit explanation, impossible dates and duplicates are reported, not fixed:
the right value is not knowable from the book (duplicates are merged one pair at a time through
`merge_contacts`, which the import already proposes).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Integer, Numeric, select
from sqlalchemy.orm import Session

from agents.base import DecisionEnvelope, Proposal, ProposedAction
from crm_core.actions.normalise import ATTRIBUTE_PREFIX, NORMALISABLE_COLUMNS, current_value
from crm_core.models import Decision
from crm_core.oversight import submit
from crm_core.quality.fields import ENTITY_OF_TABLE, TABLE_MODELS, record_labels
from crm_core.quality.placeholders import value_text
from crm_core.quality.schemas import AuditReport, Finding, FieldReport

PROPOSER = "data_quality"
RULES_VERSION = "data-quality-1"
PREVIEW_ROWS = 20
_CONFIDENCE = {"placeholder": 0.9, "variants": 0.8, "unit": 0.7}
_CHUNK = 500


class Fix(BaseModel):
    """One fix before it is submitted: what changes, on which records, and a preview of the rows."""

    fix_key: str                                  # the same fix proposed twice has the same key
    kind: str                                     # placeholder | variants | unit
    field_key: str
    label: str
    entity: str
    field: str
    changes: dict[str, str | int | float | None]
    record_ids: list[int]
    manual_record_ids: list[int]
    reason: str
    preview: list[dict[str, Any]]


def _field_of(field_key: str) -> tuple[str, str, str]:
    table, _, field = field_key.partition(".")
    return table, ENTITY_OF_TABLE[table], field


def normalisable(field_key: str) -> bool:
    table, entity, field = _field_of(field_key)
    if field.startswith(ATTRIBUTE_PREFIX):
        return not field[len(ATTRIBUTE_PREFIX):].startswith("_")
    return field in NORMALISABLE_COLUMNS[entity]


def _rows(session: Session, table: str, ids: list[int]) -> dict[int, Any]:
    model = TABLE_MODELS[table]
    out: dict[int, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in session.scalars(select(model).where(model.id.in_(ids[start:start + _CHUNK]))):
            out[row.id] = row
    return out


def _is_manual(row: Any, field: str) -> bool:
    manual = {str(f) for f in (row.manual_fields or [])}
    return field in manual or field.removeprefix(ATTRIBUTE_PREFIX) in manual


def _divided(model: type, field: str, value: Any, factor: float) -> int | float | str:
    if field.startswith(ATTRIBUTE_PREFIX):
        result = float(value) / factor
        return int(result) if result.is_integer() else round(result, 6)
    column_type = model.__table__.columns[field].type
    exact = Decimal(str(value)) / Decimal(str(factor))
    if isinstance(column_type, Integer):
        return int(exact.to_integral_value(rounding=ROUND_HALF_UP))
    if isinstance(column_type, Numeric):
        return str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return str(exact)


def _fix(session: Session, report: FieldReport, kind: str, findings: list[Finding]) -> Fix | None:
    table, entity, field = _field_of(report.field_key)
    model = TABLE_MODELS[table]
    ids = sorted({rid for f in findings for rid in f.record_ids})
    rows = _rows(session, table, ids)
    changes: dict[str, str | int | float | None] = {}
    if kind == "placeholder":
        changes = {f.value: None for f in findings if f.value is not None}
        what = ", ".join(f"“{f.value}”" for f in findings)
        reason = f"{what} in {report.label.lower()} stand{'s' if len(findings) == 1 else ''} for a missing value; " \
                 "emptying it lets the agents and the learned models read it as unknown."
        key_part = "|".join(sorted(changes))
    elif kind == "variants":
        canonical = findings[0].canonical or ""
        changes = {f.value: canonical for f in findings if f.value is not None}
        reason = f"{', '.join(f'“{v}”' for v in changes)} {'is another spelling' if len(changes) == 1 else 'are other spellings'} " \
                 f"of “{canonical}” in {report.label.lower()}; one spelling lets reports and models count them together."
        key_part = canonical + "<-" + "|".join(sorted(changes))
    else:  # unit
        for f in findings:
            for rid in f.record_ids:
                row = rows.get(rid)
                value = current_value(row, field) if row is not None else None
                if value is not None and f.factor:
                    changes[value_text(value)] = _divided(model, field, value, f.factor)
        reason = f"{len(ids)} value{'s' if len(ids) != 1 else ''} in {report.label.lower()} sit a thousand times or more above " \
                 "the rest and fall in line once divided: most likely typed in the wrong unit."
        key_part = "|".join(sorted(changes))
    if not changes:
        return None
    present = [rid for rid in ids if rid in rows and (v := current_value(rows[rid], field)) is not None
               and value_text(v) in changes]
    manual = [rid for rid in present if _is_manual(rows[rid], field)]
    ordinary = [rid for rid in present if rid not in set(manual)]
    labels = record_labels(session, table, present[:PREVIEW_ROWS])
    preview = []
    for rid in present[:PREVIEW_ROWS]:
        old = value_text(current_value(rows[rid], field))
        new = changes[old]
        preview.append({"record": labels.get(rid, str(rid)), "id": rid, "now": old,
                        "after": "(empty)" if new is None else value_text(new), "typed by a person": rid in set(manual)})
    return Fix(fix_key=f"{report.field_key}:{kind}:{key_part}"[:400], kind=kind, field_key=report.field_key,
               label=report.label, entity=entity, field=field, changes=changes, record_ids=ordinary,
               manual_record_ids=manual, reason=reason, preview=preview)


def plan_fixes(session: Session, report: AuditReport) -> list[Fix]:
    """The fixes the audit supports, built from a report that still holds every record id."""
    fixes: list[Fix] = []
    for field_report in report.fields:
        if not normalisable(field_report.field_key):
            continue
        placeholders = [f for f in field_report.findings if f.kind == "placeholder"]
        units = [f for f in field_report.findings if f.kind == "unit"]
        by_canonical: dict[str, list[Finding]] = {}
        for f in field_report.findings:
            if f.kind == "variant" and f.canonical:
                by_canonical.setdefault(f.canonical, []).append(f)
        groups = ([("placeholder", placeholders)] if placeholders else []) + \
                 [("variants", fs) for fs in by_canonical.values()] + ([("unit", units)] if units else [])
        for kind, findings in groups:
            fix = _fix(session, field_report, kind, findings)
            if fix is not None and (fix.record_ids or fix.manual_record_ids):
                fixes.append(fix)
    return fixes


# A fix waiting, or one a person turned down or undid, is not proposed again (the daily audit would
# otherwise ask the same question every morning); once executed, the same fix may come back for
# records a later import brought in.
_NOT_AGAIN = ("proposed", "queued", "approved", "edited", "rejected", "reverted")


def _blocked_fix_keys(session: Session) -> set[str]:
    rows = session.scalars(select(Decision.decision).where(Decision.agent == PROPOSER, Decision.status.in_(_NOT_AGAIN)))
    return {str(d.get("fix_key")) for d in rows if isinstance(d, dict) and d.get("fix_key")}


def _envelope(fix: Fix, *, manual: bool, audit_id: int | None) -> DecisionEnvelope:
    ids = fix.manual_record_ids if manual else fix.record_ids
    params = {"entity": fix.entity, "field": fix.field, "kind": fix.kind, "changes": fix.changes,
              "record_ids": [] if manual else ids, "manual_record_ids": fix.manual_record_ids,
              "include_manual": manual}
    preview = [p for p in fix.preview if p["typed by a person"] == manual]
    reason = fix.reason + (" These records were typed by a person: approve only if their values are wrong too."
                           if manual else "")
    label = f"{fix.label}{' (typed by a person)' if manual else ''}"
    decision = {"fix_key": fix.fix_key + (":manual" if manual else ""), "fix": fix.kind, "field_key": fix.field_key,
                "records": len(ids), "changes": fix.changes, "audit_id": audit_id}
    proposal = Proposal(
        subject_type="field", subject_id=None, subject_label=label[:300], confidence=_CONFIDENCE[fix.kind],
        reasoning=reason, decision=decision,
        actions=(ProposedAction(type="normalise_values", params=params, reason=reason),),
    )
    return DecisionEnvelope(
        agent=PROPOSER, proposals=(proposal,), decision=decision, prompt_version=RULES_VERSION, provider="offline",
        model="rules", is_local=True,
        context_snapshot={"field": fix.label, "fix": fix.kind, "records": len(ids), "preview": preview,
                          "audit_id": audit_id},
    )


def submit_fixes(session: Session, fixes: list[Fix], *, audit_id: int | None = None) -> list[int]:
    """Queue each fix not already waiting or turned down (its human-set records apart); returns the decision ids."""
    waiting = _blocked_fix_keys(session)
    ids: list[int] = []
    for fix in fixes:
        for manual in (False, True):
            records = fix.manual_record_ids if manual else fix.record_ids
            key = fix.fix_key + (":manual" if manual else "")
            if not records or key in waiting:
                continue
            ids += submit(session, _envelope(fix, manual=manual, audit_id=audit_id))
            waiting.add(key)
    return ids


def propose_fixes(session: Session, report: AuditReport) -> list[int]:
    return submit_fixes(session, plan_fixes(session, report), audit_id=report.audit_id)
