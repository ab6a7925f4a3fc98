"""The meeting agent's values: what its three jobs read (refs, facts, one `Context`), what a
reasoner returns (`Decision`), and the few readings of the context every job shares.

`crm_core.contexts.meeting` builds the contexts; the jobs (`invite`, `brief`, `action_items`) decide,
render and propose from them; `agents.meeting.MeetingAgent` dispatches on `Context.kind`.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.base import BookBlock, Frozen
from agents.common.context_records import ContentItem, DealRef, EmailItem, MeetingItem
from agents.common.text_reading import printable
from agents.common.working_hours import DEFAULT_REP, Interval, RepHours, TimeHistogram

Kind = Literal["invite", "brief", "action_items"]


# == context ========================================================================================
class PersonRef(Frozen):
    contact_id: int | None = None
    name: str | None = None        # imported text
    first_name: str | None = None
    title: str | None = None
    company: str | None = None
    email: str | None = None       # on record; never an address read from text


class AccountRef(Frozen):
    account_id: int | None = None
    name: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    country: str | None = None


class MeetingRef(Frozen):
    meeting_id: int
    title: str | None = None       # untrusted
    starts_at: datetime
    ends_at: datetime
    status: str = "scheduled"
    agenda: str | None = None      # untrusted
    attendees: list[str] = Field(default_factory=list)  # addresses on record


class ActivityRef(Frozen):
    kind: str
    at: datetime
    detail: str | None = None      # untrusted (page address, asset, subject)


class TaskRef(Frozen):
    title: str                      # untrusted
    due_at: datetime | None = None
    owner: str | None = None


class InviteFacts(Frozen):
    score: int | None = None
    tier: str | None = None
    next_action: str | None = None
    buying_stage: str | None = None            # the deal's stage, else the lifecycle stage
    deal: DealRef | None = None
    demo_requested_at: datetime | None = None
    pricing_views_7d: int = 0
    recent_content: list[ContentItem] = Field(default_factory=list)   # newest first
    last_inbound: EmailItem | None = None
    preferred: TimeHistogram = TimeHistogram()         # past meetings' start times (UTC)
    email_engagement: TimeHistogram = TimeHistogram()  # opens and replies, the fallback
    past_meetings: list[MeetingItem] = Field(default_factory=list)
    busy: list[Interval] = Field(default_factory=list)  # the owner's meetings in the horizon


class Participant(Frozen):
    """Someone on the meeting, resolved from its attendee addresses against users and contacts."""

    name: str                       # imported text
    side: Literal["rep", "contact", "attendee"]   # rep: one of us; contact: the meeting's contact; attendee: their side
    user_id: int | None = None
    contact_id: int | None = None
    email: str | None = None
    title: str | None = None        # imported text


class BriefFacts(Frozen):
    meeting: MeetingRef
    participants: list[Participant] = Field(default_factory=list)
    has_brief: bool = False         # a brief is saved or waiting for review: a second one is never proposed
    account: AccountRef | None = None
    deal: DealRef | None = None
    score: int | None = None
    tier: str | None = None
    lifecycle_stage: str | None = None
    emails: list[EmailItem] = Field(default_factory=list)        # oldest first
    activity: list[ActivityRef] = Field(default_factory=list)    # newest first
    previous_meetings: list[MeetingItem] = Field(default_factory=list)
    open_tasks: list[TaskRef] = Field(default_factory=list)
    notes: str | None = None


class ActionItemFacts(Frozen):
    meeting: MeetingRef
    participants: list[Participant] = Field(default_factory=list)
    transcript: str                 # untrusted
    extracted_at: datetime | None = None                        # when action items were last created from it
    existing_items: list[TaskRef] = Field(default_factory=list)  # action items on the meeting or waiting for review


class Context(Frozen):
    """One of three kinds. The subject id at the top is the contact for an invite and the meeting
    otherwise. `as_of` is set for invites only: a brief or the action items of a meeting do not
    depend on the minute they are written, so an unchanged meeting gives an unchanged context."""

    kind: Kind
    as_of: datetime | None = None
    contact_id: int | None = None
    meeting_id: int | None = None
    contact: PersonRef = PersonRef()
    owner: RepHours | None = None
    sensitive: bool = False
    invite: InviteFacts | None = None
    brief: BriefFacts | None = None
    action_items: ActionItemFacts | None = None
    # What every meeting job on this book shares (the team's meeting habits, the rules, the policy,
    # people's verdicts): sent in the cached system block, not in the user message.
    book: BookBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Context:
        section = {"invite": self.invite, "brief": self.brief, "action_items": self.action_items}
        if section[self.kind] is None:
            raise ValueError(f"a {self.kind} context needs its {self.kind!r} section")
        if self.kind == "invite" and (self.contact_id is None or self.as_of is None):
            raise ValueError("an invite context needs contact_id and as_of")
        if self.kind != "invite" and self.meeting_id is None:
            raise ValueError(f"a {self.kind} context needs meeting_id")
        return self


# == decision =======================================================================================
class ActionItemOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=300, description="what is to be done, as a task title")
    owner_name: str = Field(min_length=1, max_length=120, description="the participant who committed to it, as named in the context")
    due_at: datetime | None = Field(default=None, description="UTC; from the date they said, else null")
    quote: str | None = Field(default=None, max_length=500, description="the transcript sentence it comes from")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="the same kind as the context")
    starts_at: datetime | None = Field(default=None, description="invite: start, UTC, in a free slot of the owner")
    duration_minutes: int | None = Field(default=None, ge=15, le=120, description="invite: length in minutes")
    title: str | None = Field(default=None, max_length=200, description="invite: meeting title, one line")
    agenda: str | None = Field(default=None, max_length=3000, description="invite: agenda built on what the contact did")
    brief: str | None = Field(default=None, max_length=8000, description="brief: the rep's brief")
    action_items: list[ActionItemOut] = Field(default_factory=list, max_length=30, description="action_items: the commitments")
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(max_length=2000)



# == what every job reads of the context ============================================================
def company_of(ctx: Context) -> str:
    return printable(ctx.contact.company, 80)


def contact_label(ctx: Context) -> str:
    return printable(ctx.contact.name, 80, f"contact {ctx.contact.contact_id or ''}".strip())


def rep_of(ctx: Context) -> RepHours:
    return ctx.owner or DEFAULT_REP


def stage_words(stage: str | None) -> str:
    return (stage or "").lower()


def meeting_label(meeting: MeetingRef) -> str:
    """How a meeting is named to a person: its title and when it starts."""
    return f"{printable(meeting.title, 60, 'meeting')} ({meeting.starts_at:%d %b %H:%M})"


def naive_utc(value: datetime) -> datetime:
    """A reasoner's time as the naive UTC the store keeps (a model may answer with an offset)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
