"""Follow-up sequencing: for a lead or deal gone quiet, whether to follow up now, how, and when.

The context (built by `crm_core.contexts.follow_up`) holds the contact's email history (bodies
are untrusted text), their replies and our touches since, the pages and downloads they read,
their meetings (held and booked), calls and notes, the open deal and its stage, what is already
on its way (a scheduled email, an open follow-up task, a decision waiting for approval), the
owner's working hours, and a playbook learned from the team's own history: how often past
emails, calls and LinkedIn messages got a response within a week, by channel, by the gap since
the previous touch and by their place in a run of unanswered touches.

The decision is a plan:
- stop: the contact replied (a person answers: a task with a suggested answer), asked us to stop
  or is marked unsubscribed, is disqualified, a customer with no open deal, has a meeting booked,
  or the run of unanswered touches is long and history says more rarely get answers;
- wait: a follow-up is already pending (never a second one), or history says a later follow-up
  is answered clearly more often (look again at `revisit_at`);
- follow_up: an email drafted from what the contact did (their question or objection, the page
  read, the asset downloaded, the meeting held), a resource that answers their question, or a
  call / LinkedIn task for the owner when history or the deal stage says so, at a slot inside the
  owner's working hours on a weekday, closest to when this contact (else the owner's contacts)
  answered before.
The stop facts and the pending check are enforced again in `proposals()` whatever the reasoner
said, emails go only to the context's own contact (no decision field can name a recipient), and a
message naming an address or link the CRM did not provide is escalated to a human.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.base import BookBlock, Frozen, Prompt, Proposal, ProposedAction
from agents.common.context_records import ContentItem, DealRef, EmailItem, MeetingItem
from agents.common.email_topics import WRONG_PERSON, TopicHit, detect_topics, opted_out
from agents.common.phrasing import day_phrase, join_words
from agents.common.rendering import as_json, with_data_rule
from agents.common.text_reading import body_sentences, one_line, outside_references, quotable
from agents.common.working_hours import (
    DEFAULT_REP,
    MIN_PATTERN_SAMPLES,
    RepHours,
    Slot,
    TimeHistogram,
    best_slot,
    candidate_slots,
    describe_histogram,
    in_working_hours,
)
from agents.follow_up.drafts import (
    SUBJECT_MAX,
    call_points,
    contact_name,
    days_text,
    email_draft,
    late_stage,
    linkedin_draft,
    reply_draft,
)
from agents.follow_up.response_playbook import (
    GAP_BUCKETS,
    MAX_ATTEMPTS,
    MIN_EVIDENCE,
    Playbook,
    attempt_bucket,
    gap_bucket,
    gap_start,
    kind_attempt_bucket,
    pct,
    playbook_summary,
    rate_words,
)
from agents.follow_up.web_activity import content_words
from agents.llm.fence import fence

Channel = Literal["email", "call", "linkedin_message", "send_resource", "none"]

EMAIL_LEAD_MINUTES = 15      # an email is never scheduled sooner than this after the run
SEND_HORIZON_DAYS = 7
LATE_STAGE_QUIET_DAYS = 10
UNANSWERED_SWITCH = 3        # this many unanswered emails in a row: change channel
BETTER_BY = 1.25            # a later gap or another channel must beat the current one by 25 % (and 2 points)
BETTER_BY_POINTS = 0.02
EXHAUSTED_RATE = 0.05
HARD_MAX_ATTEMPTS = 8       # never more than this many unanswered touches in a row, whatever history says
WAIT_MAX_DAYS = 14


# == context ========================================================================================
class TouchItem(Frozen):
    kind: Literal["call", "linkedin_message", "note", "email_sent"]
    at: datetime
    summary: str | None = None     # untrusted


class Resource(Frozen):
    """Content the company has and people use: what a send_resource follow-up may share."""

    title: str
    url: str | None = None
    kind: Literal["download", "page"] = "download"
    uses: int = 0


class ResponsePattern(Frozen):
    emails_sent: int = 0
    emails_opened: int = 0
    emails_replied: int = 0
    open_rate: float | None = None
    reply_rate: float | None = None
    unanswered_in_a_row: int = 0           # our emails since they last wrote
    opened_in_a_row: int = 0               # of those, how many they opened
    engagement: TimeHistogram = TimeHistogram()  # when they opened, clicked or replied (UTC)
    median_reply_hours: float | None = None


class PendingItem(Frozen):
    """A next step already on its way: a second follow-up would duplicate it."""

    kind: Literal["scheduled_email", "outbox_email", "open_task", "queued_decision"]
    at: datetime | None = None     # when it goes out or is due, if known
    label: str | None = None       # an email subject or task title (may be typed by a person: untrusted)


class Context(Frozen):
    contact_id: int
    as_of: datetime
    name: str | None = None                # imported text
    first_name: str | None = None          # imported text
    title: str | None = None
    company: str | None = None
    lifecycle_stage: str | None = None
    has_email: bool = True
    has_phone: bool = False
    has_linkedin: bool = False
    unsubscribed: str | None = None        # set when the record says they opted out (which flag)
    owner: RepHours | None = None
    deal: DealRef | None = None
    days_since_last_contact: float | None = None   # None: never contacted
    last_touch: str | None = None                  # e.g. "outbound email", "call", "meeting"
    last_reply_at: datetime | None = None          # their last email to us (inbound email or logged reply)
    last_outbound_at: datetime | None = None       # our last personal email, call or LinkedIn message
    unanswered_touches: int = 0                    # ours since they last replied, met or picked up
    emails: list[EmailItem] = Field(default_factory=list)      # oldest first
    content: list[ContentItem] = Field(default_factory=list)   # newest first
    meetings: list[MeetingItem] = Field(default_factory=list)  # oldest first; upcoming ones too
    touches: list[TouchItem] = Field(default_factory=list)     # calls, LinkedIn messages, notes; oldest first
    pattern: ResponsePattern = ResponsePattern()
    owner_pattern: TimeHistogram = TimeHistogram()             # when the owner's contacts answered (UTC)
    pending: list[PendingItem] = Field(default_factory=list)
    playbook: Playbook | None = None
    resources: list[Resource] = Field(default_factory=list)
    sensitive: bool = False
    notes: str | None = None               # free text on the contact (untrusted)
    # What every contact of this book shares (the playbook, the resources, the policy, people's verdicts):
    # sent once in the cached system block; without it the playbook and resources go in the user message.
    book: BookBlock | None = None


# == decision =======================================================================================
Plan = Literal["follow_up", "wait", "stop"]
StopReason = Literal["replied", "unsubscribed", "disqualified", "customer", "meeting_booked", "sequence_exhausted",
                     "unreachable"]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Plan = Field(description="follow_up now, wait (nothing now, look again at revisit_at), or stop the sequence")
    stop_reason: StopReason | None = Field(default=None, description="why the sequence stops (plan stop only)")
    channel: Channel = Field(default="none", description="follow_up: email | send_resource | call | linkedin_message; "
                                                         "wait and stop: none")
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX,
                                description="email subject line (email and send_resource), one line")
    message: str = Field(default="", max_length=6000,
                         description="the email body, the LinkedIn message or the call's talking points; for stop "
                                     "after a reply: a suggested answer the owner can edit")
    resource_index: int | None = Field(default=None, ge=0,
                                       description="send_resource: index of the resource in the context's resources list")
    send_at: datetime | None = Field(default=None, description="when to send or call, UTC (ISO 8601), inside the owner's "
                                                               "working hours, on a weekday")
    send_time_basis: str = Field(default="", max_length=500, description="why this time")
    revisit_at: datetime | None = Field(default=None, description="wait: when to look at this contact again, UTC")
    refers_to: list[str] = Field(default_factory=list, max_length=8,
                                 description="what this contact actually did that the message refers to")
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.plan == "follow_up" and (self.channel == "none" or not self.message.strip()):
            raise ValueError("plan follow_up needs a channel other than none and a message")
        if self.plan != "follow_up" and self.channel != "none":
            raise ValueError(f"plan {self.plan} sends nothing: channel must be none")
        if self.plan == "stop" and self.stop_reason is None:
            raise ValueError("plan stop needs a stop_reason")
        return self


SYSTEM = """You run follow-up sequences for a B2B sales team. For one contact or deal that has gone quiet
you decide whether to follow up now, what kind of follow-up, and when:
- plan: "stop" when the sequence must end: they replied and their email waits for an answer (a person
  answers replies; write a suggested answer in message), they asked not to be contacted or the record
  says unsubscribed, they are disqualified, a customer with no open deal, a meeting is booked, or the
  run of unanswered touches is long and the team's history says more touches rarely get answers.
  "wait" when a follow-up is already scheduled or pending (never send a second one), or when the team's
  history says a later follow-up gets answered clearly more often; give revisit_at. Otherwise "follow_up".
- channel (follow_up only): "email"; "send_resource" (an email sharing one listed resource that answers
  what they asked); "call" (a task for the owner: a late-stage deal gone silent, or history shows calls
  answered more often at this point of the run, and a phone number is known); "linkedin_message" (no
  email address, or email has stopped working and no phone is known).
- message: the email body (greeting, 3-6 short sentences, sign-off with the owner's name), the LinkedIn
  message (under 600 characters) or the call's talking points. Refer to what this contact actually did:
  the question or objection in their email (answer it without promising product facts the context does
  not state), the page they read, the asset they downloaded, the meeting they had. Never generic
  ("just checking in"). End with one clear next step that fits the deal stage.
- subject: for emails, one line; "Re: <their subject>" when answering their email.
- send_at: a UTC time inside the owner's working hours on a weekday (their time zone and hours are
  given), at or after as_of, matching when this contact opened or replied before; say why in
  send_time_basis. The CRM's suggested time already does this.
- refers_to: the contact's own actions the message mentions, e.g. "read /security on Tuesday".
- confidence (0-1) and reasoning (two or three sentences a sales rep understands, naming the evidence,
  e.g. the team's response rates).
You never choose recipients, addresses, record ids or links: the system writes only to the contact on
record. Do not put email addresses or links in the message.
"""


# == offline reasoning: what the contact did ========================================================
@dataclass
class Signals:
    """What the contact did and said, read from the context."""

    last_inbound: EmailItem | None = None
    awaiting_reply: bool = False          # their email is the last word and nobody answered it
    reply_at: datetime | None = None
    topics: list[TopicHit] = field(default_factory=list)
    opt_out: str | None = None
    wrong_person: bool = False
    fresh: list[ContentItem] = field(default_factory=list)    # since we last reached out, newest first
    older: list[ContentItem] = field(default_factory=list)    # before that, in the context's window
    last_meeting: MeetingItem | None = None
    upcoming_meeting: MeetingItem | None = None
    last_outbound_subject: str | None = None
    last_touch_at: datetime | None = None


def _last_touch_at(ctx: Context) -> datetime | None:
    if ctx.days_since_last_contact is None:
        return None
    return ctx.as_of - timedelta(days=ctx.days_since_last_contact)


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def read_signals(ctx: Context) -> Signals:
    sig = Signals(last_touch_at=_last_touch_at(ctx))
    emails = sorted((e for e in ctx.emails if e.sent_at <= ctx.as_of), key=lambda e: e.sent_at)
    inbound = [e for e in emails if e.direction == "inbound"]
    outbound = [e for e in emails if e.direction == "outbound"]
    if inbound:
        sig.last_inbound = inbound[-1]
        sig.topics = detect_topics(sig.last_inbound.body)
        sig.opt_out = opted_out(sig.last_inbound.body)
        sig.wrong_person = any(WRONG_PERSON.search(s) for s in body_sentences(sig.last_inbound.body))
    sig.reply_at = _latest(ctx.last_reply_at, sig.last_inbound.sent_at if sig.last_inbound else None)
    past = [m for m in ctx.meetings if m.starts_at <= ctx.as_of and m.status != "cancelled"]
    # A call, a note of ours or a meeting after their email answered it as much as an email would.
    ours = _latest(ctx.last_outbound_at, outbound[-1].sent_at if outbound else None, past[-1].starts_at if past else None,
                   *(t.at for t in ctx.touches if t.kind in ("call", "linkedin_message", "email_sent") and t.at <= ctx.as_of))
    sig.awaiting_reply = sig.reply_at is not None and (ours is None or sig.reply_at > ours)
    subjects = [(e.sent_at, e.subject) for e in outbound if e.subject]
    subjects += [(t.at, t.summary) for t in ctx.touches if t.kind == "email_sent" and t.summary]
    for _, subject in sorted(subjects, key=lambda s: s[0], reverse=True):
        if quotable(subject, 150, 2):
            sig.last_outbound_subject = one_line(subject, 150)
            break
    # Fresh: done since we last reached out (or in the last 14 days when never reached).
    since = sig.last_touch_at or (ctx.as_of - timedelta(days=14))
    for item in ctx.content:
        if item.at > ctx.as_of:
            continue
        (sig.fresh if item.at > since else sig.older).append(item)
    if past:
        sig.last_meeting = past[-1]
    coming = [m for m in ctx.meetings if m.starts_at > ctx.as_of and m.status == "scheduled"]
    if coming:
        sig.upcoming_meeting = coming[0]
    return sig


# == offline reasoning: stop, wait or go ============================================================
Handoff = Literal["reply", "status", "review_deal"]


@dataclass
class Stop:
    reason: StopReason
    words: str                    # why, in words
    handoff: Handoff | None = None
    confidence: float = 0.9


def _stage(ctx: Context) -> str:
    return (ctx.lifecycle_stage or "").lower()


def stop_for(ctx: Context, sig: Signals) -> Stop | None:
    """The facts that end a sequence whatever anyone proposes. Checked again in proposals()."""
    name = contact_name(ctx)
    if ctx.unsubscribed:
        return Stop("unsubscribed", f"{name} is marked unsubscribed on the record ({one_line(ctx.unsubscribed, 60)})", None, 0.95)
    if sig.opt_out is not None and sig.last_inbound is not None:
        when = day_phrase(sig.last_inbound.sent_at, ctx.as_of)
        return Stop("unsubscribed", f"{name} asked not to be contacted in their email {when} (\u201c{sig.opt_out}\u201d)",
                    "status", 0.85)
    if _stage(ctx) == "disqualified":
        return Stop("disqualified", f"{name} is disqualified", None, 0.95)
    if _stage(ctx) == "customer" and ctx.deal is None:
        return Stop("customer", f"{name} is already a customer with no open deal", None, 0.95)
    if sig.upcoming_meeting is not None:
        m = sig.upcoming_meeting
        title = one_line(m.title or "", 80)
        what = f"\u201c{title}\u201d" if title and quotable(title, 80, 2) else "a meeting"
        return Stop("meeting_booked", f"{what} is booked for {m.starts_at:%a %d %b %H:%M} UTC", None, 0.95)
    if sig.awaiting_reply:
        when = day_phrase(sig.reply_at, ctx.as_of) if sig.reply_at else "recently"
        return Stop("replied", f"{name} replied {when} and nobody has answered yet: a person takes it from here",
                    "reply", 0.9)
    if not (ctx.has_email or ctx.has_phone or ctx.has_linkedin):
        return Stop("unreachable", f"no email address, phone number or LinkedIn profile on record for {name}", None, 0.95)
    return exhausted(ctx)


def exhausted(ctx: Context) -> Stop | None:
    """Stop after a long unanswered run, when the team's own history says the next touch rarely pays."""
    n = ctx.unanswered_touches + 1
    if n < MAX_ATTEMPTS:
        return None
    handoff: Handoff | None = "review_deal" if ctx.deal is not None else None
    seen = f"{ctx.unanswered_touches} touches in a row went unanswered"
    ev = ctx.playbook.evidence("by_attempt", attempt_bucket(n)) if ctx.playbook else None
    if ev is not None:
        rate, counts = ev
        if rate >= EXHAUSTED_RATE and n < HARD_MAX_ATTEMPTS:
            return None
        said = (f"the team's touches at that point got a response only {pct(rate)} of the time "
                f"({counts.responded} of {counts.sent})")
        return Stop("sequence_exhausted", f"{seen}, and {said}", handoff, 0.85)
    if n < MAX_ATTEMPTS + 1:
        return None  # no history to go by: one more try than the rule of thumb
    return Stop("sequence_exhausted", f"{seen}, and the team's history is too thin to show that more touches get answered",
                handoff, 0.7)


def pending_words(ctx: Context) -> str:
    def one(p: PendingItem) -> str:
        what = {"scheduled_email": "an email scheduled", "outbox_email": "an email waiting in the outbox",
                "open_task": "an open follow-up task", "queued_decision": "a follow-up waiting for approval"}[p.kind]
        return what + (f" for {p.at:%a %d %b %H:%M} UTC" if p.at else "")
    return join_words([one(p) for p in ctx.pending[:3]])


@dataclass
class Timing:
    now: bool
    words: str
    revisit_at: datetime | None = None
    evidence: bool = False


_INTENT = re.compile(r"pric|demo|trial|quote|contact[-_ ]?sales|book", re.IGNORECASE)
INTENT_DAYS = 14             # buying intent this recent is a reason to write now rather than wait


def _fresh_intent(ctx: Context, sig: Signals) -> ContentItem | None:
    for item in sig.fresh:
        if item.at < ctx.as_of - timedelta(days=INTENT_DAYS):
            continue
        if item.kind in ("content_download", "form_submit") or _INTENT.search(f"{item.url or ''} {item.title or ''}"):
            return item
    return None


def timing(ctx: Context, sig: Signals) -> Timing:
    """Now, or later: the gap since the last touch against the gaps that got answers in the team's history."""
    gap = ctx.days_since_last_contact
    if gap is None:
        return Timing(True, "never contacted: the first touch goes out now")
    quiet = f"quiet for {days_text(gap)}"
    intent = _fresh_intent(ctx, sig)
    if intent is not None:
        return Timing(True, f"{quiet}, and they showed intent since ({content_words(intent, ctx.as_of)}): strike now")
    if late_stage(ctx):
        return Timing(True, f"{quiet} in a late-stage deal: no reason to wait")
    pb = ctx.playbook
    # The gap that counts is the one when the follow-up lands: the next good slot, not this minute.
    gap = gap + max(0.0, (send_slot(ctx).at - ctx.as_of).total_seconds() / 86400)
    current = gap_bucket(gap)
    here = pb.evidence("by_gap", current) if pb else None
    if pb is None or here is None:
        return Timing(True, f"{quiet}; too little history to time it better")
    best_label, best = current, here
    for lo, _, label in GAP_BUCKETS:
        if lo <= gap_start(current) or lo - gap > WAIT_MAX_DAYS:
            continue
        ev = pb.evidence("by_gap", label)
        if ev and ev[0] > best[0]:
            best_label, best = label, ev
    if best_label != current and best[0] >= here[0] * BETTER_BY and best[0] - here[0] >= BETTER_BY_POINTS:
        last = _last_touch_at(ctx) or ctx.as_of
        revisit = max(ctx.as_of, last + timedelta(days=gap_start(best_label))).replace(second=0, microsecond=0)
        words = (f"{quiet}: the team's follow-ups {best_label} days after the last touch got a response "
                 f"{pct(best[0])} of the time ({best[1].responded} of {best[1].sent}), against {pct(here[0])} "
                 f"({here[1].responded} of {here[1].sent}) at {current} days when it would land, so wait until {revisit:%a %d %b}")
        return Timing(False, words, revisit, True)
    return Timing(True, f"{quiet}; {rate_words(pb, 'by_gap', current, f'follow-ups landing {current} days after the last touch')}",
                  evidence=True)


def choose_channel(ctx: Context, sig: Signals) -> tuple[Channel, str, bool]:
    """(channel, why in words, whether a hard fact or the team's history decided it)."""
    quiet = ctx.days_since_last_contact
    if not ctx.has_email:
        if ctx.has_phone:
            return "call", "no email address on record, but a phone number", True
        return "linkedin_message", "no email address or phone number on record, only LinkedIn", True
    if late_stage(ctx) and quiet is not None and quiet >= LATE_STAGE_QUIET_DAYS and ctx.has_phone:
        return "call", f"a {ctx.deal.stage} deal silent for {days_text(quiet)} deserves a call", True
    n = ctx.unanswered_touches + 1
    pb = ctx.playbook
    if ctx.has_phone and pb is not None and n >= 2:
        email = pb.evidence("by_kind_attempt", kind_attempt_bucket("email", n))
        call = pb.evidence("by_kind_attempt", kind_attempt_bucket("call", n))
        if email and call:
            place = kind_attempt_bucket("email", n).split(":")[1]
            compare = (f"at touch {place} of an unanswered run the team's calls got a response {pct(call[0])} of the time "
                       f"({call[1].responded} of {call[1].sent}), emails {pct(email[0])} ({email[1].responded} of {email[1].sent})")
            if call[0] >= email[0] * BETTER_BY and call[0] - email[0] >= BETTER_BY_POINTS:
                return "call", compare, True
            return "email", compare, True
    stalled = ctx.pattern.unanswered_in_a_row >= UNANSWERED_SWITCH and ctx.pattern.opened_in_a_row == 0
    if stalled and ctx.has_phone:
        return "call", f"{ctx.pattern.unanswered_in_a_row} emails in a row went unopened", False
    if stalled and ctx.has_linkedin:
        return "linkedin_message", f"{ctx.pattern.unanswered_in_a_row} emails in a row went unopened and no phone number", False
    return "email", "email is working with this contact" if ctx.pattern.opened_in_a_row else "email first", False


def send_slot(ctx: Context) -> Slot:
    """The working-hours slot (weekdays only) closest to when this contact, else the owner's contacts, answered."""
    rep = ctx.owner or DEFAULT_REP
    after = ctx.as_of + timedelta(minutes=EMAIL_LEAD_MINUTES)
    slot = best_slot(rep, after, ctx.pattern.engagement, what="opens and replies",
                     fallback=ctx.owner_pattern, fallback_what=f"answers from {rep.name}'s contacts",
                     horizon_days=SEND_HORIZON_DAYS)
    if slot is None:  # pragma: no cover - a working week always has a slot
        return Slot(after, "no working-hours slot found in a week: sending after the lead time")
    return slot


def first_slot(ctx: Context) -> datetime:
    """The next working moment of the owner: when a hand-off task is due."""
    rep = ctx.owner or DEFAULT_REP
    slots = candidate_slots(rep, ctx.as_of + timedelta(minutes=EMAIL_LEAD_MINUTES), horizon_days=SEND_HORIZON_DAYS)
    return slots[0] if slots else ctx.as_of


def offline_plan(ctx: Context) -> Decision:
    """The built-in reasoner: stop, wait or follow up, with the message, the time and the reasons in words."""
    sig = read_signals(ctx)
    rep = ctx.owner or DEFAULT_REP
    label = _label(ctx)
    stop = stop_for(ctx, sig)
    if stop is not None:
        message, subject, refs = "", None, []
        if stop.handoff == "reply":
            d = reply_draft(ctx, sig, first_slot(ctx), rep)
            message, subject, refs = d.message, d.subject, d.refers_to
        then = {"reply": "a task asks the owner to answer personally", "status": "a task asks the owner to update their status",
                "review_deal": "a task asks the owner to decide whether the deal is still alive"}.get(stop.handoff or "", "nothing is sent")
        return Decision(plan="stop", stop_reason=stop.reason, message=message, subject=subject, refers_to=refs[:8],
                        confidence=stop.confidence, reasoning=f"{label}: stop the sequence: {stop.words}; {then}."[:2000])
    if ctx.pending:
        # Look again a day after the first pending step was due to happen (a day from now if it has no date).
        due = min((p.at for p in ctx.pending if p.at and p.at > ctx.as_of), default=ctx.as_of)
        revisit = min(due + timedelta(days=1), ctx.as_of + timedelta(days=WAIT_MAX_DAYS)).replace(second=0, microsecond=0)
        return Decision(plan="wait", revisit_at=revisit, confidence=0.95,
                        reasoning=f"{label}: wait: {pending_words(ctx)} already; a second follow-up would duplicate it."[:2000])
    when = timing(ctx, sig)
    if not when.now:
        return Decision(plan="wait", revisit_at=when.revisit_at, confidence=0.75 if when.evidence else 0.6,
                        reasoning=f"{label}: wait: {when.words}."[:2000])
    channel, why_channel, decided = choose_channel(ctx, sig)
    slot = send_slot(ctx)
    if channel == "call":
        d = call_points(ctx, sig, why_channel, slot.at, rep)
        confidence = 0.9 if decided else 0.8
    elif channel == "linkedin_message":
        d = linkedin_draft(ctx, sig, slot.at, rep)
        confidence = 0.85 if decided else 0.75
    else:
        d = email_draft(ctx, sig, slot.at, rep)
        if d.resource_index is not None:
            channel = "send_resource"
        confidence = (0.7 if d.specific else 0.5) + (0.05 if when.evidence or decided else 0.0) \
            + (0.05 if ctx.pattern.engagement.samples >= MIN_PATTERN_SAMPLES else 0.0)
    refers = f"; it refers to: {'; '.join(d.refers_to)}" if d.refers_to else "; nothing the contact did to refer to, so a plain note"
    reasoning = (f"{label}: follow up now by {channel.replace('_', ' ')}. Timing: {when.words}. Channel: {why_channel}{refers}. "
                 f"Send {slot.basis}.")
    return Decision(plan="follow_up", channel=channel, subject=d.subject, message=d.message, resource_index=d.resource_index,
                    send_at=slot.at, send_time_basis=slot.basis[:500], refers_to=d.refers_to[:8],
                    confidence=round(min(confidence, 0.9), 2), reasoning=reasoning[:2000])


# == the agent ======================================================================================
def _label(ctx: Context) -> str:
    name = contact_name(ctx)
    return f"{name} ({one_line(ctx.deal.name, 60)})" if ctx.deal else name


def _trusted_links(ctx: Context) -> list[str]:
    return [r.url for r in ctx.resources if r.url]


class FollowUpAgent:
    name: ClassVar[str] = "follow_up"
    tier: ClassVar[str] = "mid"
    Context: ClassVar[type[BaseModel]] = Context
    Decision: ClassVar[type[BaseModel]] = Decision
    prompt: ClassVar[Prompt] = Prompt(version="follow_up/2", system=with_data_rule(SYSTEM))

    def render(self, ctx: Context) -> str:
        rep = ctx.owner or DEFAULT_REP
        sig = read_signals(ctx)
        stop = stop_for(ctx, sig)
        facts = {
            "contact_id": ctx.contact_id, "as_of": ctx.as_of.isoformat(timespec="minutes"),
            "lifecycle_stage": ctx.lifecycle_stage, "has_email": ctx.has_email, "has_phone": ctx.has_phone,
            "has_linkedin": ctx.has_linkedin, "marked_unsubscribed": bool(ctx.unsubscribed),
            "days_since_last_contact": ctx.days_since_last_contact, "last_touch": ctx.last_touch,
            "their_last_reply_at": _iso(sig.reply_at), "our_last_touch_at": _iso(ctx.last_outbound_at),
            "their_reply_is_unanswered": sig.awaiting_reply, "unanswered_touches_in_a_row": ctx.unanswered_touches,
            "owner": {"name": rep.name, "timezone": rep.timezone, "work_hours": f"{rep.work_start_hour}:00-{rep.work_end_hour}:00",
                      "works": "Monday to Friday"},
            "deal": ctx.deal.model_dump(mode="json", exclude={"name"}) if ctx.deal else None,
            "response_pattern": ctx.pattern.model_dump(mode="json", exclude={"engagement"}),
            "when_they_open_or_reply": describe_histogram(ctx.pattern.engagement, "opens and replies"),
            "when_the_owners_contacts_answer": describe_histogram(ctx.owner_pattern, "answers"),
        }
        suggested = send_slot(ctx)
        when = timing(ctx, sig)
        channel = choose_channel(ctx, sig)
        checks = {"stop_condition": stop.reason if stop else None, "pending": [p.kind for p in ctx.pending],
                  "timing": "now" if when.now else "wait", "revisit_at": _iso(when.revisit_at), "suggested_channel": channel[0],
                  "suggested_send_at": _iso(suggested.at)}
        # The explanations quote names and titles from imported records, so they travel fenced.
        explained = [f"stop: {stop.words}" if stop else "stop: nothing found", f"timing: {when.words}",
                     f"channel: {channel[1]}", f"send time: {suggested.basis}"]
        blocks = [
            "Plan the follow-up. Facts computed by the CRM (trusted):", as_json(facts),
            "What the CRM's own checks found (trusted):", as_json(checks),
            fence("\n".join(explained), "the checks explained (may quote imported names)"),
        ]
        if ctx.book is None:  # else the playbook travels in the book block, once for every contact
            blocks += ["The team's follow-up history (trusted, response within 7 days):",
                       "\n".join(f"- {line}" for line in playbook_summary(ctx.playbook))]
        blocks += [
            "Contact and deal (imported values):",
            fence(as_json({"name": ctx.name, "first_name": ctx.first_name, "title": ctx.title, "company": ctx.company,
                         "deal": ctx.deal.name if ctx.deal else None}), "contact profile"),
        ]
        if ctx.pending:
            rows = "\n".join(f"{p.kind} {_iso(p.at) or ''}: {p.label or ''}" for p in ctx.pending)
            blocks += ["Already on its way:", fence(rows, "pending follow-ups")]
        if ctx.emails:
            blocks.append("Email history, oldest first:")
            for e in ctx.emails:
                head = {"direction": e.direction, "sent_at": _iso(e.sent_at), "opened_at": _iso(e.opened_at), "replied_at": _iso(e.replied_at)}
                blocks += [as_json(head), fence(f"Subject: {e.subject or ''}\n\n{e.body or ''}", f"{e.direction} email body")]
        if ctx.content:
            rows = "\n".join(f"{c.at:%a %Y-%m-%d %H:%M} {c.kind}: {c.title or ''} {c.url or ''}".rstrip() for c in ctx.content)
            blocks += ["Pages read and content downloaded, newest first:", fence(rows, "web activity")]
        if ctx.meetings:
            rows = "\n".join(f"{m.starts_at:%a %Y-%m-%d %H:%M} [{m.status}] {m.title or ''}" for m in ctx.meetings)
            blocks += ["Meetings (past and booked):", fence(rows, "meeting titles")]
        if ctx.touches:
            rows = "\n".join(f"{t.at:%Y-%m-%d} {t.kind}: {t.summary or ''}" for t in ctx.touches)
            blocks += ["Calls, LinkedIn messages and notes:", fence(rows, "call and note summaries")]
        if ctx.resources and ctx.book is None:  # else listed, with the same indices, in the book block
            rows = "\n".join(f"[{i}] {r.title} ({r.kind}{', ' + r.url if r.url else ''}; used by {r.uses})" for i, r in enumerate(ctx.resources))
            blocks += ["Resources you may share (send_resource: give the index):", fence(rows, "resource titles")]
        if ctx.notes:
            blocks += ["Notes on the contact:", fence(ctx.notes, "contact notes")]
        return "\n".join(blocks)

    def offline_decide(self, ctx: Context) -> Decision:
        return offline_plan(ctx)

    def proposals(self, ctx: Context, decision: Decision) -> list[Proposal]:
        rep = ctx.owner or DEFAULT_REP
        sig = read_signals(ctx)
        notes: list[str] = []
        hard = stop_for(ctx, sig)
        # The stop facts and the pending check are the CRM's, not the reasoner's: a plan that ignores
        # them is replaced by the built-in one, so no model reply can reopen a stopped sequence.
        if (hard is not None and decision.plan != "stop") or (hard is None and ctx.pending and decision.plan == "follow_up"):
            why = hard.words if hard is not None else f"{pending_words(ctx)} already"
            notes.append(f"the proposed {decision.plan.replace('_', ' ')} was set aside: {why}")
            decision = offline_plan(ctx)
        channel = decision.channel
        if decision.resource_index is not None and decision.resource_index >= len(ctx.resources):
            notes.append(f"resource {decision.resource_index} is not in the list of {len(ctx.resources)}: sent as a plain email")
            channel = "email" if channel == "send_resource" else channel
        if channel in ("email", "send_resource") and not ctx.has_email:
            channel = "call" if ctx.has_phone else "linkedin_message"
            notes.append(f"no email address on record: turned into a {channel.replace('_', ' ')} task")
        elif channel == "call" and not ctx.has_phone and decision.plan == "follow_up":
            notes.append("no phone number on record: the owner has to find one before calling")
        escalation = None
        outside = outside_references(" ".join([decision.subject or "", decision.message]), _trusted_links(ctx))
        if outside:
            escalation = (f"the drafted message names {', '.join(sorted(set(outside))[:3])}, which the CRM did not provide: "
                          "check it before it goes out")
        actions: list[ProposedAction] = []
        send_at = revisit_at = None
        if decision.plan == "follow_up":
            send_at = self._checked_time(ctx, rep, decision.send_at, notes)
            actions.append(self._follow_up_action(ctx, decision, channel, send_at))
        elif decision.plan == "stop":
            if hard is not None and hard.handoff is not None:
                send_at = first_slot(ctx)
                actions.append(self._handoff(ctx, sig, hard, decision, send_at))
            elif hard is None:
                notes.append("stopped on the reasoner's judgement: no stop condition on record, so no task")
            revisit_at = self._revisit(ctx, decision.revisit_at) if decision.stop_reason == "sequence_exhausted" else None
        else:
            revisit_at = self._revisit(ctx, decision.revisit_at)
        subject_type, subject_id = ("deal", ctx.deal.deal_id) if ctx.deal else ("contact", ctx.contact_id)
        reasoning = decision.reasoning + ("" if not notes else " " + " ".join(n[0].upper() + n[1:] + "." for n in notes))
        record = {**decision.model_dump(mode="json"), "channel": channel if decision.plan == "follow_up" else "none",
                  "stop_reason": hard.reason if hard is not None and decision.plan == "stop" else decision.stop_reason,
                  "send_at": _iso(send_at), "revisit_at": _iso(revisit_at), "overruled": bool(notes)}
        return [Proposal(
            subject_type=subject_type, subject_id=subject_id, subject_label=_label(ctx),
            confidence=decision.confidence, reasoning=reasoning[:4000], actions=tuple(actions), escalation=escalation,
            decision=record,
        )]

    def _follow_up_action(self, ctx: Context, decision: Decision, channel: Channel, send_at: datetime) -> ProposedAction:
        basis = decision.send_time_basis[:200] or f"at {send_at.isoformat(timespec='minutes')}"
        if channel in ("email", "send_resource"):
            subject = one_line(decision.subject or "", SUBJECT_MAX) or "Following up"
            params: dict[str, Any] = {"contact_id": ctx.contact_id, "subject": subject, "body": decision.message[:20000],
                                      "send_after": send_at.isoformat()}
            what = "with a resource " if channel == "send_resource" else ""
            return ProposedAction(type="send_email", params=params, reason=f"follow-up {what}by email, {basis}")
        verb = "Call" if channel == "call" else "Send a LinkedIn message to"
        body = decision.message if channel == "call" else f"Message to send on LinkedIn:\n\n{decision.message}"
        params = {"title": f"{verb} {contact_name(ctx)}"[:500],
                  "description": (body + f"\n\nBest time: {decision.send_time_basis or send_at.isoformat(timespec='minutes')}")[:10000],
                  "contact_id": ctx.contact_id, "due_at": send_at.isoformat(), "kind": "follow_up"}
        return ProposedAction(type="create_task", params=self._owned(ctx, params), reason=f"follow-up by {channel.replace('_', ' ')}")

    def _handoff(self, ctx: Context, sig: Signals, stop: Stop, decision: Decision, due: datetime) -> ProposedAction:
        name = contact_name(ctx)
        if stop.handoff == "reply":
            about = join_words([h.topic.label for h in sig.topics if h.topic.kind != "request"][:3])
            when = day_phrase(sig.reply_at, ctx.as_of) if sig.reply_at else "recently"
            title = (f"Reply to {name}: their email {when} is unanswered" + (f" (about {about})" if about else "")
                     + ("; they asked for a call" if any(h.topic.kind == "request" for h in sig.topics) else ""))
            parts = [stop.words + "."]
            if decision.message.strip():
                parts.append("Suggested answer (check it, then send it yourself):\n\n" + decision.message)
            params = {"title": title[:500], "description": "\n\n".join(parts)[:10000], "contact_id": ctx.contact_id,
                      "due_at": due.isoformat(), "kind": "follow_up"}
            return ProposedAction(type="create_task", params=self._owned(ctx, params), reason="they replied: a person answers")
        if stop.handoff == "status":
            params = {"title": f"{name} asked not to be contacted: mark them unsubscribed"[:500],
                      "description": (stop.words + ". The follow-up sequence is stopped; record the opt-out so no "
                                      "other sequence reaches them.")[:10000],
                      "contact_id": ctx.contact_id, "due_at": due.isoformat(), "kind": "task"}
            return ProposedAction(type="create_task", params=self._owned(ctx, params), reason="the contact asked us to stop")
        deal = one_line(ctx.deal.name, 120) if ctx.deal else name
        params = {"title": f"{deal}: no answer to {ctx.unanswered_touches} follow-ups, keep it open?"[:500],
                  "description": (stop.words + ". The follow-up sequence is stopped; decide whether the deal is still "
                                  "alive (try another contact at the account) or close it as lost.")[:10000],
                  "contact_id": ctx.contact_id, "due_at": due.isoformat(), "kind": "task"}
        return ProposedAction(type="create_task", params=self._owned(ctx, params), reason="the sequence ran out of touches")

    def _owned(self, ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        if ctx.deal:
            params["deal_id"] = ctx.deal.deal_id
        if ctx.owner and ctx.owner.user_id:
            params["owner_id"] = ctx.owner.user_id
        return params

    def _revisit(self, ctx: Context, wanted: datetime | None) -> datetime:
        wanted = _naive(wanted) if wanted else None
        lo, hi = ctx.as_of + timedelta(hours=1), ctx.as_of + timedelta(days=90)
        if wanted is None:
            return ctx.as_of + timedelta(days=1)
        return min(max(wanted, lo), hi)

    def _checked_time(self, ctx: Context, rep: RepHours, wanted: datetime | None, notes: list[str]) -> datetime:
        """The reasoner's time if it is ahead, within two weeks and in working hours; else the learned slot."""
        fallback = send_slot(ctx).at
        if wanted is None:
            return fallback
        wanted = _naive(wanted)
        if wanted < ctx.as_of:
            notes.append(f"the proposed time {wanted:%Y-%m-%d %H:%M} UTC is in the past: moved to {fallback:%a %H:%M} UTC")
            return fallback
        if wanted > ctx.as_of + timedelta(days=SEND_HORIZON_DAYS * 2):
            notes.append(f"the proposed time {wanted:%Y-%m-%d} is too far out: moved to {fallback:%a %H:%M} UTC")
            return fallback
        if not in_working_hours(rep, wanted):
            notes.append(f"the proposed time {wanted:%a %H:%M} UTC is outside {rep.name}'s working hours: moved to {fallback:%a %H:%M} UTC")
            return fallback
        return wanted

    def is_sensitive(self, ctx: Context) -> bool:
        return ctx.sensitive

    def completeness(self, ctx: Context) -> float:
        timing_known = (ctx.pattern.engagement.samples >= MIN_PATTERN_SAMPLES or ctx.owner_pattern.samples >= MIN_PATTERN_SAMPLES
                        or (ctx.playbook is not None and ctx.playbook.touches >= MIN_EVIDENCE))
        present = [ctx.owner is not None, ctx.has_email or ctx.has_phone,
                   bool(ctx.emails or ctx.content or ctx.meetings or ctx.touches),
                   ctx.deal is not None or ctx.lifecycle_stage is not None, timing_known]
        return round(sum(present) / len(present), 3)

    def agrees(self, a: Decision, b: Decision) -> bool:
        if a.plan != b.plan:
            return False
        if a.plan == "stop":
            return a.stop_reason == b.stop_reason
        email_like = {"email", "send_resource"}
        return a.channel == b.channel or (a.channel in email_like and b.channel in email_like)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment else None


AGENT = FollowUpAgent()

__all__ = ["AGENT", "Context", "Decision", "FollowUpAgent"]
