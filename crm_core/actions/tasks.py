"""create_task and create_action_items: new rows in `tasks`, removed again on revert."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, require, restore_row, snapshot
from crm_core.errors import UserError
from crm_core.models import Contact, Deal, Decision, Meeting, Task, User
from crm_core.models.enums import Stakes


def _owner_for(session: Session, contact_id: int | None, deal_id: int | None) -> int | None:
    for model, record_id in ((Deal, deal_id), (Contact, contact_id)):
        row = session.get(model, record_id) if record_id is not None else None
        if row is not None and row.owner_id is not None:
            return row.owner_id
    return None


def _missing(session: Session, refs: list[tuple[type, int | None, str]]) -> list[str]:
    return [f"{what} {rid} not found" for model, rid, what in refs if rid is not None and session.get(model, rid) is None]


def _delete_tasks(session: Session, task_ids: list[int], snapshots: dict[str, dict]) -> list[int]:
    """Delete the tasks the action created; refuse if a human has since worked on one."""
    rows = [session.get(Task, tid) for tid in task_ids]
    for row in rows:
        if row is None:
            continue
        created = snapshots.get(str(row.id))
        if created is not None and snapshot(row, list(created)) != created:
            raise UserError(f"task {row.id} was changed after it was created (now {row.status}); revert the change first")
    for row in rows:
        if row is not None:
            session.delete(row)
    session.flush()
    return [r.id for r in rows if r is not None]


_TASK_FIELDS = ["title", "description", "status", "due_at", "owner_id", "contact_id", "deal_id", "meeting_id"]


class CreateTaskParams(ActionParams):
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10000)
    contact_id: int | None = None
    deal_id: int | None = None
    meeting_id: int | None = None
    owner_id: int | None = None
    due_at: datetime | None = None
    kind: Literal["task", "follow_up"] = "task"


@register
class CreateTask(CrmAction):
    type = "create_task"
    Params = CreateTaskParams
    stakes = Stakes.LOW
    default_threshold = 0.7
    editable_fields = (("title", False), ("description", True))
    reversible = True
    undo_note = "deletes the task (refused if someone has worked on it since)"

    def summary(self, params: CreateTaskParams) -> str:
        on = ", ".join(f"{k.removesuffix('_id')} {v}" for k, v in (("contact_id", params.contact_id), ("deal_id", params.deal_id),
                                                                    ("meeting_id", params.meeting_id)) if v is not None)
        due = f", due {params.due_at:%Y-%m-%d %H:%M}" if params.due_at else ""
        return f"Create {params.kind.replace('_', '-')} task \u201c{params.title}\u201d" + (f" for {on}" if on else "") + due

    def problems(self, session: Session, decision: Decision, params: CreateTaskParams) -> list[str]:
        return _missing(session, [(Contact, params.contact_id, "contact"), (Deal, params.deal_id, "deal"),
                                  (Meeting, params.meeting_id, "meeting"), (User, params.owner_id, "user")])

    def execute(self, ctx: ActionContext, params: CreateTaskParams) -> ExecResult:
        problems = self.problems(ctx.session, ctx.decision, params)
        if problems:
            raise UserError(problems[0])
        task = Task(
            title=params.title, description=params.description, contact_id=params.contact_id, deal_id=params.deal_id,
            meeting_id=params.meeting_id, owner_id=params.owner_id or _owner_for(ctx.session, params.contact_id, params.deal_id),
            due_at=clock.to_naive_utc(params.due_at) if params.due_at else None, status="open", kind=params.kind,
            created_by=ctx.actor,
        )
        ctx.session.add(task)
        ctx.session.flush()
        return ExecResult(before_image={"created": {"tasks": [task.id]}},
                          result={"task_id": task.id, "snapshots": {str(task.id): snapshot(task, _TASK_FIELDS)}})

    def revert(self, ctx: ActionContext, params: CreateTaskParams, done: ExecResult) -> str:
        deleted = _delete_tasks(ctx.session, done.before_image["created"]["tasks"], done.result.get("snapshots", {}))
        return f"task {', '.join(map(str, deleted)) or '(already gone)'} deleted"


class ActionItem(ActionParams):
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10000)
    owner_id: int | None = None
    due_at: datetime | None = None


class CreateActionItemsParams(ActionParams):
    meeting_id: int
    items: list[ActionItem] = Field(min_length=1, max_length=50)


@register
class CreateActionItems(CrmAction):
    type = "create_action_items"
    Params = CreateActionItemsParams
    stakes = Stakes.MEDIUM
    default_threshold = 0.8
    reversible = True
    undo_note = "deletes the action items (refused if someone has worked on one since)"

    def summary(self, params: CreateActionItemsParams) -> str:
        titles = "; ".join(i.title for i in params.items[:3]) + ("; \u2026" if len(params.items) > 3 else "")
        return f"Create {len(params.items)} action item{'s' if len(params.items) != 1 else ''} from meeting {params.meeting_id}: {titles}"

    def problems(self, session: Session, decision: Decision, params: CreateActionItemsParams) -> list[str]:
        return _missing(session, [(Meeting, params.meeting_id, "meeting")] + [(User, i.owner_id, "user") for i in params.items])

    def execute(self, ctx: ActionContext, params: CreateActionItemsParams) -> ExecResult:
        session = ctx.session
        problems = self.problems(session, ctx.decision, params)
        if problems:
            raise UserError(problems[0])
        meeting = require(session, Meeting, params.meeting_id, "meeting")
        meeting_before = snapshot(meeting, ["action_items_extracted_at", "updated_at"])
        default_owner = meeting.owner_id or _owner_for(session, meeting.contact_id, meeting.deal_id)
        tasks = [
            Task(title=i.title, description=i.description, contact_id=meeting.contact_id, deal_id=meeting.deal_id,
                 meeting_id=meeting.id, owner_id=i.owner_id or default_owner,
                 due_at=clock.to_naive_utc(i.due_at) if i.due_at else None, status="open", kind="action_item",
                 created_by=ctx.actor)
            for i in params.items
        ]
        session.add_all(tasks)
        meeting.action_items_extracted_at = clock.now()
        session.flush()
        return ExecResult(
            before_image={"created": {"tasks": [t.id for t in tasks]}, "meeting": meeting_before},
            result={"task_ids": [t.id for t in tasks], "snapshots": {str(t.id): snapshot(t, _TASK_FIELDS) for t in tasks},
                    "meeting_updated_at": snapshot(meeting, ["updated_at"])["updated_at"]},
        )

    def revert(self, ctx: ActionContext, params: CreateActionItemsParams, done: ExecResult) -> str:
        deleted = _delete_tasks(ctx.session, done.before_image["created"]["tasks"], done.result.get("snapshots", {}))
        meeting = ctx.session.get(Meeting, params.meeting_id)
        if meeting is not None:
            restore_row(meeting, done.before_image["meeting"], done.result.get("meeting_updated_at"))
            ctx.session.flush()
        return f"{len(deleted)} action item{'s' if len(deleted) != 1 else ''} deleted from meeting {params.meeting_id}"
