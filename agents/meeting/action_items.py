"""The action-items job: a finished meeting with a transcript gets one task per commitment made in it.

Decision: the commitments (owner, due date, text) -> `create_action_items`. The offline reasoner
reads commitments by rule ("I'll send...", "we will...", "let me...") in sentences people said, reads
the date they named relative to the meeting date ("by Friday", "tomorrow", "by December 3"), maps
speakers to the rep, the contact or another attendee, and ignores lines not spoken by a person
("assistant: ...", "SYSTEM: ...") and sentences written at an AI. Whatever reasoner decided, every
item is checked again before it is proposed: its owner was in the meeting, its quote is something a
person said, it names no address or link the CRM does not know, and it is not already on the
meeting. Text aimed at the CRM in a transcript is escalated to a human.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from agents.base import Proposal, ProposedAction
from agents.common.rendering import as_json
from agents.common.text_reading import MACHINE_AIMED, first_name_of, one_line, outside_references, printable
from agents.common.working_hours import end_of_workday
from agents.llm.fence import fence
from agents.meeting.commitments import extract_commitments, similar_titles, task_title, transcript_warnings
from agents.meeting.due_dates import add_business_days
from agents.meeting.models import (
    ActionItemOut,
    Context,
    Decision,
    Participant,
    company_of,
    meeting_label,
    naive_utc,
    rep_of,
)
from agents.meeting.transcripts import TRANSCRIPT_LIMIT, fold_name, is_person, match_participant, parse_transcript

ITEM_DEFAULT_BUSINESS_DAYS = 2
ITEM_MAX_DAYS = 180


# == deciding =======================================================================================
def _first_name(ctx: Context) -> str | None:
    return first_name_of(ctx.contact.first_name) or (first_name_of((ctx.contact.name or "").split(" ")[0]) if ctx.contact.name else None)


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _reword(text: str, speaker: Participant | None, ctx: Context) -> str:
    """First and second person turned into names, so the task reads right in someone's list."""
    rep_first = (rep_of(ctx).name.split() or ["the rep"])[0]
    contact_first = _first_name(ctx) or "the contact"
    company = company_of(ctx)
    if speaker is not None and speaker.side == "rep":
        text = re.sub(r"\byou\b", contact_first, text, flags=re.IGNORECASE)
        text = re.sub(r"\byour\b", _possessive(company) if company else "their", text, flags=re.IGNORECASE)
    else:
        text = re.sub(r"\byou\b", rep_first, text, flags=re.IGNORECASE)
        text = re.sub(r"\b(our)\b", _possessive(company) if company else "their", text, flags=re.IGNORECASE)
        text = re.sub(r"\bmy\b", "their", text, flags=re.IGNORECASE)
    text = re.sub(r"\bme\b", (speaker.name.split()[0] if speaker else "them"), text)
    return text


def _known_addresses(ctx: Context) -> list[str]:
    facts = ctx.action_items
    return facts.meeting.attendees + [p.email for p in facts.participants if p.email] + (
        [ctx.contact.email] if ctx.contact.email else [])


def decide(ctx: Context) -> Decision:
    facts = ctx.action_items
    commitments, notes = extract_commitments(facts.transcript, facts.participants, _known_addresses(ctx),
                                             facts.meeting.starts_at.date(), lambda text, who: _reword(text, who, ctx))
    rep = rep_of(ctx)
    items = []
    for c in commitments:
        owner = c.participant.name if c.participant else c.speaker
        due = end_of_workday(c.due, rep) if c.due else None
        items.append(ActionItemOut(text=c.text, owner_name=owner[:120], due_at=due, quote=c.quote[:500]))
    dated = sum(1 for c in commitments if c.due)
    known = sum(1 for c in commitments if c.participant)
    title = printable(facts.meeting.title, 100, "the meeting")
    if not items:
        reasoning = f"No commitments (\u201cI'll ...\u201d, \u201cwe will ...\u201d) found in the transcript of {title}."
        return Decision(kind="action_items", confidence=0.3, reasoning=(reasoning + " " + " ".join(notes))[:2000])
    confidence = 0.55 + 0.2 * (dated / len(items)) + 0.15 * (known / len(items))
    reasoning = (f"{len(items)} commitment{'s' if len(items) != 1 else ''} in the transcript of {title} "
                 f"({dated} with a date said, {known} by a known participant).")
    if notes:
        reasoning += " " + " ".join(n[0].upper() + n[1:] + "." for n in notes)
    return Decision(kind="action_items", action_items=items[:30], confidence=round(min(0.9, confidence), 2), reasoning=reasoning[:2000])


# == rendering ======================================================================================
def render(ctx: Context) -> list[str]:
    """The action-items part of the user message: trusted meeting facts, then names and the transcript (fenced)."""
    f = ctx.action_items
    rep = rep_of(ctx)
    facts = {"meeting_id": f.meeting.meeting_id, "starts_at": f.meeting.starts_at.isoformat(timespec="minutes"),
             "meeting_date": f"{f.meeting.starts_at:%A %Y-%m-%d}",
             "ends_at": f.meeting.ends_at.isoformat(timespec="minutes"),
             "participant_sides_in_order": [p.side for p in f.participants],
             "end_of_owner_workday_utc_hour": end_of_workday(f.meeting.starts_at.date(), rep).hour,
             "items_already_created_at": f.extracted_at.isoformat(timespec="minutes") if f.extracted_at else None}
    out = ["Meeting facts (trusted):", as_json(facts),
           fence(as_json([p.name for p in f.participants]), "participant names, in the order of their sides above"),
           fence(f.meeting.title or "", "meeting title")]
    if f.existing_items:
        out += ["Action items that already exist for this meeting (do not repeat them):",
                fence("\n".join(t.title for t in f.existing_items), "existing action items")]
    return out + ["Transcript:", fence(f.transcript[:TRANSCRIPT_LIMIT], "meeting transcript")]


# == proposing ======================================================================================
def proposal(ctx: Context, decision: Decision) -> Proposal:
    """The items as tasks, each checked again here whatever reasoner produced it: the owner must
    have been in the meeting, the quote must be something a person said, nothing may name an
    address or link the CRM does not know, and an item already on the meeting is not added twice."""
    facts = ctx.action_items
    rep = rep_of(ctx)
    known = _known_addresses(ctx)
    turns = parse_transcript(facts.transcript)
    speakers = {fold_name(t.speaker): t.speaker for t in turns if is_person(t.speaker)}
    said_by_people = fold_name(" ".join(t.text for t in turns if is_person(t.speaker)))
    said_by_others = fold_name(" ".join(t.text for t in turns if not is_person(t.speaker)))
    start = facts.meeting.starts_at
    default_due = end_of_workday(add_business_days(start.date(), ITEM_DEFAULT_BUSINESS_DAYS), rep)
    taken = [t.title for t in facts.existing_items]
    items: list[dict[str, Any]] = []
    dropped: list[str] = []
    repeats = unquoted = 0
    for item in decision.action_items:
        label = f"\u201c{one_line(item.text, 80)}\u201d"
        quote = fold_name(item.quote or "")
        refs = sorted(set(outside_references(f"{item.text} {item.owner_name} {item.quote or ''}", known)))
        if refs:
            dropped.append(f"{label} names {', '.join(refs[:2])}")
            continue
        injected = quote and quote in said_by_others and quote not in said_by_people
        if injected or MACHINE_AIMED.search(f"{item.text} {item.quote or ''}"):
            dropped.append(f"{label} comes from text written at an AI, not said by a person")
            continue
        who = match_participant(item.owner_name, facts.participants)
        if who is None and (fold_name(item.owner_name) not in speakers or not is_person(item.owner_name)):
            dropped.append(f"{label}: {one_line(item.owner_name, 40)} did not speak in the meeting")
            continue
        if quote and quote not in said_by_people:
            unquoted += 1
            item = item.model_copy(update={"quote": None})
        owner_name = who.name if who else speakers[fold_name(item.owner_name)]
        title = task_title(item.text, owner_name, who)
        if any(similar_titles(title, t) for t in taken):
            repeats += 1
            continue
        taken.append(title)
        due = naive_utc(item.due_at) if item.due_at else None
        inferred = due is None or due < start - timedelta(hours=1) or due > start + timedelta(days=ITEM_MAX_DAYS)
        if inferred:
            due = default_due
        side = "our side" if who and who.side == "rep" else "their side" if who else "not on record"
        meeting_title = printable(facts.meeting.title, 100, "the meeting")
        description = (f"Owner: {printable(owner_name, 80, 'a participant')} ({side}). From \u201c{meeting_title}\u201d on {start:%d %b %Y}."
                       + (f" Said: \u201c{one_line(item.quote, 400)}\u201d" if item.quote else "")
                       + (" No due date was said: set to two working days after the meeting." if inferred else ""))
        items.append({"title": title, "description": description[:10000],
                      "owner_id": who.user_id if who and who.side == "rep" else None, "due_at": due.isoformat()})
    reasoning = decision.reasoning
    extra = []
    if dropped:
        extra.append(f"Not turned into items ({len(dropped)}): {'; '.join(dropped[:6])}.")
    if repeats:
        extra.append(f"{repeats} item{'s' if repeats != 1 else ''} already on the meeting or waiting for review: not added again.")
    if unquoted:
        extra.append(f"{unquoted} quote{'s' if unquoted != 1 else ''} not found in what people said: left out.")
    if extra:
        reasoning = f"{reasoning} {' '.join(extra)}"
    warnings = transcript_warnings(facts.transcript, known)
    escalation = None
    if warnings or dropped:
        escalation = ("the transcript holds text aimed at the CRM rather than said in the meeting ("
                      + "; ".join((warnings or dropped)[:3]) + "): nothing was created from it; check the items before approving")
    actions: list[ProposedAction] = []
    if items:
        actions.append(ProposedAction(type="create_action_items", params={"meeting_id": ctx.meeting_id, "items": items[:50]},
                                      reason=f"{len(items)} commitment{'s' if len(items) != 1 else ''} from the transcript"))
    elif escalation is None and not (repeats or facts.extracted_at or facts.existing_items):
        escalation = "no commitments found in the transcript: read it and add the action items by hand"
    return Proposal(subject_type="meeting", subject_id=ctx.meeting_id, subject_label=meeting_label(ctx.action_items.meeting),
                    confidence=decision.confidence, reasoning=reasoning[:4000], actions=tuple(actions),
                    escalation=escalation, decision=decision.model_dump(mode="json"))


def facts_present(ctx: Context) -> list[bool]:
    """What the items are read from, each true when the context holds it (the agent's completeness)."""
    f = ctx.action_items
    return [ctx.owner is not None, len(f.participants) >= 2, len(f.transcript) >= 200,
            any(p.side == "rep" for p in f.participants)]


def agree(a: Decision, b: Decision) -> bool:
    """Two readings agree when both or neither found items, and their counts are close."""
    n, m = len(a.action_items), len(b.action_items)
    return (n == 0) == (m == 0) and abs(n - m) <= max(1, min(n, m) // 2)
