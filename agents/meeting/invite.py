"""The invite job: a hot or engaged contact with no meeting coming up gets one proposed meeting.

The context carries the lead score, the buying stage, what they did lately, when their past meetings
took place (an hour/weekday histogram), and the owner's working hours and busy time (meetings, and
invites still waiting in the queue). Decision: a start in a free slot of the owner's working hours, a
title and an agenda built on what they did -> `schedule_meeting`, which books the meeting and emails
the contact (and only them) a calendar invite (.ics). A model's start is checked again and moved if
it is outside working hours, too soon or on busy time.
"""
from __future__ import annotations

import re
from datetime import timedelta

from agents.base import Proposal, ProposedAction
from agents.common.context_records import ContentItem
from agents.common.email_topics import detect_topics
from agents.common.phrasing import day_phrase, join_words
from agents.common.rendering import as_json
from agents.common.text_reading import MACHINE_AIMED, one_line, outside_references, printable
from agents.common.working_hours import (
    MIN_PATTERN_SAMPLES,
    Slot,
    best_slot,
    candidate_slots,
    describe_histogram,
    in_working_hours,
    overlaps,
)
from agents.llm.fence import fence
from agents.meeting.models import Context, Decision, company_of, contact_label, naive_utc, rep_of, stage_words

INVITE_NOTICE_HOURS = 18      # an invite never lands sooner than this after the run
INVITE_HORIZON_DAYS = 10
MEETING_BUFFER_MINUTES = 15   # between the rep's meetings
DEFAULT_MEETING_HOUR = 11.0   # local, when there is no history
DAILY_DECAY = 0.9             # how much a slot's appeal fades per day of waiting
URGENT_DAILY_DECAY = 0.7      # ... for a contact who asked for a demo or is hot


# == deciding =======================================================================================
def _page_label(item: ContentItem) -> str:
    return printable(item.title, 60) or printable(item.url, 80)


def invite_duration(ctx: Context) -> int:
    facts = ctx.invite
    stage = stage_words(facts.buying_stage)
    if facts.next_action == "schedule_demo" or "demo" in stage or facts.demo_requested_at is not None:
        return 45
    return 30


def invite_title(ctx: Context) -> str:
    facts = ctx.invite
    stage = stage_words(facts.buying_stage)
    company = company_of(ctx) or contact_label(ctx)
    if "negotiat" in stage or "contract" in stage:
        return f"Contract next steps with {company}"
    if "proposal" in stage:
        return f"Proposal review with {company}"
    if invite_duration(ctx) == 45:
        return f"Demo for {company}"
    return f"Discovery call with {company}"


_PRICING_PAGE = re.compile(r"pric|/plans?\b", re.IGNORECASE)
# Pages that are a way to reach us, not a subject: never an agenda point.
_CONTACT_PAGE = re.compile(r"demo|contact|talk[-_ ]?to|book|sign ?up|trial|^/?$|^/?(home|about|careers|jobs|login)\b",
                           re.IGNORECASE)


def _read_pricing(ctx: Context) -> bool:
    facts = ctx.invite
    return bool(facts.pricing_views_7d) or any(
        i.kind == "page_view" and _PRICING_PAGE.search(f"{i.title or ''} {i.url or ''}") for i in facts.recent_content)


def _interests(ctx: Context) -> list[str]:
    """What the contact showed interest in, in words, most telling first (pricing has its own agenda point)."""
    facts = ctx.invite
    out: list[str] = []
    if facts.last_inbound is not None:
        for hit in detect_topics(facts.last_inbound.body)[:2]:
            if hit.topic.kind != "request":
                noun = "question" if hit.topic.kind == "question" else "point"
                out.append(f"your {noun} on {hit.topic.label} ({day_phrase(facts.last_inbound.sent_at, ctx.as_of)})")
    seen: set[str] = set()
    for item in facts.recent_content:
        if item.kind not in ("page_view", "content_download"):
            continue
        label = _page_label(item) if item.kind == "page_view" else printable(item.title, 80)
        raw = f"{item.title or ''} {item.url or ''}".strip()
        if not label or label.lower() in seen:
            continue
        if item.kind == "page_view" and (_PRICING_PAGE.search(raw) or _CONTACT_PAGE.search(label) or _CONTACT_PAGE.search(item.url or "")):
            continue
        seen.add(label.lower())
        if item.kind == "page_view":
            out.append(f"the {label}" + ("" if label.lower().endswith("page") else " page"))
        else:
            out.append(f"the {label} you downloaded")
        if len(out) >= 4:
            break
    return out


def invite_agenda(ctx: Context) -> str:
    facts = ctx.invite
    interests = _interests(ctx)
    asked = [i for i in interests if i.startswith("your ")]
    read = [i for i in interests if not i.startswith("your ")]
    lines = []
    stage = stage_words(facts.buying_stage)
    if "proposal" in stage or "negotiat" in stage or "contract" in stage:
        lines.append("Walk through the open points in the proposal and terms")
    elif invite_duration(ctx) == 45:
        lines.append("Your goals and how you work today (10 minutes)")
        lines.append("Live demo focused on what you looked at: " + (join_words(read[:3]) if read else "your reporting workflow"))
    else:
        lines.append("Your goals, current process and who is involved")
        if read:
            lines.append("What you read about: " + join_words(read[:3]))
    lines.extend(f"Answer {a}" for a in asked[:2])
    if _read_pricing(ctx) and not any("pric" in a for a in asked):
        lines.append("Pricing options for your team's scope")
    lines.append("Agree next steps and dates")
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def invite_slot(ctx: Context, minutes: int) -> Slot | None:
    facts = ctx.invite
    after = ctx.as_of + timedelta(hours=INVITE_NOTICE_HOURS)
    # Someone who asked for a demo or is hot should not wait a week for their favourite weekday.
    urgent = facts.demo_requested_at is not None or facts.tier == "hot"
    return best_slot(rep_of(ctx), after, facts.preferred, what="past meetings", horizon_days=INVITE_HORIZON_DAYS,
                     minutes=minutes, busy=facts.busy, buffer_minutes=MEETING_BUFFER_MINUTES,
                     fallback=facts.email_engagement, fallback_what="email opens and replies",
                     default_local_hour=DEFAULT_MEETING_HOUR, daily_decay=URGENT_DAILY_DECAY if urgent else DAILY_DECAY)


def _why_invite(ctx: Context) -> list[str]:
    facts = ctx.invite
    why = []
    if facts.tier:
        why.append(f"{facts.tier} lead" + (f" (score {facts.score})" if facts.score is not None else ""))
    if facts.demo_requested_at is not None:
        why.append(f"asked for a demo {day_phrase(facts.demo_requested_at, ctx.as_of)}")
    if facts.pricing_views_7d:
        why.append(f"read the pricing page {facts.pricing_views_7d} time{'s' if facts.pricing_views_7d != 1 else ''} this week")
    if facts.buying_stage:
        why.append(f"stage {facts.buying_stage}")
    why.append("no meeting booked")
    return why


def decide(ctx: Context) -> Decision:
    minutes = invite_duration(ctx)
    slot = invite_slot(ctx, minutes)
    facts = ctx.invite
    if slot is None:
        return Decision(kind="invite", confidence=0.2, title=invite_title(ctx), agenda=invite_agenda(ctx),
                        duration_minutes=minutes,
                        reasoning=f"{contact_label(ctx)}: {'; '.join(_why_invite(ctx))}, but {rep_of(ctx).name} has no free "
                                  f"{minutes}-minute slot in the next {INVITE_HORIZON_DAYS} days.")
    confidence = 0.6
    if facts.preferred.samples >= MIN_PATTERN_SAMPLES:
        confidence += 0.1
    if facts.demo_requested_at is not None or facts.tier == "hot":
        confidence += 0.05
    if ctx.owner is None:
        confidence -= 0.2
    reasoning = (f"{contact_label(ctx)}: {'; '.join(_why_invite(ctx))}. Proposed {slot.basis}, "
                 f"{minutes} minutes, clear of {len(facts.busy)} existing meeting{'s' if len(facts.busy) != 1 else ''}.")
    return Decision(kind="invite", starts_at=slot.at, duration_minutes=minutes, title=invite_title(ctx),
                    agenda=invite_agenda(ctx), confidence=round(confidence, 2), reasoning=reasoning[:2000])


# == rendering ======================================================================================
def render(ctx: Context) -> list[str]:
    """The invite part of the user message: trusted facts, the free slots, what they did (fenced)."""
    f = ctx.invite
    minutes = invite_duration(ctx)
    slots = candidate_slots(rep_of(ctx), ctx.as_of + timedelta(hours=INVITE_NOTICE_HOURS), horizon_days=INVITE_HORIZON_DAYS,
                            minutes=minutes, busy=f.busy, buffer_minutes=MEETING_BUFFER_MINUTES)
    facts = {"score": f.score, "tier": f.tier, "next_action": f.next_action, "buying_stage": f.buying_stage,
             "deal": f.deal.model_dump(mode="json", exclude={"name"}) if f.deal else None,
             "demo_requested_at": f.demo_requested_at.isoformat(timespec="minutes") if f.demo_requested_at else None,
             "pricing_views_7d": f.pricing_views_7d,
             "past_meeting_times": describe_histogram(f.preferred, "past meetings"),
             "past_meetings_by_utc_hour": f.preferred.hours, "past_meetings_by_utc_weekday_mon_first": f.preferred.weekdays,
             "email_engagement": describe_histogram(f.email_engagement, "email opens and replies"),
             "busy": [[b.starts_at.isoformat(timespec="minutes"), b.ends_at.isoformat(timespec="minutes")] for b in f.busy],
             "suggested_duration_minutes": minutes}
    out = ["Invite facts (trusted):", as_json(facts),
           f"Free {minutes}-minute starts in the owner's working hours (UTC), first 40:",
           ", ".join(s.isoformat(timespec="minutes") for s in slots[:40]) or "(none)"]
    if f.recent_content:
        rows = "\n".join(f"{c.at:%a %Y-%m-%d} {c.kind}: {c.title or ''} {c.url or ''}".rstrip() for c in f.recent_content)
        out += ["What they read and downloaded, newest first:", fence(rows, "web activity")]
    if f.last_inbound is not None:
        out += [f"Their last email ({f.last_inbound.sent_at:%Y-%m-%d}):",
                fence(f"Subject: {f.last_inbound.subject or ''}\n\n{f.last_inbound.body or ''}", "inbound email body")]
    if f.past_meetings:
        out += ["Past meetings:", fence("\n".join(f"{m.starts_at:%a %Y-%m-%d %H:%M} {m.title or ''}" for m in f.past_meetings), "meeting titles")]
    return out


# == proposing ======================================================================================
def _subject_of_invite(ctx: Context) -> tuple[str, int]:
    deal = ctx.invite.deal if ctx.invite else None
    # With a deal the meeting is filed on it (the executor links the meeting to the decision's deal).
    return ("deal", deal.deal_id) if deal else ("contact", ctx.contact_id)


def proposal(ctx: Context, decision: Decision) -> Proposal:
    """The invite, its start checked again whatever reasoner chose it; a human is asked when it cannot go out."""
    rep = rep_of(ctx)
    notes: list[str] = []
    minutes = decision.duration_minutes or invite_duration(ctx)
    start = naive_utc(decision.starts_at) if decision.starts_at else None
    fallback = invite_slot(ctx, minutes)
    if start is not None:
        problem = None
        if start < ctx.as_of + timedelta(hours=INVITE_NOTICE_HOURS):
            problem = f"is sooner than {INVITE_NOTICE_HOURS} hours ahead"
        elif start > ctx.as_of + timedelta(days=INVITE_HORIZON_DAYS + 1):
            problem = "is too far out"
        elif not in_working_hours(rep, start, minutes):
            problem = f"is outside {rep.name}'s working hours"
        elif overlaps(start, minutes, ctx.invite.busy, MEETING_BUFFER_MINUTES):
            problem = f"clashes with another of {rep.name}'s meetings"
        if problem:
            notes.append(f"the proposed start {start:%a %d %b %H:%M} UTC {problem}" +
                         (f": moved to {fallback.at:%a %d %b %H:%M} UTC" if fallback else ""))
            start = fallback.at if fallback else None
    elif fallback is not None:
        start = fallback.at
    subject_type, subject_id = _subject_of_invite(ctx)
    reasoning = decision.reasoning + (" " + " ".join(n[0].upper() + n[1:] + "." for n in notes) if notes else "")
    escalation = None
    actions: list[ProposedAction] = []
    if not ctx.contact.email:
        escalation = "the contact has no email address on record: an invite cannot be sent"
    elif start is None:
        escalation = f"{rep.name} has no free slot in the next {INVITE_HORIZON_DAYS} days: pick a time by hand"
    else:
        title = one_line(decision.title or invite_title(ctx), 200) or invite_title(ctx)
        agenda = (decision.agenda or invite_agenda(ctx))[:3000]
        outside = outside_references(f"{title}\n{agenda}")
        if outside:
            escalation = f"the agenda names {', '.join(sorted(set(outside))[:3])}, which the CRM did not provide: check it"
        elif MACHINE_AIMED.search(f"{title}\n{agenda}"):
            escalation = "the title or agenda holds text written at an AI: check it before it goes to the contact"
        actions.append(ProposedAction(
            type="schedule_meeting",
            params={"contact_id": ctx.contact_id, "title": title, "starts_at": start.isoformat(),
                    "duration_minutes": minutes, "agenda": agenda},
            reason=f"invite for {start:%a %d %b %H:%M} UTC, {minutes} minutes"))
    if ctx.owner is None and escalation is None:
        escalation = "the contact has no owner: the invite would go out without a rep's calendar"
    decided = decision.model_dump(mode="json")
    decided.update(starts_at=start.isoformat() if start else None, duration_minutes=minutes)
    return Proposal(subject_type=subject_type, subject_id=subject_id, subject_label=contact_label(ctx)[:80],
                    confidence=decision.confidence, reasoning=reasoning[:4000], actions=tuple(actions),
                    escalation=escalation, decision=decided)


def facts_present(ctx: Context) -> list[bool]:
    """What an invite is built on, each true when the context holds it (the agent's completeness)."""
    f = ctx.invite
    return [ctx.owner is not None, f.preferred.samples >= MIN_PATTERN_SAMPLES or f.email_engagement.samples >= MIN_PATTERN_SAMPLES,
            f.score is not None, f.buying_stage is not None, bool(f.recent_content or f.last_inbound)]


def agree(a: Decision, b: Decision) -> bool:
    """Two invites agree when neither found a slot, or both start on the same day within three hours."""
    if a.starts_at is None or b.starts_at is None:
        return a.starts_at is None and b.starts_at is None
    return a.starts_at.date() == b.starts_at.date() and abs((naive_utc(a.starts_at) - naive_utc(b.starts_at)).total_seconds()) <= 3 * 3600
