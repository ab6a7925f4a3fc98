"""iCalendar (RFC 5545) text for meeting invites and cancellations, written by hand.

Lines end in CRLF, text values are escaped (backslash, semicolon, comma, newline) and lines
longer than 75 octets are folded with CRLF + space, as section 3.1 requires.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

PRODID = "-//Agentic CRM//Meeting scheduler//EN"


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into chunks of at most 75 octets without cutting a UTF-8 character."""
    out: list[str] = []
    current = ""
    limit = 75
    for ch in line:
        if len((current + ch).encode()) > limit:
            out.append(current)
            current = " " + ch
            limit = 75
        else:
            current += ch
    out.append(current)
    return "\r\n".join(out)


def utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")  # naive datetimes in the store are UTC


def calendar(
    *,
    method: str,            # REQUEST (invite) or CANCEL
    uid: str,
    sequence: int,
    stamp: datetime,
    starts_at: datetime,
    ends_at: datetime,
    summary: str,
    description: str | None,
    organizer: str,
    attendees: Sequence[str],
    location: str | None = None,
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid)}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{utc_stamp(stamp)}",
        f"DTSTART:{utc_stamp(starts_at)}",
        f"DTEND:{utc_stamp(ends_at)}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description or '')}",
        f"ORGANIZER:mailto:{organizer}",
    ]
    if location:
        lines.append(f"LOCATION:{escape_text(location)}")
    for address in attendees:
        lines.append(f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{address}")
    lines.append("STATUS:CANCELLED" if method == "CANCEL" else "STATUS:CONFIRMED")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


def unfold(text: str) -> dict[str, list[str]]:
    """Property name -> values (parameters dropped): enough to read an invite back in tests and tools."""
    props: dict[str, list[str]] = {}
    for line in text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n"):
        if not line or ":" not in line:
            continue
        name, value = line.split(":", 1)
        props.setdefault(name.split(";", 1)[0], []).append(value)
    return props
