"""What every CRM action shares: row images for exact revert, record lookups, allowed recipients.

`CrmAction` adds two hooks to `ActionSpec` that oversight reads before deciding, both facts
about the action, never a verdict: `touched_fields` (so a field a human set is never overwritten
without review) and `problems` (e.g. a recipient outside the decision's subject). Whether a
human must look is oversight's call (`crm_core.oversight.policy`).

`FieldUpdateAction` is the shape of the actions that set fields on one record: before-image,
after-image, and a revert that refuses to write over a later change.
"""
from __future__ import annotations

from abc import abstractmethod
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, TypeVar

from sqlalchemy import Date, DateTime, Numeric, select
from sqlalchemy.orm import Session

from crm_core.actions.base import ActionContext, ActionParams, ActionSpec, ExecResult
from crm_core.errors import NotFound, UserError
from crm_core.models import Activity, Contact, Deal, Decision, Email, Meeting

M = TypeVar("M")


class FieldRef(NamedTuple):
    entity: str  # contact | account | deal
    id: int
    field: str


class CrmAction(ActionSpec):
    """An ActionSpec that also tells oversight what it touches and what stops it from running."""

    def summary(self, params: ActionParams) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.model_dump(exclude_none=True).items())
        return f"{self.type}({shown})"

    def touched_fields(self, session: Session, params: ActionParams) -> list[FieldRef]:
        return []

    def problems(self, session: Session, decision: Decision, params: ActionParams) -> list[str]:
        return []


class Target(NamedTuple):
    entity: str   # contact | account | deal | meeting: keys the before-image and names the record in messages
    model: type
    id: int


class FieldUpdateAction(CrmAction):
    """An action that sets fields on one record. The before-image is those fields and
    `updated_at` under the record's kind; revert writes it back, removes the rows the action added
    beside the record, and refuses when the record no longer holds what the action wrote.

    A subclass names the record (`entity`, `model`, `id_param`, or `target` when the params
    choose), the fields it writes (`written`, or `fields`), how it writes them (`apply`) and what
    its revert note says (`reverted`).
    """

    entity: ClassVar[str]
    model: ClassVar[type]
    id_param: ClassVar[str]
    written: ClassVar[tuple[str, ...]] = ()
    # Of the fields written, those a person may have typed: never overwritten without review.
    guarded: ClassVar[tuple[str, ...]] = ()
    aspect: ClassVar[str] = ""  # what changes, in the refusal: "deal 4 risk changed after the action ran"
    # Rows `apply` adds beside the record, as (key of their id in the result, model): deleted on revert.
    created_rows: ClassVar[tuple[tuple[str, type], ...]] = ()

    def target(self, params: ActionParams) -> Target:
        return Target(self.entity, self.model, getattr(params, self.id_param))

    def fields(self, params: ActionParams) -> list[str]:
        return list(self.written)

    @abstractmethod
    def apply(self, ctx: ActionContext, row: Any, params: ActionParams) -> ExecResult:
        """Write the fields on `row` (and add rows beside it, flushed when their ids are needed);
        returns what to keep besides the record's own images."""

    @abstractmethod
    def reverted(self, row: Any, before: dict[str, Any], params: ActionParams) -> str:
        """The audit note once the record holds `before` again."""

    def touched_fields(self, session: Session, params: ActionParams) -> list[FieldRef]:
        target = self.target(params)
        return [FieldRef(target.entity, target.id, f) for f in self.guarded]

    def problems(self, session: Session, decision: Decision, params: ActionParams) -> list[str]:
        target = self.target(params)
        return [] if session.get(target.model, target.id) else [f"{target.entity} {target.id} not found"]

    def execute(self, ctx: ActionContext, params: ActionParams) -> ExecResult:
        target = self.target(params)
        row = require(ctx.session, target.model, target.id, target.entity)
        fields = self.fields(params)
        before = snapshot(row, fields + ["updated_at"])
        extra = self.apply(ctx, row, params)
        ctx.session.flush()
        return ExecResult(before_image={target.entity: before, **extra.before_image},
                          result={**extra.result, "after": snapshot(row, fields),
                                  "updated_at": snapshot(row, ["updated_at"])["updated_at"]})

    def revert(self, ctx: ActionContext, params: ActionParams, done: ExecResult) -> str:
        target = self.target(params)
        row = require(ctx.session, target.model, target.id, target.entity)
        what = f"{target.entity} {row.id}" + (f" {self.aspect}" if self.aspect else "")
        check_unchanged(row, done.result["after"], what=what)
        before = done.before_image[target.entity]
        restore_row(row, before, done.result.get("updated_at"))
        for key, model in self.created_rows:
            delete_if_present(ctx.session, model, done.result.get(key))
        ctx.session.flush()
        return self.reverted(row, before, params)


# ---- row images ---------------------------------------------------------------------------

def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(column_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column_type, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if isinstance(column_type, Numeric):
        return Decimal(value)
    return value


def snapshot(obj: Any, fields: list[str]) -> dict[str, Any]:
    """The named columns of a row as JSON-safe values: what a revert writes back."""
    return {f: _to_json(getattr(obj, f)) for f in fields}


def restore(obj: Any, image: dict[str, Any]) -> None:
    """Write a snapshot back, converting each value to its column's type."""
    columns = obj.__table__.columns
    for name, value in image.items():
        restored = _from_json(columns[name].type, value)
        # JSON columns are compared by identity: a fresh object makes the change visible.
        if isinstance(restored, dict):
            restored = dict(restored)
        elif isinstance(restored, list):
            restored = list(restored)
        setattr(obj, name, restored)


def check_unchanged(obj: Any, after: dict[str, Any], *, what: str) -> None:
    """Refuse to revert over a later change: the row must still hold what the action wrote."""
    now = snapshot(obj, list(after))
    changed = [f for f in after if now[f] != after[f]]
    if changed:
        detail = ", ".join(f"{f}: now {now[f]!r}, action wrote {after[f]!r}" for f in changed)
        raise UserError(f"{what} changed after the action ran ({detail}); revert the later change first")


def restore_row(obj: Any, before: dict[str, Any], after_updated_at: str | None) -> None:
    """Write a before-image back. `updated_at` is restored too, unless the row changed since the
    action ran (then its updated_at moves on like any other edit)."""
    image = dict(before)
    if "updated_at" in image and snapshot(obj, ["updated_at"])["updated_at"] != after_updated_at:
        image.pop("updated_at")
    restore(obj, image)


def require(session: Session, model: type[M], record_id: int | None, what: str) -> M:
    row = session.get(model, record_id) if record_id is not None else None
    if row is None:
        raise NotFound(f"{what} {record_id} not found")
    return row


def delete_if_present(session: Session, model: type, record_id: int | None) -> bool:
    row = session.get(model, record_id) if record_id is not None else None
    if row is None:
        return False
    session.delete(row)
    return True


# ---- who an email may go to ---------------------------------------------------------------

def deal_contact_ids(session: Session, deal_id: int) -> set[int]:
    """The deal's primary contact and everyone the deal's emails, activities and meetings name."""
    deal = session.get(Deal, deal_id)
    if deal is None:
        return set()
    ids = {deal.primary_contact_id} if deal.primary_contact_id else set()
    for model in (Email, Activity, Meeting):
        ids.update(session.scalars(select(model.contact_id).where(model.deal_id == deal_id, model.contact_id.is_not(None)).distinct()))
    return ids


def allowed_contact_ids(session: Session, decision: Decision) -> set[int]:
    """Recipients an action of this decision may write to: its contact, or its deal's contacts.

    Derived from the decision's subject, never from params or reasoning text, so an address
    injected into untrusted text cannot become a recipient.
    """
    if decision.subject_id is None:
        return set()
    if decision.subject_type == "contact":
        return {decision.subject_id}
    if decision.subject_type == "deal":
        return deal_contact_ids(session, decision.subject_id)
    if decision.subject_type == "meeting":
        meeting = session.get(Meeting, decision.subject_id)
        if meeting is None:
            return set()
        ids = {meeting.contact_id} if meeting.contact_id else set()
        if meeting.deal_id:
            ids |= deal_contact_ids(session, meeting.deal_id)
        return ids
    return set()


def recipient_problems(session: Session, decision: Decision, contact_id: int) -> list[str]:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return [f"contact {contact_id} not found"]
    if contact_id not in allowed_contact_ids(session, decision):
        return [f"contact {contact_id} is not the contact of this {decision.subject_type} "
                f"({decision.subject_type} {decision.subject_id}); emails go only to the decision's contact or its deal's contacts"]
    if not contact.email:
        return [f"contact {contact_id} has no email address"]
    return []


def resolve_recipient(ctx: ActionContext, contact_id: int) -> Contact:
    """The contact to write to, checked against the decision's subject at execution time."""
    problems = recipient_problems(ctx.session, ctx.decision, contact_id)
    if problems:
        raise UserError(problems[0])
    return ctx.session.get(Contact, contact_id)  # type: ignore[return-value]


def deal_of(session: Session, decision: Decision) -> int | None:
    if decision.subject_type == "deal":
        return decision.subject_id
    if decision.subject_type == "meeting" and decision.subject_id is not None:
        meeting = session.get(Meeting, decision.subject_id)
        return meeting.deal_id if meeting else None
    return None
