"""write_enrichment: firmographic/contact fields found by the enrichment agent, with provenance.

Each written field keeps its source and confidence in `attributes["_enrichment"][field]`.
Only listed fields can be written (never an email address: that would choose a recipient).
A field a human set (`manual_fields`) is never overwritten without review: oversight queues
such a decision, so only a human's approval lets it through.
"""
from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import Integer, Numeric, String
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import FieldRef, FieldUpdateAction, Target
from crm_core.errors import UserError
from crm_core.models import Account, Contact, Decision
from crm_core.models.enums import Stakes

# field -> where it lives: a column of the table, or a key in `attributes`.
ALLOWED_FIELDS: dict[str, dict[str, Literal["column", "attribute"]]] = {
    "contact": {"title": "column", "first_name": "column", "last_name": "column", "account_id": "column",
                "linkedin_url": "attribute", "seniority": "attribute", "department": "attribute",
                "city": "attribute", "country": "attribute", "company": "attribute"},
    "account": {"industry": "column", "employee_count": "column", "annual_revenue": "column", "country": "column",
                "website": "attribute", "city": "attribute", "founded_year": "attribute",
                "linkedin_url": "attribute", "description": "attribute"},
}
_MODELS = {"contact": Contact, "account": Account}


class EnrichedValue(ActionParams):
    value: str | int | float | None
    source: str = Field(min_length=1, max_length=200)  # where it was found, e.g. "company website"
    confidence: float = Field(ge=0.0, le=1.0)


class WriteEnrichmentParams(ActionParams):
    entity: Literal["contact", "account"]
    entity_id: int
    fields: dict[str, EnrichedValue] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _only_listed_fields(self) -> WriteEnrichmentParams:
        allowed = ALLOWED_FIELDS[self.entity]
        unknown = sorted(set(self.fields) - set(allowed))
        if unknown:
            raise ValueError(f"{self.entity} fields {unknown} cannot be enriched; allowed: {sorted(allowed)}")
        return self


def _coerce(model: type, field: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    column_type = model.__table__.columns[field].type
    try:
        if isinstance(column_type, Integer):
            return int(value)
        if isinstance(column_type, Numeric):
            return Decimal(str(value))
    except (ValueError, InvalidOperation):
        raise UserError(f"{where}: field {field!r} needs a number, got {value!r}") from None
    text = str(value).strip()
    if isinstance(column_type, String) and column_type.length and len(text) > column_type.length:
        raise UserError(f"{where}: field {field!r} is longer than {column_type.length} characters")
    return text


@register
class WriteEnrichment(FieldUpdateAction):
    type = "write_enrichment"
    Params = WriteEnrichmentParams
    # Reversible fills; a field a person set, and a guess, still ask (oversight reads `touched_fields`).
    stakes = Stakes.LOW
    default_threshold = 0.65
    reversible = True
    undo_note = "restores the previous field values and provenance"

    def target(self, params: WriteEnrichmentParams) -> Target:
        return Target(params.entity, _MODELS[params.entity], params.entity_id)

    def fields(self, params: WriteEnrichmentParams) -> list[str]:
        # Attribute fields live in one JSON column, kept whole with the provenance beside them.
        return [f for f in params.fields if ALLOWED_FIELDS[params.entity][f] == "column"] + ["attributes"]

    def summary(self, params: WriteEnrichmentParams) -> str:
        shown = ", ".join(f"{k}={v.value!r} ({v.source}, {v.confidence:.0%})" for k, v in params.fields.items())
        return f"Enrich {params.entity} {params.entity_id}: {shown}"

    def touched_fields(self, session: Session, params: WriteEnrichmentParams) -> list[FieldRef]:
        return [FieldRef(params.entity, params.entity_id, f) for f in params.fields]

    def problems(self, session: Session, decision: Decision, params: WriteEnrichmentParams) -> list[str]:
        missing = super().problems(session, decision, params)
        if missing:
            return missing
        link = params.fields.get("account_id")
        # Linking a contact to an account that does not exist would fail on the foreign key at execute time.
        if link is not None and link.value is not None:
            try:
                account_id = int(link.value)
            except (TypeError, ValueError):
                return [f"account_id needs an account id, got {link.value!r}"]
            if session.get(Account, account_id) is None:
                return [f"account {account_id} (the account_id to link) not found"]
        return []

    def apply(self, ctx: ActionContext, row: Contact | Account, params: WriteEnrichmentParams) -> ExecResult:
        model = _MODELS[params.entity]
        where = f"{params.entity} {row.id}"
        layout = ALLOWED_FIELDS[params.entity]
        attributes = copy.deepcopy(row.attributes or {})
        provenance = attributes.setdefault("_enrichment", {})
        now = clock.now().isoformat()
        for name, item in params.fields.items():
            if layout[name] == "column":
                setattr(row, name, _coerce(model, name, item.value, where))
            else:
                attributes[name] = item.value
            provenance[name] = {"value": item.value, "source": item.source, "confidence": item.confidence,
                                "at": now, "decision_id": ctx.decision.id}
        row.attributes = attributes
        return ExecResult()

    def reverted(self, row: Contact | Account, before: dict[str, Any], params: WriteEnrichmentParams) -> str:
        return f"{params.entity} {row.id}: {', '.join(params.fields)} restored"
