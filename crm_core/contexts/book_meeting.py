"""The meeting agent's book block: when the team's meetings happen and how long they run, the rules
the CRM holds invites and action items to, the policy, and people's verdicts on past proposals.

Meeting habits are counted over the held meetings of the MEETING_DAYS before the start of the day
(counts only: no title, attendee or record id), so the block stays the same all day. See
crm_core.contexts.book for what a block may hold.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.base import BookBlock, BookSection
from agents.meeting.action_items import ITEM_DEFAULT_BUSINESS_DAYS, ITEM_MAX_DAYS
from agents.meeting.invite import INVITE_HORIZON_DAYS, INVITE_NOTICE_HOURS, MEETING_BUFFER_MINUTES
from crm_core.contexts.book import (
    AGENT_ACTIONS,
    BOOK_VERSION,
    day_start,
    policy_rows,
    policy_section,
    verdict_section,
    when_words,
    word_count,
)
from crm_core.models import Meeting

AGENT = "meeting"
MEETING_DAYS = 180
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

INTRO = (
    "About this team's meetings. Everything below was computed by the CRM from the team's own records and "
    "rules. It is the same for every meeting: use it for the one job in the user message. It holds no names, "
    "contact details or record ids."
)


def meeting_block(session: Session, *, as_of: datetime) -> BookBlock:
    before = day_start(as_of)
    sections = (
        _habits_section(session, before),
        BookSection(title="The rules the CRM holds every proposal to", lines=(
            f"- An invite starts at least {INVITE_NOTICE_HOURS} hours after the run and within {INVITE_HORIZON_DAYS} "
            f"days, inside the owner's working hours, {MEETING_BUFFER_MINUTES} minutes clear of the owner's other "
            "meetings; a start outside that is moved to the nearest free slot.",
            "- The invite goes only to the contact on record; the agenda is sent to them as written.",
            f"- An action item without a date said in the meeting is due {ITEM_DEFAULT_BUSINESS_DAYS} business days "
            f"after it; no due date more than {ITEM_MAX_DAYS} days out is kept.",
            "- Every action item is checked before it is proposed: its owner was in the meeting, its quote is "
            "something a person said, it names no address or link the CRM does not know, and it is not already on "
            "the meeting.",
            "- A meeting that has a brief (saved or waiting for review) never gets a second one.",
        )),
        policy_section(policy_rows(session, AGENT_ACTIONS[AGENT])),
        verdict_section(session, AGENT, before=before, describe=_describe_verdict),
    )
    return BookBlock.make(agent=AGENT, version=f"{AGENT}/{BOOK_VERSION}", intro=INTRO, sections=sections)


def _habits_section(session: Session, before: datetime) -> BookSection:
    rows = session.execute(select(Meeting.starts_at, Meeting.ends_at, Meeting.status).where(
        Meeting.starts_at < before, Meeting.starts_at >= before - timedelta(days=MEETING_DAYS))).all()
    held = [(s, e) for s, e, status in rows if status != "cancelled"]
    title = f"The team's meetings in the {MEETING_DAYS} days before {before:%Y-%m-%d}"
    if not held:
        return BookSection(title=title, lines=("No meeting was held in that time.",))
    cancelled = sum(1 for *_, status in rows if status == "cancelled")
    minutes = Counter(_length_band((e - s).total_seconds() / 60) for s, e in held)
    weekdays = Counter(s.weekday() for s, _ in held)
    hours = Counter(s.hour for s, _ in held)
    return BookSection(title=title, lines=(
        f"{len(held)} held, {cancelled} cancelled.",
        "Length: " + ", ".join(f"{band} {minutes[band]}" for _, band in _BANDS if minutes[band]),
        "Weekday (UTC): " + ", ".join(f"{_WEEKDAYS[d]} {weekdays[d]}" for d in range(7) if weekdays[d]),
        "Start hour (UTC): " + ", ".join(f"{h:02d}:00 {hours[h]}" for h in sorted(hours)),
    ))


_BANDS = ((20, "under 20 min"), (35, "30 min"), (50, "45 min"), (70, "60 min"), (float("inf"), "over an hour"))


def _length_band(minutes: float) -> str:
    return next(band for limit, band in _BANDS if minutes < limit)


def _describe_verdict(decision: dict[str, Any]) -> str:
    parts = [f"{decision.get('kind', 'proposal')}"]
    if when := when_words(decision.get("starts_at")):
        parts.append(f"starting {when}")
    if decision.get("duration_minutes"):
        parts.append(f"{decision['duration_minutes']} minutes")
    if decision.get("action_items"):
        parts.append(f"{len(decision['action_items'])} action items")
    if decision.get("brief"):
        parts.append(f"brief of {word_count(decision['brief'])} words")
    return ", ".join(parts)


__all__ = ["meeting_block"]
