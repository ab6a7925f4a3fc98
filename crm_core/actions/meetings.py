"""schedule_meeting (a meetings row + an invite email with an .ics) and save_meeting_brief."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions import ics
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, FieldUpdateAction, deal_of, delete_if_present, recipient_problems, resolve_recipient
from crm_core.actions.mail import deliver, undeliver
from crm_core.errors import UserError
from crm_core.models import Contact, Deal, Decision, Meeting, User
from crm_core.models.enums import Stakes
from crm_core.settings import Settings

_NO_NEWLINES = r"^[^\r\n]*$"


class ScheduleMeetingParams(ActionParams):
    contact_id: int           # the invitee: their stored address, never one from text
    title: str = Field(min_length=1, max_length=300, pattern=_NO_NEWLINES)
    starts_at: datetime
    duration_minutes: int = Field(default=30, ge=5, le=480)
    agenda: str | None = Field(default=None, max_length=10000)
    location: str | None = Field(default=None, max_length=300, pattern=_NO_NEWLINES)

    @field_validator("starts_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return clock.to_naive_utc(value)


def _organizer(session: Session, settings: Settings, contact: Contact, deal_owner_id: int | None) -> tuple[int | None, str]:
    owner_id = deal_owner_id or contact.owner_id
    owner = session.get(User, owner_id) if owner_id else None
    return owner_id, (owner.email if owner and owner.email else settings.mail_from)


@register
class ScheduleMeeting(CrmAction):
    type = "schedule_meeting"
    Params = ScheduleMeetingParams
    stakes = Stakes.MEDIUM  # an invite reaches a customer
    default_threshold = 0.85
    reversible = True
    undo_note = "cancels the meeting; if the invite already went out, a cancellation (METHOD:CANCEL) is sent too"

    def summary(self, params: ScheduleMeetingParams) -> str:
        return (f"Invite contact {params.contact_id} to \u201c{params.title}\u201d on "
                f"{params.starts_at:%Y-%m-%d %H:%M} UTC ({params.duration_minutes} min), calendar invite attached")

    def problems(self, session: Session, decision: Decision, params: ScheduleMeetingParams) -> list[str]:
        problems = recipient_problems(session, decision, params.contact_id)
        if params.starts_at <= clock.now():
            problems.append(f"the meeting start {params.starts_at:%Y-%m-%d %H:%M} UTC is in the past")
        return problems

    def execute(self, ctx: ActionContext, params: ScheduleMeetingParams) -> ExecResult:
        session = ctx.session
        contact = resolve_recipient(ctx, params.contact_id)
        if params.starts_at <= clock.now():
            raise UserError(f"the meeting start {params.starts_at:%Y-%m-%d %H:%M} UTC is in the past")
        deal_id = deal_of(session, ctx.decision)
        deal = session.get(Deal, deal_id) if deal_id else None
        owner_id, organizer = _organizer(session, ctx.settings, contact, deal.owner_id if deal else None)
        attendees = [contact.email] + ([organizer] if organizer != ctx.settings.mail_from else [])
        meeting = Meeting(
            uid=f"{uuid.uuid4()}@crm", title=params.title, contact_id=contact.id, deal_id=deal_id, owner_id=owner_id,
            starts_at=params.starts_at, ends_at=params.starts_at + timedelta(minutes=params.duration_minutes),
            attendees=attendees, agenda=params.agenda, status="scheduled", created_by=ctx.actor,
        )
        session.add(meeting)
        session.flush()
        invite = ics.calendar(
            method="REQUEST", uid=meeting.uid, sequence=0, stamp=clock.now(), starts_at=meeting.starts_at,
            ends_at=meeting.ends_at, summary=meeting.title, description=params.agenda, organizer=organizer,
            attendees=attendees, location=params.location,
        )
        body = (f"You are invited to \u201c{params.title}\u201d on {params.starts_at:%A %d %B %Y, %H:%M} UTC "
                f"({params.duration_minutes} minutes).\n\n{params.agenda or ''}".rstrip() + "\n")
        delivery = deliver(
            ctx, contact, subject=f"Invitation: {params.title}", body=body, deal_id=deal_id,
            attachments=[{"filename": "invite.ics", "content_type": "text/calendar; method=REQUEST", "content": invite}],
        )
        return ExecResult(
            before_image={"created": {"meetings": [meeting.id], "emails": [delivery.email_id], "activities": [delivery.activity_id]}},
            result={"meeting_id": meeting.id, "uid": meeting.uid, "organizer": organizer, "attendees": attendees,
                    "invite": delivery.as_dict(), "location": params.location},
        )

    def revert(self, ctx: ActionContext, params: ScheduleMeetingParams, done: ExecResult) -> str:
        session = ctx.session
        meeting = session.get(Meeting, done.result["meeting_id"])
        withdrawn, note = undeliver(ctx, done.result["invite"])
        if withdrawn:
            # The invite never left: the CRM goes back to exactly how it was.
            delete_if_present(session, Meeting, done.result["meeting_id"])
            session.flush()
            return f"meeting {done.result['meeting_id']} deleted; invite {note.split('; ')[-1]}"
        if meeting is None:
            return f"meeting {done.result['meeting_id']} was already deleted; {note}"
        # The invite went out: cancel the event in the attendees' calendars too.
        meeting.status = "cancelled"
        contact = session.get(Contact, meeting.contact_id) if meeting.contact_id else None
        cancel = ics.calendar(
            method="CANCEL", uid=meeting.uid, sequence=1, stamp=clock.now(), starts_at=meeting.starts_at,
            ends_at=meeting.ends_at, summary=meeting.title, description=meeting.agenda,
            organizer=done.result["organizer"], attendees=done.result["attendees"], location=done.result.get("location"),
        )
        sent_note = "no contact address left to send a cancellation to"
        if contact is not None and contact.email:
            delivery = deliver(
                ctx, contact, subject=f"Cancelled: {meeting.title}", deal_id=meeting.deal_id,
                body=f"\u201c{meeting.title}\u201d on {meeting.starts_at:%A %d %B %Y, %H:%M} UTC is cancelled.\n",
                attachments=[{"filename": "cancel.ics", "content_type": "text/calendar; method=CANCEL", "content": cancel}],
            )
            sent_note = f"cancellation {'queued to send' if delivery.status == 'pending' else 'held in the outbox'} (outbox {delivery.outbox_id})"
        session.flush()
        return f"meeting {meeting.id} cancelled; the invite had already been sent, so {sent_note}"


class SaveMeetingBriefParams(ActionParams):
    meeting_id: int
    brief: str = Field(min_length=1, max_length=20000)


@register
class SaveMeetingBrief(FieldUpdateAction):
    type = "save_meeting_brief"
    Params = SaveMeetingBriefParams
    stakes = Stakes.LOW
    default_threshold = 0.6
    editable_fields = (("brief", True),)
    reversible = True
    undo_note = "restores the previous brief (or none)"
    entity = "meeting"
    model = Meeting
    id_param = "meeting_id"
    written = ("brief", "brief_ready_at")
    aspect = "brief"

    def summary(self, params: SaveMeetingBriefParams) -> str:
        first = params.brief.strip().splitlines()[0] if params.brief.strip() else ""
        return f"Save a {len(params.brief)}-character brief on meeting {params.meeting_id}: {first[:120]}"

    def apply(self, ctx: ActionContext, meeting: Meeting, params: SaveMeetingBriefParams) -> ExecResult:
        meeting.brief = params.brief
        meeting.brief_ready_at = clock.now()
        return ExecResult()

    def reverted(self, meeting: Meeting, before: dict[str, Any], params: SaveMeetingBriefParams) -> str:
        return f"meeting {meeting.id}: previous brief restored"
