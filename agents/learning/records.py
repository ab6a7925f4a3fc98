"""What the store knows about a contact, as plain values (built by crm_core, read by the learners).

Fields and attributes hold only what a person or an import entered: the builder leaves out the
values an agent wrote (`crm_core.contexts.provenance`), for learning and scoring alike.

Records hold every event ever logged; feature functions take a moment `at` and look only at
what happened up to it, so one record serves every snapshot a back-test needs.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Normalised event kinds. The builder maps the store's activity types, emails and meetings onto these.
PAGE_VIEW = "page_view"
PRICING_VIEW = "pricing_view"          # a page view of a pricing or plans page (also counted as a page view)
CONTENT_DOWNLOAD = "content_download"
EMAIL_SENT = "email_sent"              # outbound, by a rep: effort, not interest
EMAIL_OPENED = "email_opened"
EMAIL_CLICKED = "email_clicked"
EMAIL_REPLIED = "email_replied"        # a reply or any inbound email
CALL = "call"
MEETING = "meeting"                    # a meeting that took place
MEETING_BOOKED = "meeting_booked"      # a meeting scheduled for later (counted when it was booked)
FORM_SUBMIT = "form_submit"
DEMO_REQUEST = "demo_request"          # a form submission asking for a demo or a trial
LINKEDIN_MESSAGE = "linkedin_message"
NOTE = "note"
STAGE_CHANGE = "stage_change"

# What the contact did themselves: the recency of these is "time since last activity".
CONTACT_ACTIONS = frozenset({
    PAGE_VIEW, PRICING_VIEW, CONTENT_DOWNLOAD, EMAIL_OPENED, EMAIL_CLICKED, EMAIL_REPLIED,
    MEETING, MEETING_BOOKED, FORM_SUBMIT, DEMO_REQUEST, CALL, LINKEDIN_MESSAGE,
})


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str
    detail: str | None = None  # the page, the asset, the form, the stage reached


@dataclass(slots=True)
class ContactRecord:
    contact_id: int
    entry_at: datetime                    # when the contact entered the book (created, or first seen)
    fields: dict[str, Any] = field(default_factory=dict)      # store fields, typed (see features.STATIC_FIELDS)
    attributes: dict[str, Any] = field(default_factory=dict)  # custom attributes: "attr.x" (contact), "account.x"
    events: list[Event] = field(default_factory=list)         # sorted by time
    _times: list[datetime] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.events.sort(key=lambda e: e.at)
        self._times = [e.at for e in self.events]

    def events_until(self, at: datetime) -> list[Event]:
        """Every event at or before `at`, oldest first: nothing after the cut-off is visible."""
        return self.events[: bisect_right(self._times, at)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A contact whose fate is known: converted (won) or not (lost), and since when it was known."""

    contact_id: int
    won: bool
    at: datetime          # when the outcome became known
    entry_at: datetime
    segments: tuple[tuple[str, str | None], ...] = ()  # e.g. (("source", "webinar"), ("industry", "software"))
