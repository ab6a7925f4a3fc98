"""merge_contacts: fold a duplicate contact into the one kept, and take it apart again on revert.

Execute moves everything that points at the source (activities, emails, meetings, tasks, deals
as primary contact, score history, outbox messages) to the target, fills the target's empty
fields from the source, keeps the further lifecycle stage, then deletes the source. The
before-image holds both contacts whole and the ids of every re-pointed row; revert puts the
target's merged fields back, re-inserts the source with its own id and every column as it was,
and points those rows back at it. Revert is refused when a merged field of the target was
changed by someone after the merge (undo that change first), like every other action here.
"""
from __future__ import annotations

from typing import Any

from pydantic import model_validator
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, FieldRef, check_unchanged, require, restore, snapshot
from crm_core.errors import UserError
from crm_core.models import Activity, Contact, Deal, Decision, Email, Meeting, OutboxMessage, ScoreHistory, Task
from crm_core.models.enums import LifecycleStage, Stakes

ALL_COLUMNS = [c.key for c in Contact.__table__.columns]
# Every foreign key to contacts.id: what follows the person into the kept record.
POINTERS: tuple[tuple[str, type, str], ...] = (
    ("activities", Activity, "contact_id"),
    ("emails", Email, "contact_id"),
    ("meetings", Meeting, "contact_id"),
    ("tasks", Task, "contact_id"),
    ("deals", Deal, "primary_contact_id"),
    ("score_history", ScoreHistory, "contact_id"),
    ("outbox", OutboxMessage, "contact_id"),
)
# Filled on the target only when it has no value of its own.
FILLED = ("first_name", "last_name", "email", "email_normalized", "phone", "phone_normalized", "title",
          "account_id", "owner_id", "source", "external_id", "next_action")
_STAGE_RANK = {LifecycleStage.LEAD.value: 0, LifecycleStage.MQL.value: 1, LifecycleStage.SQL.value: 2,
               LifecycleStage.OPPORTUNITY.value: 3, LifecycleStage.DISQUALIFIED.value: 4,
               LifecycleStage.CUSTOMER.value: 5}


class MergeContactsParams(ActionParams):
    source_contact_id: int   # merged away (deleted, restorable)
    target_contact_id: int   # kept

    @model_validator(mode="after")
    def _distinct(self) -> MergeContactsParams:
        if self.source_contact_id == self.target_contact_id:
            raise ValueError("a contact cannot be merged into itself")
        return self


def merged_values(target: Contact, source: Contact) -> dict[str, Any]:
    """The target's columns that change: empty ones filled, histories combined, nothing of the target's lost."""
    changes: dict[str, Any] = {}
    for column in FILLED:
        if getattr(target, column) is None and getattr(source, column) is not None:
            changes[column] = getattr(source, column)
    if target.score is None and source.score is not None:
        changes.update(score=source.score, tier=source.tier, score_updated_at=source.score_updated_at)
    if _STAGE_RANK.get(source.lifecycle_stage, 0) > _STAGE_RANK.get(target.lifecycle_stage, 0):
        changes.update(lifecycle_stage=source.lifecycle_stage, outcome_at=source.outcome_at)
    if source.last_activity_at and (target.last_activity_at is None or source.last_activity_at > target.last_activity_at):
        changes["last_activity_at"] = source.last_activity_at
    if source.created_at < target.created_at:
        changes["created_at"] = source.created_at
    if source.sensitive and not target.sensitive:
        changes["sensitive"] = True
    if source.notes and source.notes not in (target.notes or ""):
        changes["notes"] = f"{target.notes}\n\n{source.notes}" if target.notes else source.notes
    manual = list(dict.fromkeys([*(target.manual_fields or []), *(source.manual_fields or [])]))
    if manual != list(target.manual_fields or []):
        changes["manual_fields"] = manual
    attributes = {**(source.attributes or {}), **(target.attributes or {})}
    other_emails = list((target.attributes or {}).get("other_emails", []))
    kept_email = changes.get("email", target.email)
    if source.email and source.email != kept_email and source.email not in other_emails:
        other_emails.append(source.email)
    if other_emails:
        attributes["other_emails"] = other_emails
    merged_from = list((target.attributes or {}).get("merged_from", []))
    attributes["merged_from"] = [*merged_from, source.id]
    if attributes != (target.attributes or {}):
        changes["attributes"] = attributes
    return changes


@register
class MergeContacts(CrmAction):
    type = "merge_contacts"
    Params = MergeContactsParams
    stakes = Stakes.HIGH
    default_threshold = 1.0
    always_ask = True
    asks_because = "two contacts become one: a person confirms they are the same"
    reversible = True
    undo_note = "can be reverted: the merged contact comes back with its id, fields and records"

    def summary(self, params: MergeContactsParams) -> str:
        return f"Merge contact {params.source_contact_id} into contact {params.target_contact_id}"

    def touched_fields(self, session: Session, params: MergeContactsParams) -> list[FieldRef]:
        source = session.get(Contact, params.source_contact_id)
        target = session.get(Contact, params.target_contact_id)
        if source is None or target is None:
            return []
        return [FieldRef("contact", target.id, f) for f in merged_values(target, source)]

    def problems(self, session: Session, decision: Decision, params: MergeContactsParams) -> list[str]:
        return [f"contact {cid} not found" for cid in (params.source_contact_id, params.target_contact_id)
                if session.get(Contact, cid) is None]

    def execute(self, ctx: ActionContext, params: MergeContactsParams) -> ExecResult:
        session = ctx.session
        source = require(session, Contact, params.source_contact_id, "contact")
        target = require(session, Contact, params.target_contact_id, "contact")
        before = {"source": snapshot(source, ALL_COLUMNS), "target": snapshot(target, ALL_COLUMNS), "repointed": {}}
        changes = merged_values(target, source)
        for name, model, column in POINTERS:
            col = getattr(model, column)
            ids = list(session.scalars(select(model.id).where(col == source.id).order_by(model.id)))
            if ids:
                session.execute(update(model).where(col == source.id).values({column: target.id})
                                .execution_options(synchronize_session="fetch"))
            before["repointed"][name] = ids
        session.delete(source)
        session.flush()  # frees the source's unique email and external id before the target takes them
        for column, value in changes.items():
            setattr(target, column, value)
        session.flush()
        moved = {name: len(ids) for name, ids in before["repointed"].items() if ids}
        return ExecResult(before_image=before, result={
            "target_contact_id": target.id, "source_contact_id": params.source_contact_id,
            "filled": sorted(changes), "repointed": moved,
            "target_after": snapshot(target, [*changes, "updated_at"]),
        })

    def revert(self, ctx: ActionContext, params: MergeContactsParams, done: ExecResult) -> str:
        session = ctx.session
        image = done.before_image
        source_image: dict[str, Any] = image["source"]
        source_id = source_image["id"]
        if session.get(Contact, source_id) is not None:
            raise UserError(f"contact {source_id} exists again; the merge into contact {params.target_contact_id} "
                            "was already undone")
        target = require(session, Contact, params.target_contact_id, "contact")
        after: dict[str, Any] = dict(done.result.get("target_after", {}))
        after_updated_at = after.pop("updated_at", None)
        check_unchanged(target, after, what=f"contact {target.id}")
        # Only the keys the source really had can clash: `column == None` would compile to IS NULL
        # and match every contact that lacks one.
        keys = [column == source_image[name] for name, column in
                (("email_normalized", Contact.email_normalized), ("external_id", Contact.external_id))
                if source_image[name] is not None]
        clash = session.scalars(select(Contact.id).where(Contact.id != target.id, or_(*keys))).first() if keys else None
        if clash is not None:
            raise UserError(f"contact {clash} now has the email or external id of contact {source_id}; "
                            "merge or change it before reverting")
        target_before = {k: image["target"][k] for k in after}
        if after_updated_at is not None and snapshot(target, ["updated_at"])["updated_at"] == after_updated_at:
            target_before["updated_at"] = image["target"]["updated_at"]
        restore(target, target_before)
        if "updated_at" in target_before:
            flag_modified(target, "updated_at")  # keep the restored value; do not let onupdate stamp now
        session.flush()
        source = Contact()
        restore(source, source_image)
        session.add(source)
        session.flush()
        pointed_back = 0
        for name, model, column in POINTERS:
            ids = image["repointed"].get(name) or []
            if not ids:
                continue
            col = getattr(model, column)
            result = session.execute(update(model).where(model.id.in_(ids), col == target.id)
                                     .values({column: source_id}).execution_options(synchronize_session="fetch"))
            pointed_back += result.rowcount or 0
        moved = sum(len(ids) for ids in image["repointed"].values())
        gone = f" ({moved - pointed_back} no longer there)" if pointed_back != moved else ""
        return (f"contact {source_id} restored beside contact {target.id}; "
                f"{pointed_back} record(s) pointed back{gone}")
