"""normalise_values: one data-quality fix applied to many records at once, revertible exactly.

A fix maps stored values of one field to a cleaner value: a placeholder to empty, spelling
variants to one canonical spelling, a number in the wrong unit to the right one. It changes only
the listed records, and only those still holding a value the fix expects (a record edited since
the proposal is left alone and named in the result). The before-image keeps each changed
record's field and `updated_at`, so a revert writes back exactly what was there.

A field a human set (`manual_fields`) is changed only when the proposal lists the record under
`manual_record_ids` and says so (`include_manual`); the data-quality proposer puts those records
in a separate proposal, so approving the ordinary fix never touches them.
"""
from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import Integer, Numeric, String, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, FieldRef, check_unchanged, restore_row, snapshot
from crm_core.errors import UserError
from crm_core.models import Account, Contact, Deal, Decision
from crm_core.models.enums import Stakes
from crm_core.quality.placeholders import value_text

ENTITY_MODELS: dict[str, type] = {"contact": Contact, "account": Account, "deal": Deal}
# Columns a fix may rewrite. Keys, names, stages and statuses carry meaning elsewhere (matching,
# stage history, outcomes), so they are audited but never rewritten in bulk.
NORMALISABLE_COLUMNS: dict[str, frozenset[str]] = {
    "contact": frozenset({"title", "source"}),
    "account": frozenset({"industry", "country", "employee_count", "annual_revenue"}),
    "deal": frozenset({"product", "amount"}),
}
ATTRIBUTE_PREFIX = "attributes."
FixKind = Literal["placeholder", "variants", "unit"]
_CHUNK = 500


class NormaliseValuesParams(ActionParams):
    entity: Literal["contact", "account", "deal"]
    field: str = Field(min_length=1, max_length=300)   # "title" or "attributes.lead_type"
    kind: FixKind
    # stored value as text (`value_text`) -> the value to write; None empties the field.
    changes: dict[str, str | int | float | None] = Field(min_length=1)
    record_ids: list[int] = Field(default_factory=list)
    manual_record_ids: list[int] = Field(default_factory=list)
    include_manual: bool = False

    @model_validator(mode="after")
    def _field_is_normalisable(self) -> NormaliseValuesParams:
        if self.field.startswith(ATTRIBUTE_PREFIX):
            key = self.field[len(ATTRIBUTE_PREFIX):]
            if not key or key.startswith("_"):
                raise ValueError(f"attribute {key!r} cannot be normalised (internal keys start with '_')")
        elif self.field not in NORMALISABLE_COLUMNS[self.entity]:
            raise ValueError(f"{self.entity} field {self.field!r} cannot be normalised; allowed: "
                             f"{sorted(NORMALISABLE_COLUMNS[self.entity])} or attributes.NAME")
        if not self.record_ids and not (self.include_manual and self.manual_record_ids):
            raise ValueError("no record to change: record_ids is empty (and human-set records are not included)")
        return self

    @property
    def targets(self) -> list[int]:
        return [*self.record_ids, *(self.manual_record_ids if self.include_manual else [])]


def _attribute_key(field: str) -> str | None:
    return field[len(ATTRIBUTE_PREFIX):] if field.startswith(ATTRIBUTE_PREFIX) else None


def current_value(row: Any, field: str) -> Any:
    key = _attribute_key(field)
    return (row.attributes or {}).get(key) if key else getattr(row, field)


def _coerce(model: type, field: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    column_type = model.__table__.columns[field].type
    try:
        if isinstance(column_type, Integer):
            return int(Decimal(str(value)))
        if isinstance(column_type, Numeric):
            return Decimal(str(value))
    except (ValueError, InvalidOperation):
        raise UserError(f"{where}: {field} needs a number, got {value!r}") from None
    text = str(value).strip()
    if isinstance(column_type, String) and column_type.length and len(text) > column_type.length:
        raise UserError(f"{where}: {field} is longer than {column_type.length} characters")
    return text or None


def _is_manual(row: Any, field: str) -> bool:
    manual = {str(f) for f in (row.manual_fields or [])}
    key = _attribute_key(field)
    return field in manual or (key is not None and key in manual)


def _load(session: Session, model: type, ids: list[int]) -> dict[int, Any]:
    rows: dict[int, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in session.scalars(select(model).where(model.id.in_(ids[start:start + _CHUNK]))):
            rows[row.id] = row
    return rows


def _label(params: NormaliseValuesParams) -> str:
    key = _attribute_key(params.field)
    field = (key or params.field).replace("_", " ")
    return f"{params.entity} {field}"


@register
class NormaliseValues(CrmAction):
    type = "normalise_values"
    Params = NormaliseValuesParams
    # A data-quality fix rewrites many records at once: a person looks at the preview first.
    stakes = Stakes.HIGH
    default_threshold = 1.0
    always_ask = True
    asks_because = "a bulk change to many records always asks a person"
    reversible = True
    undo_note = "restores every changed record's previous value"

    def summary(self, params: NormaliseValuesParams) -> str:
        shown = []
        for old, new in list(params.changes.items())[:4]:
            shown.append(f"“{old}” → {'empty' if new is None else f'“{value_text(new)}”'}")
        more = len(params.changes) - len(shown)
        what = "; ".join(shown) + (f" and {more} more" if more > 0 else "")
        n = len(params.targets)
        text = f"Clean {_label(params)}: {what}, on {n} record{'s' if n != 1 else ''}"
        if params.manual_record_ids and not params.include_manual:
            text += f" ({len(params.manual_record_ids)} typed by a person are left as they are)"
        elif params.include_manual:
            text += f", including {len(params.manual_record_ids)} typed by a person"
        return text

    def touched_fields(self, session: Session, params: NormaliseValuesParams) -> list[FieldRef]:
        # Only human-set records can conflict; the ordinary ones are checked at execute time.
        return [FieldRef(params.entity, rid, params.field) for rid in params.manual_record_ids] if params.include_manual else []

    def problems(self, session: Session, decision: Decision, params: NormaliseValuesParams) -> list[str]:
        if params.include_manual:
            return []
        model = ENTITY_MODELS[params.entity]
        rows = _load(session, model, params.record_ids)
        manual = [rid for rid, row in rows.items() if _is_manual(row, params.field)]
        if manual:
            return [f"{len(manual)} of these records now have a value typed by a person (e.g. {params.entity} {manual[0]})"]
        return []

    def execute(self, ctx: ActionContext, params: NormaliseValuesParams) -> ExecResult:
        model = ENTITY_MODELS[params.entity]
        key = _attribute_key(params.field)
        stored = ["attributes", "updated_at"] if key else [params.field, "updated_at"]
        shown = ["attributes"] if key else [params.field]
        rows = _load(ctx.session, model, params.targets)
        allowed_manual = set(params.manual_record_ids) if params.include_manual else set()
        before: dict[str, Any] = {}
        changed_rows: list[Any] = []
        # Set explicitly: in a batched UPDATE the ORM hands every row the first row's onupdate
        # value while the database stores one per row, and revert compares against what is stored.
        now = clock.now()
        skipped: dict[str, str] = {}
        for rid in params.targets:
            row = rows.get(rid)
            if row is None:
                skipped[str(rid)] = "no longer in the book"
                continue
            if _is_manual(row, params.field) and rid not in allowed_manual:
                skipped[str(rid)] = "typed by a person since the proposal"
                continue
            old = current_value(row, params.field)
            if old is None or value_text(old) not in params.changes:
                skipped[str(rid)] = "changed since the proposal"
                continue
            new = params.changes[value_text(old)]
            before[str(rid)] = snapshot(row, stored)
            if key:
                attributes = copy.deepcopy(row.attributes or {})
                if new is None:
                    attributes.pop(key, None)
                else:
                    attributes[key] = new
                row.attributes = attributes
            else:
                setattr(row, params.field, _coerce(model, params.field, new, f"{params.entity} {rid}"))
            row.updated_at = now
            changed_rows.append(row)
        if not changed_rows:
            raise UserError(f"nothing to change in {_label(params)}: every listed record was edited, removed or "
                            "typed by a person since the proposal")
        ctx.session.flush()
        after = {str(r.id): snapshot(r, shown) for r in changed_rows}
        after_at = {str(r.id): snapshot(r, ["updated_at"])["updated_at"] for r in changed_rows}
        return ExecResult(before_image={"records": before},
                          result={"after": after, "updated_at": after_at, "changed": len(changed_rows), "skipped": skipped})

    def revert(self, ctx: ActionContext, params: NormaliseValuesParams, done: ExecResult) -> str:
        model = ENTITY_MODELS[params.entity]
        before: dict[str, Any] = done.before_image.get("records", {})
        rows = _load(ctx.session, model, [int(rid) for rid in before])
        missing = [rid for rid in before if int(rid) not in rows]
        if missing:
            raise UserError(f"{params.entity} {missing[0]} was removed after the fix ran; nothing was restored")
        for rid in before:
            check_unchanged(rows[int(rid)], done.result["after"][rid], what=f"{params.entity} {rid}")
        for rid, image in before.items():
            restore_row(rows[int(rid)], image, done.result["updated_at"].get(rid))
        ctx.session.flush()
        return f"{_label(params)}: {len(before)} record{'s' if len(before) != 1 else ''} restored"
