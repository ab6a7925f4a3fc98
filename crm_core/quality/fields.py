"""Which fields an audit looks at, and reading their values from the store.

Every contact, account and deal column that holds what a person or an import wrote, plus every
custom `attributes` key (keys starting with "_" are the CRM's own bookkeeping). System columns
(scores, risk flags, ids) are left out: the agents write them, the audit judges the book.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import Account, Contact, Deal
from crm_core.quality.placeholders import is_placeholder_text
from crm_core.quality.schemas import FieldKind

ENTITY_OF_TABLE = {"contacts": "contact", "accounts": "account", "deals": "deal"}
TABLE_MODELS: dict[str, type] = {"contacts": Contact, "accounts": Account, "deals": Deal}
COLUMNS: dict[str, dict[str, FieldKind]] = {
    "contacts": {"first_name": "name", "last_name": "name", "email": "identifier", "phone": "identifier",
                 "title": "category", "source": "category", "created_at": "date",
                 "last_activity_at": "date", "outcome_at": "date"},
    "accounts": {"name": "name", "domain": "identifier", "industry": "category", "employee_count": "number",
                 "annual_revenue": "number", "country": "category"},
    "deals": {"name": "text", "product": "category", "stage": "category", "amount": "number",
              "currency": "category", "opened_at": "date", "expected_close": "plan_date",
              "closed_at": "date", "stage_entered_at": "date"},
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_CHUNK = 5000


@dataclass
class FieldValues:
    table: str
    field: str                      # "title" or "attributes.lead_type"
    kind: FieldKind
    ids: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)   # aligned with ids; None when missing
    manual: set[int] = field(default_factory=set)     # records where a person set this field

    @property
    def key(self) -> str:
        return f"{self.table}.{self.field}"

    @property
    def entity(self) -> str:
        return ENTITY_OF_TABLE[self.table]

    @property
    def label(self) -> str:
        name = self.field.removeprefix("attributes.").replace("_", " ")
        return f"{self.table.capitalize()}: {name}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def attribute_kind(values: list[Any]) -> FieldKind:
    """Guess a custom field's kind from what it holds (imports type attributes as number, date, text)."""
    present = [v for v in values if v is not None and not (isinstance(v, str) and (not v.strip() or is_placeholder_text(v)))]
    if not present:
        return "category"
    if sum(_is_number(v) for v in present) >= 0.9 * len(present):
        return "number"
    if sum(isinstance(v, date | datetime) or (isinstance(v, str) and bool(_ISO_DATE.match(v.strip())))
           for v in present) >= 0.9 * len(present):
        return "date"
    distinct = len({str(v).strip().casefold() for v in present})
    return "category" if distinct <= 50 or distinct <= 0.5 * len(present) else "text"


def read_fields(session: Session, tables: tuple[str, ...] = ("contacts", "accounts", "deals")) -> tuple[list[FieldValues], dict[str, int]]:
    """Every audited field's values, and the number of records per table."""
    out: list[FieldValues] = []
    counts: dict[str, int] = {}
    for table in tables:
        model = TABLE_MODELS[table]
        columns = COLUMNS[table]
        fixed = {name: FieldValues(table, name, kind) for name, kind in columns.items()}
        attrs: dict[str, FieldValues] = {}
        seen = 0
        last_id = 0
        selected = [model.id, *(getattr(model, c) for c in columns), model.attributes, model.manual_fields]
        while True:
            # Keyset pages keep memory flat on a large book.
            rows = session.execute(select(*selected).where(model.id > last_id).order_by(model.id).limit(_CHUNK)).all()
            if not rows:
                break
            for row in rows:
                rid = row[0]
                manual = {str(m) for m in (row[-1] or [])}
                for i, name in enumerate(columns, start=1):
                    fv = fixed[name]
                    fv.ids.append(rid)
                    fv.values.append(row[i])
                    if name in manual:
                        fv.manual.add(rid)
                for key, value in (row[-2] or {}).items():
                    if not isinstance(key, str) or key.startswith("_") or isinstance(value, dict | list):
                        continue
                    fv = attrs.get(key)
                    if fv is None:
                        fv = attrs[key] = FieldValues(table, f"attributes.{key}", "category")
                        # Records before this one did not have the key: missing there.
                    fv.ids.append(rid)
                    fv.values.append(value)
                    if key in manual or f"attributes.{key}" in manual:
                        fv.manual.add(rid)
            seen += len(rows)
            last_id = rows[-1][0]
        counts[table] = seen
        for fv in attrs.values():
            fv.kind = attribute_kind(fv.values)
        out.extend(fixed.values())
        out.extend(sorted(attrs.values(), key=lambda f: f.field))
    return out, counts


def record_labels(session: Session, table: str, ids: list[int]) -> dict[int, str]:
    """A readable name per record for duplicate groups and previews."""
    model = TABLE_MODELS[table]
    labels: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if table == "contacts":
            rows = session.execute(select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.external_id)
                                   .where(Contact.id.in_(chunk)))
            for rid, first, last, email, ext in rows:
                name = " ".join(p for p in (first, last) if p)
                labels[rid] = name or email or ext or f"contact {rid}"
        else:
            for rid, name in session.execute(select(model.id, model.name).where(model.id.in_(chunk))):
                labels[rid] = name or f"{ENTITY_OF_TABLE[table]} {rid}"
    return labels
