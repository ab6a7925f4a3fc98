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

This module also holds what the meeting agent shares with it: the owner's working hours, the
hour/weekday histograms and slot picking, and the objection/question rules.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.base import Frozen, Prompt, Proposal, ProposedAction

Channel = Literal["email", "call", "linkedin_message", "send_resource", "none"]

EMAIL_LEAD_MINUTES = 15      # an email is never scheduled sooner than this after the run
SEND_HORIZON_DAYS = 7
MIN_PATTERN_SAMPLES = 3      # fewer opens/replies than this: the owner's mid-morning is used instead
DEFAULT_LOCAL_HOUR = 10.0
LATE_STAGES = ("proposal", "negotiation", "contract", "closing", "commit")
LATE_STAGE_QUIET_DAYS = 10
UNANSWERED_SWITCH = 3        # this many unanswered emails in a row: change channel
SUBJECT_MAX = 200
LINKEDIN_MAX = 600


# == shared: working hours, histograms, slots =====================================================
class RepHours(Frozen):
    """A rep and the hours they work, in their own time zone, [start, end)."""

    user_id: int
    name: str
    timezone: str = "UTC"
    work_start_hour: int = Field(default=9, ge=0, le=23)
    work_end_hour: int = Field(default=17, ge=1, le=24)


class TimeHistogram(Frozen):
    """How often something happened per UTC hour of day and per UTC weekday (Monday = 0)."""

    hours: list[int] = Field(default_factory=lambda: [0] * 24)
    weekdays: list[int] = Field(default_factory=lambda: [0] * 7)
    samples: int = 0

    @field_validator("hours")
    @classmethod
    def _24(cls, v: list[int]) -> list[int]:
        if len(v) != 24:
            raise ValueError("hours needs 24 counts, one per UTC hour")
        return v

    @field_validator("weekdays")
    @classmethod
    def _7(cls, v: list[int]) -> list[int]:
        if len(v) != 7:
            raise ValueError("weekdays needs 7 counts, Monday first")
        return v


def histogram(moments: Iterable[datetime]) -> TimeHistogram:
    hours, weekdays, n = [0] * 24, [0] * 7, 0
    for m in moments:
        hours[m.hour] += 1
        weekdays[m.weekday()] += 1
        n += 1
    return TimeHistogram(hours=hours, weekdays=weekdays, samples=n)


class Interval(Frozen):
    starts_at: datetime
    ends_at: datetime


class Slot(NamedTuple):
    at: datetime   # naive UTC
    basis: str     # why this time, in words


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)


def to_utc(local_naive: datetime, zone: ZoneInfo) -> datetime:
    return local_naive.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _hours_of(rep: RepHours) -> tuple[int, int]:
    # A rep record with an empty or inverted day would leave no slot at all: use office hours.
    if rep.work_end_hour <= rep.work_start_hour:
        return 9, 17
    return rep.work_start_hour, rep.work_end_hour


def working_windows(rep: RepHours, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The rep's working hours between `start` and `end` (naive UTC), weekdays of their own zone."""
    zone = zone_of(rep.timezone)
    first, last = to_local(start, zone).date(), to_local(end, zone).date()
    lo_hour, hi_hour = _hours_of(rep)
    out = []
    day = first
    while day <= last:
        if day.weekday() < 5:
            midnight = datetime.combine(day, time(0))
            lo = max(to_utc(midnight + timedelta(hours=lo_hour), zone), start)
            hi = min(to_utc(midnight + timedelta(hours=hi_hour), zone), end)
            if hi > lo:
                out.append((lo, hi))
        day += timedelta(days=1)
    return out


def in_working_hours(rep: RepHours, moment: datetime, minutes: int = 0) -> bool:
    end = moment + timedelta(minutes=minutes)
    return any(lo <= moment and end <= hi for lo, hi in working_windows(rep, moment - timedelta(days=1), end + timedelta(days=1)))


def _ceil(moment: datetime, step_minutes: int) -> datetime:
    base = moment.replace(second=0, microsecond=0)
    if base < moment:
        base += timedelta(minutes=1)
    over = base.minute % step_minutes
    return base + timedelta(minutes=(step_minutes - over) % step_minutes)


def overlaps(start: datetime, minutes: int, busy: Sequence[Interval], buffer_minutes: int = 0) -> bool:
    end = start + timedelta(minutes=max(minutes, 1))
    pad = timedelta(minutes=buffer_minutes)
    return any(start < b.ends_at + pad and b.starts_at - pad < end for b in busy)


def candidate_slots(rep: RepHours, after: datetime, *, horizon_days: int, minutes: int = 0,
                    busy: Sequence[Interval] = (), buffer_minutes: int = 0, step_minutes: int = 30) -> list[datetime]:
    """Every :00/:30 start inside the rep's working hours after `after` that does not hit `busy`."""
    out = []
    length = timedelta(minutes=minutes)
    for lo, hi in working_windows(rep, after, after + timedelta(days=horizon_days)):
        t = _ceil(lo, step_minutes)
        while t + length <= hi and (minutes > 0 or t < hi):
            if not overlaps(t, minutes, busy, buffer_minutes):
                out.append(t)
            t += timedelta(minutes=step_minutes)
    return out


def _circular(a: int, b: int, period: int) -> int:
    d = abs(a - b) % period
    return min(d, period - d)


def hour_weight(hist: TimeHistogram, hour: int) -> float:
    """Counts near this UTC hour, each halved per hour away: a preferred hour out of reach still
    pulls the choice toward the closest reachable one."""
    return sum(c * 0.5 ** _circular(hour, h, 24) for h, c in enumerate(hist.hours) if c)


def describe_histogram(hist: TimeHistogram, what: str) -> str:
    if hist.samples == 0:
        return f"no {what} on record"
    top = max(range(24), key=lambda h: (hist.hours[h], -h))
    near = sum(hist.hours[(top + d) % 24] for d in (-1, 0, 1))
    peak = max(hist.weekdays)
    days = [WEEKDAYS[d] + "s" for d in range(7) if hist.weekdays[d] and hist.weekdays[d] * 2 >= peak]
    day_text = f", most on {_join(days[:3])}" if days else ""
    return f"{near} of {hist.samples} {what} were around {top:02d}:00 UTC{day_text}"


def best_slot(rep: RepHours, after: datetime, hist: TimeHistogram | None, *, what: str, horizon_days: int = SEND_HORIZON_DAYS,
              minutes: int = 0, busy: Sequence[Interval] = (), buffer_minutes: int = 0,
              fallback: TimeHistogram | None = None, fallback_what: str = "",
              default_local_hour: float = DEFAULT_LOCAL_HOUR, daily_decay: float = 0.8) -> Slot | None:
    """The slot in the rep's free working hours that best matches when this contact acts.

    Score = closeness to the contact's hours x how often they act on that weekday, discounted by
    `daily_decay` per day of waiting. With too little history, the rep's local mid-morning.
    """
    slots = candidate_slots(rep, after, horizon_days=horizon_days, minutes=minutes, busy=busy, buffer_minutes=buffer_minutes)
    if not slots:
        return None
    source, source_what = None, what
    if hist is not None and hist.samples >= MIN_PATTERN_SAMPLES:
        source = hist
    elif fallback is not None and fallback.samples >= MIN_PATTERN_SAMPLES:
        source, source_what = fallback, fallback_what
    zone = zone_of(rep.timezone)

    def score(t: datetime) -> float:
        decay = daily_decay ** ((t - after).total_seconds() / 86400)
        if source is not None:
            return (hour_weight(source, t.hour) + 0.05) * (source.weekdays[t.weekday()] + 0.5) * decay
        local = to_local(t, zone)
        return decay / (1.0 + abs(local.hour + local.minute / 60 - default_local_hour))

    best = max(slots, key=lambda t: (score(t), -t.timestamp()))
    local = to_local(best, zone)
    when = f"{WEEKDAYS[best.weekday()]} {best:%d %b %H:%M} UTC ({local:%H:%M} {rep.timezone} for {rep.name})"
    if source is not None:
        basis = f"{when}: {describe_histogram(source, source_what)}"
    else:
        basis = (f"{when}: too little history of {what} ({hist.samples if hist else 0}), so the first "
                 f"mid-morning slot in {rep.name}'s working hours")
    return Slot(best, basis)


DEFAULT_REP = RepHours(user_id=0, name="the owner")


# == shared: what people write ====================================================================
class Topic(NamedTuple):
    key: str
    kind: Literal["objection", "question", "request"]
    label: str                    # "budget and price"
    pattern: re.Pattern[str]
    answer: str                   # how a follow-up responds; states no product fact it cannot know
    resource_words: tuple[str, ...]
    talking_point: str            # for a call


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


TOPICS: tuple[Topic, ...] = (
    Topic("price", "objection", "budget and price",
          _rx(r"\b(budget(ed)?|too expensive|expensive|cheaper|discount|flexibility|above what we|over our|price is|cost too)\b"),
          "I hear you on budget. Two options that usually help: a smaller starting scope that grows with you, or a "
          "different term and billing schedule. I can put both side by side so you can take them to finance.",
          ("roi", "business case", "calculator"),
          "Budget: offer a smaller starting scope or a different term; ask what number finance can approve."),
    Topic("pricing", "question", "pricing",
          _rx(r"\b(pricing|price|plans?|tiers?|billing|cost|seat minimums?|how much)\b"),
          "On pricing: it depends on the scope and team size you described, so I will put the options for your "
          "team in writing rather than guess here.",
          ("pricing", "plans"),
          "Pricing: confirm team size and scope, then send the options in writing."),
    Topic("competitor", "objection", "the other vendors you are comparing",
          _rx(r"\b(also evaluating|evaluating|comparing|competitor|incumbent|already pay for|went with|other vendors?)\b"),
          "Comparing options is the right call. I can share how teams who made the same comparison decided, and "
          "walk through the differences that mattered to them.",
          ("buyer's guide", "comparison", "case stud", "customer stor"),
          "Competition: ask what matters most in the comparison; offer references from teams who compared the same."),
    Topic("security", "question", "security and compliance",
          _rx(r"\b(soc ?2|security (review|questionnaire|team|report)|penetration test|pen test|saml|sso|single sign-on|okta|iso ?27001)\b"),
          "I will send over our security documentation, including the SOC 2 report, and can set up 30 minutes with "
          "our security team for your IT lead.",
          ("security", "soc 2", "trust", "compliance", "whitepaper"),
          "Security: confirm which documents IT needs (SOC 2 report, questionnaire, SSO setup) and offer a session with our security team."),
    Topic("data_residency", "question", "data residency",
          _rx(r"\b(gdpr|data residency|hosted in the eu|eu hosting|eu region|frankfurt|where (our|the) data is stored|dpa)\b"),
          "On where your data lives: I will send the hosting and data-processing details in writing, so your legal "
          "team can check them against your requirements.",
          ("security", "gdpr", "data processing", "whitepaper", "compliance"),
          "Data residency: confirm the region they need and send the hosting and DPA details."),
    Topic("integration", "question", "integrations",
          _rx(r"\b(integrat\w*|connector|netsuite|hubspot|salesforce|snowflake|bigquery|warehouse|api)\b"),
          "On the integration question: I can show exactly how it connects to your stack with your own objects, "
          "or send the integration guide first if that is easier to share internally.",
          ("integration", "salesforce", "hubspot", "snowflake", "connector", "api"),
          "Integrations: ask which systems must connect and offer a technical walkthrough."),
    Topic("timing", "objection", "timing",
          _rx(r"\b(hiring freeze|next quarter|revisit|not a priority|in a few months|later this year|q[1-4]|timing)\b"),
          "Understood on timing. If it helps, I can put together a short plan you can keep ready for when budget "
          "opens, so nothing has to start from scratch.",
          ("playbook", "template", "benchmark"),
          "Timing: ask when the budget cycle opens and who decides; agree on a date to reconnect."),
    Topic("legal", "objection", "contract terms",
          _rx(r"\b(legal|auto-?renewal|liability cap|redlines?|contract terms|msa|order form)\b"),
          "On the contract points: I have asked our legal team for the options on those clauses and will come back "
          "with them in writing.",
          (),
          "Contract: list the open clauses and agree who from each legal team joins."),
    Topic("build_vs_buy", "objection", "building it in-house",
          _rx(r"\b(build (this|it) (ourselves|in-house|in our)|bi tool|in-house)\b"),
          "On building it in-house: I can share a short comparison of what it takes to build and run versus buy, "
          "which you could pass on to your CFO.",
          ("roi", "buyer's guide", "business case", "calculator"),
          "Build vs buy: ask what the in-house estimate includes; offer the cost comparison for the CFO."),
    Topic("onboarding", "question", "onboarding",
          _rx(r"\b(onboarding|implementation|roll-?out|how long does .{0,40}take|go live)\b"),
          "On onboarding: I can walk you through a typical rollout plan for a team your size, step by step.",
          ("getting started", "playbook", "onboarding", "template"),
          "Onboarding: ask about team size and target go-live date; outline the rollout plan."),
    Topic("trial", "question", "a trial",
          _rx(r"\b(free trial|trial|sandbox|pilot|test it)\b"),
          "On trying it first: I can set up a sandbox with data shaped like yours so your team can test it properly.",
          ("getting started", "docs"),
          "Trial: agree on success criteria and who tests; offer a sandbox."),
    Topic("meeting_request", "request", "a call",
          _rx(r"\b(set up a call|schedule a (call|meeting)|book a (call|meeting|demo)|call next week|send (me |us )?an invite|works for us)\b"),
          "Happy to set that up.",
          (),
          "They asked for a call: book it while you have them."),
)

OPT_OUT = _rx(r"\b(remove me|unsubscribe|stop (emailing|contacting|sending)|do not (contact|email)|don't (contact|email)|"
              r"not interested|take me off)\b")
WRONG_PERSON = _rx(r"\b(not the right person|wrong person|talk to our \w+ team|you may want to talk to)\b")
# What a quoted sentence must not carry: addresses, links, markup, text aimed at a machine.
_UNQUOTABLE = _rx(r"@|https?://|www\.|<|>|\bignore\b|instruction|assistant|\bsystem\b|prompt|\bAI\b|price list|customer contacts")
_GREETING = _rx(r"^(hi|hello|hey|dear|good (morning|afternoon))\b.{0,40},?$")
_SIGNOFF = _rx(r"^(thanks|thank you|best|regards|kind regards|cheers|sincerely)\b.{0,20},?$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NAME_OK = re.compile(r"^[^\W\d_][\w .'\-]{0,39}$")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_LINK = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)


def body_sentences(body: str | None) -> list[str]:
    """The sentences someone wrote: greeting, sign-off, signature and quoted replies left out."""
    if not body:
        return []
    # An HTML comment is invisible to the person reading the email: whatever it says is not theirs.
    body = _HTML_COMMENT.sub("\n", body)
    lines = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line or line.startswith(">"):
            continue
        if _SIGNOFF.match(line):
            break  # everything after "Thanks," is the signature
        if _GREETING.match(line):
            continue
        lines.append(line)
    text = " ".join(lines)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def quotable(sentence: str, limit: int = 200, minimum: int = 8) -> str | None:
    """The sentence if it is safe to quote back (short, no address, link or machine-aimed text)."""
    s = " ".join(sentence.split())
    if not minimum <= len(s) <= limit or _UNQUOTABLE.search(s):
        return None
    return s


class TopicHit(NamedTuple):
    topic: Topic
    sentence: str | None   # the sentence it was found in, when it is safe to quote


_MACHINE_AIMED = _rx(r"\bignore\b|instruction|assistant|\bsystem\s*:|prompt|<!--|-->")
_KIND_ORDER = {"objection": 0, "question": 1, "request": 2}


def detect_topics(text: str | None) -> list[TopicHit]:
    """Objections, then questions, then requests in a message, each topic once, in order of appearance.

    A sentence written at a machine ("ignore previous instructions...") is not read for topics at all.
    """
    hits: dict[str, tuple[int, TopicHit]] = {}
    for position, sentence in enumerate(body_sentences(text)):
        if _MACHINE_AIMED.search(sentence):
            continue
        for topic in TOPICS:
            if not topic.pattern.search(sentence):
                continue
            if topic.key == "pricing" and "price" in hits:
                continue  # the budget objection already covers it
            quoted = quotable(sentence)
            if topic.key in hits:
                # The question itself says more than the sentence that set it up: quote that one.
                first, hit = hits[topic.key]
                if quoted and quoted.endswith("?") and not (hit.sentence or "").endswith("?"):
                    hits[topic.key] = (first, TopicHit(topic, quoted))
                continue
            hits[topic.key] = (position, TopicHit(topic, quoted))
    ordered = sorted(hits.values(), key=lambda ph: (_KIND_ORDER[ph[1].topic.kind], ph[0]))
    return [hit for _, hit in ordered]


def opted_out(text: str | None) -> str | None:
    for sentence in body_sentences(text):
        if OPT_OUT.search(sentence):
            return quotable(sentence) or "asked us to stop"
    return None


def first_name_of(name: str | None) -> str | None:
    if not name:
        return None
    clean = " ".join(name.split())
    return clean if _NAME_OK.match(clean) else None


def day_phrase(moment: datetime, now: datetime) -> str:
    """'earlier today', 'yesterday', 'on Tuesday' (this week), 'on 3 November' (older)."""
    days = (now.date() - moment.date()).days
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"on {WEEKDAYS[moment.weekday()]}"
    return f"on {moment.day} {moment:%B}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def outside_references(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """Email addresses and links in text that the context did not provide."""
    known = {a.lower() for a in allowed if a}
    found = [m.group(0) for m in _ADDRESS.finditer(text)] + [m.group(0).rstrip(".,)") for m in _LINK.finditer(text)]
    return [f for f in found if f.lower() not in known]


# == context ========================================================================================
class EmailItem(Frozen):
    email_id: int
    direction: Literal["inbound", "outbound"]
    sent_at: datetime
    subject: str | None = None     # untrusted
    body: str | None = None        # untrusted
    opened_at: datetime | None = None
    replied_at: datetime | None = None


class ContentItem(Frozen):
    kind: Literal["page_view", "content_download", "form_submit", "email_clicked"]
    at: datetime
    url: str | None = None         # untrusted (as logged)
    title: str | None = None       # page title or asset name, untrusted


class MeetingItem(Frozen):
    meeting_id: int | None = None  # None: a meeting known only from the activity log
    title: str | None = None
    starts_at: datetime
    status: str = "completed"


class TouchItem(Frozen):
    kind: Literal["call", "linkedin_message", "note", "email_sent"]
    at: datetime
    summary: str | None = None     # untrusted


class DealRef(Frozen):
    deal_id: int
    name: str
    stage: str
    amount: float | None = None
    currency: str = "USD"
    days_in_stage: float | None = None
    expected_close: date | None = None


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


# -- what the team's own history taught ------------------------------------------------------------
RESPONSE_DAYS = 7           # a touch "got a response" when the contact replied, met or picked up within this
PLAYBOOK_DAYS = 365
MIN_EVIDENCE = 20           # touches a rate needs before it may steer a decision
PRIOR_WEIGHT = 10           # each rate is shrunk toward the team's overall rate by this many pseudo-touches
BETTER_BY = 1.25            # a later gap or another channel must beat the current one by 25 % (and 2 points)
BETTER_BY_POINTS = 0.02
MAX_ATTEMPTS = 5            # from the 5th unanswered touch on, the sequence stops unless history says it pays
EXHAUSTED_RATE = 0.05
HARD_MAX_ATTEMPTS = 8       # never more than this many unanswered touches in a row, whatever history says
WAIT_MAX_DAYS = 14
OUR_KINDS = ("email", "call", "linkedin_message")
FOLLOW_UP_MIN_GAP = 3       # days of quiet before a touch counts as a follow-up (not a turn in a live conversation)
GAP_BUCKETS: tuple[tuple[float, float | None, str], ...] = (
    (0, 3, "<3"), (3, 5, "3-4"), (5, 8, "5-7"), (8, 14, "8-13"), (14, 30, "14-29"), (30, None, "30+"),
)
KIND_WORDS = {"email": "emails", "call": "calls", "linkedin_message": "LinkedIn messages"}


class Rate(Frozen):
    sent: int = 0
    responded: int = 0


class Playbook(Frozen):
    """Response rates of the team's own past touches (emails, calls, LinkedIn messages).

    A touch counts as answered when the contact replied, met or picked up the phone within
    `response_days`. Only follow-ups count: touches after at least FOLLOW_UP_MIN_GAP quiet days (or
    the very first touch), since a turn inside a live conversation is answered anyway. `attempt`
    is the touch's place in a run of unanswered touches (1 = the first since the contact last
    responded); `gap` the days since the previous touch either way.
    """

    window_days: int = PLAYBOOK_DAYS
    response_days: int = RESPONSE_DAYS
    touches: int = 0
    responded: int = 0
    by_kind: dict[str, Rate] = Field(default_factory=dict)
    by_attempt: dict[str, Rate] = Field(default_factory=dict)        # "1" .. "4", "5+"
    by_gap: dict[str, Rate] = Field(default_factory=dict)            # GAP_BUCKETS labels
    by_kind_attempt: dict[str, Rate] = Field(default_factory=dict)   # "email:1", "call:3+", ...

    @property
    def base_rate(self) -> float:
        return self.responded / self.touches if self.touches else 0.0

    def smoothed(self, rate: Rate | None) -> float:
        rate = rate or Rate()
        return (rate.responded + PRIOR_WEIGHT * self.base_rate) / (rate.sent + PRIOR_WEIGHT)

    def evidence(self, table: str, key: str) -> tuple[float, Rate] | None:
        """(smoothed rate, counts) when the table has enough touches under `key`, else None."""
        rate = getattr(self, table).get(key)
        if rate is None or rate.sent < MIN_EVIDENCE:
            return None
        return self.smoothed(rate), rate


class TouchEvent(NamedTuple):
    at: datetime
    kind: Literal["email", "call", "linkedin_message", "reply", "meeting"]
    connected: bool = False   # a call that reached the person: a conversation, so a response in itself


def gap_bucket(days: float) -> str:
    for lo, hi, label in GAP_BUCKETS:
        if days >= lo and (hi is None or days < hi):
            return label
    return GAP_BUCKETS[0][2]


def _gap_lo(label: str) -> float:
    return next(lo for lo, _, name in GAP_BUCKETS if name == label)


def attempt_bucket(n: int) -> str:
    return f"{MAX_ATTEMPTS}+" if n >= MAX_ATTEMPTS else str(max(n, 1))


def kind_attempt_bucket(kind: str, n: int) -> str:
    return f"{kind}:{'3+' if n >= 3 else max(n, 1)}"


def run_state(events: Sequence[TouchEvent]) -> tuple[int, datetime | None]:
    """(our unanswered touches in a row at the end, when they last responded) for a timeline."""
    unanswered, responded_at = 0, None
    for e in sorted(events, key=lambda e: e.at):
        if e.kind in OUR_KINDS and not e.connected:
            unanswered += 1
        else:
            unanswered, responded_at = 0, e.at
    return unanswered, responded_at


def learn_playbook(timelines: Iterable[Sequence[TouchEvent]], as_of: datetime, window_days: int = PLAYBOOK_DAYS) -> Playbook:
    """Count, for every touch of ours in the window, whether the contact responded within RESPONSE_DAYS.

    Touches younger than RESPONSE_DAYS are left out: their answer may still come, and counting
    them as unanswered would teach that recent follow-ups fail.
    """
    since, mature = as_of - timedelta(days=window_days), as_of - timedelta(days=RESPONSE_DAYS)
    tables: dict[str, dict[str, list[int]]] = {"by_kind": {}, "by_attempt": {}, "by_gap": {}, "by_kind_attempt": {}}
    total = [0, 0]

    def count(table: str, key: str, hit: bool) -> None:
        cell = tables[table].setdefault(key, [0, 0])
        cell[0] += 1
        cell[1] += hit

    for timeline in timelines:
        events = sorted((e for e in timeline if e.at <= as_of), key=lambda e: e.at)
        attempts, previous = 0, None
        for i, e in enumerate(events):
            if e.kind in OUR_KINDS:
                attempts += 1
                gap = (e.at - previous).total_seconds() / 86400 if previous is not None else None
                # Only follow-ups are counted: a touch inside a live conversation is answered anyway.
                if since <= e.at <= mature and (gap is None or gap >= FOLLOW_UP_MIN_GAP):
                    limit = e.at + timedelta(days=RESPONSE_DAYS)
                    hit = e.connected or any(r.kind not in OUR_KINDS or r.connected
                                             for r in _between(events, i + 1, e.at, limit))
                    total[0] += 1
                    total[1] += hit
                    count("by_kind", e.kind, hit)
                    count("by_attempt", attempt_bucket(attempts), hit)
                    count("by_kind_attempt", kind_attempt_bucket(e.kind, attempts), hit)
                    if gap is not None:
                        count("by_gap", gap_bucket(gap), hit)
                if e.connected:
                    attempts = 0
            else:
                attempts = 0
            previous = e.at
    order = {label: i for i, (_, _, label) in enumerate(GAP_BUCKETS)}
    return Playbook(window_days=window_days, touches=total[0], responded=total[1],
                    **{t: {k: Rate(sent=v[0], responded=v[1]) for k, v in sorted(cells.items(), key=lambda kv: (order.get(kv[0], 0), kv[0]))}
                       for t, cells in tables.items()})


def _between(events: Sequence[TouchEvent], start: int, after: datetime, until: datetime) -> Iterator[TouchEvent]:
    for e in events[start:]:
        if e.at > until:
            return
        if e.at > after:
            yield e


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def rate_words(pb: Playbook, table: str, key: str, what: str) -> str:
    rate = getattr(pb, table).get(key) or Rate()
    return f"{what} got a response {_pct(pb.smoothed(rate))} of the time ({rate.responded} of {rate.sent})"


def playbook_summary(pb: Playbook | None) -> list[str]:
    """The learned rates as lines a person (or a model) reads."""
    if pb is None or pb.touches == 0:
        return ["no past touches to learn from yet"]
    lines = [f"{pb.touches} touches in the last {pb.window_days} days, {_pct(pb.base_rate)} answered within {pb.response_days} days"]
    for table, title in (("by_kind", "by channel"), ("by_attempt", "by place in an unanswered run"),
                         ("by_gap", "by days since the previous touch"), ("by_kind_attempt", "by channel and place in the run")):
        cells = getattr(pb, table)
        if cells:
            lines.append(f"{title}: " + "; ".join(f"{k} {_pct(pb.smoothed(r))} ({r.responded}/{r.sent})" for k, r in cells.items()))
    return lines


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


def _system() -> str:
    try:
        from agents.llm import SYSTEM_DATA_RULE
    except ImportError:  # pragma: no cover - the provider package ships with the agents
        return SYSTEM
    return SYSTEM + "\n" + SYSTEM_DATA_RULE


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
    name = _name(ctx)
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
        said = (f"the team's touches at that point got a response only {_pct(rate)} of the time "
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
    return _join([one(p) for p in ctx.pending[:3]])


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


def _days(value: float) -> str:
    n = int(value)
    return f"{n} day{'s' if n != 1 else ''}"


def timing(ctx: Context, sig: Signals) -> Timing:
    """Now, or later: the gap since the last touch against the gaps that got answers in the team's history."""
    gap = ctx.days_since_last_contact
    if gap is None:
        return Timing(True, "never contacted: the first touch goes out now")
    quiet = f"quiet for {_days(gap)}"
    intent = _fresh_intent(ctx, sig)
    if intent is not None:
        return Timing(True, f"{quiet}, and they showed intent since ({_content_words(intent, ctx.as_of)}): strike now")
    if _late_stage(ctx):
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
        if lo <= _gap_lo(current) or lo - gap > WAIT_MAX_DAYS:
            continue
        ev = pb.evidence("by_gap", label)
        if ev and ev[0] > best[0]:
            best_label, best = label, ev
    if best_label != current and best[0] >= here[0] * BETTER_BY and best[0] - here[0] >= BETTER_BY_POINTS:
        last = _last_touch_at(ctx) or ctx.as_of
        revisit = max(ctx.as_of, last + timedelta(days=_gap_lo(best_label))).replace(second=0, microsecond=0)
        words = (f"{quiet}: the team's follow-ups {best_label} days after the last touch got a response "
                 f"{_pct(best[0])} of the time ({best[1].responded} of {best[1].sent}), against {_pct(here[0])} "
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
    if _late_stage(ctx) and quiet is not None and quiet >= LATE_STAGE_QUIET_DAYS and ctx.has_phone:
        return "call", f"a {ctx.deal.stage} deal silent for {_days(quiet)} deserves a call", True
    n = ctx.unanswered_touches + 1
    pb = ctx.playbook
    if ctx.has_phone and pb is not None and n >= 2:
        email = pb.evidence("by_kind_attempt", kind_attempt_bucket("email", n))
        call = pb.evidence("by_kind_attempt", kind_attempt_bucket("call", n))
        if email and call:
            place = kind_attempt_bucket("email", n).split(":")[1]
            compare = (f"at touch {place} of an unanswered run the team's calls got a response {_pct(call[0])} of the time "
                       f"({call[1].responded} of {call[1].sent}), emails {_pct(email[0])} ({email[1].responded} of {email[1].sent})")
            if call[0] >= email[0] * BETTER_BY and call[0] - email[0] >= BETTER_BY_POINTS:
                return "call", compare, True
            return "email", compare, True
    stalled = ctx.pattern.unanswered_in_a_row >= UNANSWERED_SWITCH and ctx.pattern.opened_in_a_row == 0
    if stalled and ctx.has_phone:
        return "call", f"{ctx.pattern.unanswered_in_a_row} emails in a row went unopened", False
    if stalled and ctx.has_linkedin:
        return "linkedin_message", f"{ctx.pattern.unanswered_in_a_row} emails in a row went unopened and no phone number", False
    return "email", "email is working with this contact" if ctx.pattern.opened_in_a_row else "email first", False


# == offline reasoning: the words ===================================================================
_GENERIC_PAGES = re.compile(r"^/?$|^/(about|careers|jobs|blog/?$|privacy|terms|login|signup|contact)\b", re.IGNORECASE)
_DEMO_FORM = re.compile(r"demo|contact[-_ ]?sales|talk[-_ ]?to[-_ ]?sales|book|trial|quote", re.IGNORECASE)
# What a page or asset is about -> one sentence offering the next useful thing (no product claims).
CONTENT_OFFERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_rx(r"pric|plans?\b"), "If it helps, I can put the options for a team your size in writing, so you have the numbers in one place."),
    (_rx(r"secur|soc ?2|trust|complian|gdpr"), "If your IT or security team has a checklist, I can send our security documentation and answer it point by point."),
    (_rx(r"integrat|salesforce|hubspot|snowflake|connector|api\b|docs"), "If it helps, I can show how it connects to your own stack, with your objects and fields."),
    (_rx(r"case[- ]stud|customer stor"), "Happy to share how that team set it up, or a similar story from your industry."),
    (_rx(r"roi|calculator|business case"), "Happy to go through the numbers with you, with your own inputs."),
    (_rx(r"benchmark|report"), "Happy to walk you through how your numbers compare with the teams in it."),
    (_rx(r"forecast"), "If useful, I can show how teams like yours run their weekly forecast with it."),
    (_rx(r"demo"), "I can set up a session around your own reports."),
    (_rx(r"playbook|template|guide|checklist"), "If useful, I can show how other teams put it into practice."),
)
DEFAULT_OFFER = "If useful, I can show how teams like yours put this into practice."
_SECTION_NAMES = {"pricing": "pricing page", "security": "security page", "trust": "trust page", "integrations": "integrations page",
                  "product": "product page", "case-studies": "customer stories", "docs": "documentation", "demo": "demo page"}


def offer_for(*texts: str | None) -> str:
    joined = " ".join(t for t in texts if t)
    for rx, offer in CONTENT_OFFERS:
        if rx.search(joined):
            return offer
    return DEFAULT_OFFER


def _page_name(item: ContentItem) -> str:
    """A page as a person names it: its title, else its address in words ('/pricing' -> 'pricing page')."""
    title = one_line(item.title or "", 80)
    if title and quotable(title, 80, 2):
        return title if title.lower().endswith(("page", "stories", "documentation")) else f"{title} page"
    path = one_line(item.url or "", 120).split("?")[0].strip("/")
    if not path or not quotable(path, 120, 2):
        return "website"
    parts = path.split("/")
    if len(parts) == 1 and parts[0].lower() in _SECTION_NAMES:
        return _SECTION_NAMES[parts[0].lower()]
    words = " ".join(parts[-1].replace("-", " ").replace("_", " ").split())
    if parts[0].lower() == "case-studies":
        return f"customer story \u201c{words[:1].upper() + words[1:]}\u201d"
    if parts[0].lower() == "blog":
        return f"article \u201c{words[:1].upper() + words[1:]}\u201d"
    return f"{words} page" if words else "website"


def _asset_name(item: ContentItem) -> str | None:
    name = one_line(item.title or item.url or "", 100)
    return name if quotable(name, 100, 2) else None


def _content_words(item: ContentItem, now: datetime) -> str:
    when = day_phrase(item.at, now)
    if item.kind == "content_download":
        return f"downloaded the {_asset_name(item) or 'a resource'} {when}"
    if item.kind == "form_submit":
        return f"filled in a form {when}"
    return f"read the {_page_name(item)} {when}"


def _specific_pages(items: list[ContentItem]) -> list[ContentItem]:
    """Pages worth mentioning: not the home page or careers; each page once, newest first."""
    seen, out = set(), []
    for p in items:
        if p.kind != "page_view":
            continue
        name = _page_name(p)
        key = name.lower()
        if key in seen or name == "website" or (p.url and _GENERIC_PAGES.match(p.url)):
            continue
        seen.add(key)
        out.append(p)
    return out


def _of_kind(items: list[ContentItem], kind: str) -> list[ContentItem]:
    return [i for i in items if i.kind == kind]


def _resource_for(ctx: Context, topics: list[TopicHit]) -> int | None:
    """The listed resource (with a link) that speaks to what they asked, if any."""
    already = {(c.title or "").lower() for c in ctx.content if c.kind == "content_download"}
    ranked = sorted(range(len(ctx.resources)), key=lambda i: (-ctx.resources[i].uses, i))
    # Only a resource with a link can be sent; one known by name alone would be an empty promise.
    usable = [i for i in ranked if ctx.resources[i].title.lower() not in already and ctx.resources[i].url
              and ctx.resources[i].url.lower().startswith(("http://", "https://")) and quotable(ctx.resources[i].title, 120, 2)]
    for hit in topics:  # the main point of their email first, then the others
        for i in usable:
            if any(w in ctx.resources[i].title.lower() for w in hit.topic.resource_words):
                return i
    return None


def _stage_key(ctx: Context) -> str:
    return (ctx.deal.stage if ctx.deal else ctx.lifecycle_stage or "lead").lower()


def _late_stage(ctx: Context) -> bool:
    return ctx.deal is not None and any(s in ctx.deal.stage.lower() for s in LATE_STAGES)


def _day_options(slot: datetime, rep: RepHours) -> str:
    """'Tuesday or Wednesday': the two working days after the send time, in the owner's zone."""
    zone = zone_of(rep.timezone)
    day = to_local(slot, zone).date()
    picks: list[str] = []
    while len(picks) < 2:
        day += timedelta(days=1)
        if day.weekday() < 5:
            picks.append(WEEKDAYS[day.weekday()])
    return " or ".join(picks)


def _ask(ctx: Context, slot: datetime, rep: RepHours) -> str:
    stage = _stage_key(ctx)
    days = _day_options(slot, rep)
    if "negotiat" in stage or "contract" in stage:
        return "What is still open on your side to get this signed? If it is quicker, I can join a call with your legal or procurement team."
    if "proposal" in stage:
        return f"Is there anything in the proposal I can clarify before it goes to finance? I could walk your team through it on {days}."
    if "demo" in stage:
        return f"Would a short session with your team on {days} help to work through the open questions?"
    return f"Would a 20-minute call on {days} be useful?"


@dataclass
class Anchor:
    """Sentences that refer to what the contact did, the facts they refer to, a subject line."""

    lines: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    subject: str | None = None
    asked_for_meeting: bool = False
    offers: set[str] = field(default_factory=set)

    def offer(self, *texts: str | None) -> str:
        """' <offer>' for what they read, or '' when the message already made that offer."""
        said = offer_for(*texts)
        if said in self.offers:
            return ""
        self.offers.add(said)
        return " " + said

    def add(self, line: str, ref: str, subject: str | None = None) -> None:
        self.lines.append(line)
        self.refs.append(ref)
        self.subject = self.subject or subject


def _reply_subject(inbound: EmailItem) -> str | None:
    if inbound.subject and quotable(inbound.subject, 150, 2):
        clean = one_line(inbound.subject, 150)
        return clean if clean.lower().startswith("re:") else f"Re: {clean}"
    return None


def _from_their_email(ctx: Context, sig: Signals, a: Anchor) -> None:
    """Answer their last email: quote its main point and respond to each objection or question."""
    inbound = sig.last_inbound
    if inbound is None:
        return
    when = day_phrase(inbound.sent_at, ctx.as_of)
    subject = _reply_subject(inbound)
    if sig.wrong_person:
        a.add("Thanks for letting me know you are not the right person for this. Could you point me to the colleague who "
              f"looks after it at {_company(ctx) or 'your company'}?", f"said {when} they are not the right person",
              subject or "Who should I talk to?")
        return
    if not sig.topics:
        a.add(f"Thank you for your email {when}.", f"their email {when}", subject)
        return
    main = next((h for h in sig.topics if h.topic.kind != "request"), sig.topics[0])
    if main.sentence:
        verb = "asked" if main.sentence.endswith("?") else "wrote"
        a.add(f"In your email {when} you {verb}: \u201c{main.sentence}\u201d", f"their email {when} about {main.topic.label}", subject)
    else:
        a.add(f"In your email {when} you raised {main.topic.label}.", f"their email {when} about {main.topic.label}", subject)
    if main.topic.kind != "request":
        a.lines.append(main.topic.answer)
    for extra in sig.topics:
        if extra is not main and extra.topic.kind != "request":
            answer = re.sub(r"^On [^:]{1,40}:\s*", "", extra.topic.answer)  # "You also raised pricing: on pricing: ..." reads badly
            if not answer.startswith("I "):
                answer = answer[:1].lower() + answer[1:]
            a.lines.append(f"You also raised {extra.topic.label}: {answer}")
            break
    a.asked_for_meeting = any(h.topic.kind == "request" for h in sig.topics)


def _from_content(ctx: Context, items: list[ContentItem], a: Anchor, *, fresh: bool) -> None:
    """A demo request, the pages read, the assets downloaded, the links clicked."""
    forms = [f for f in _of_kind(items, "form_submit") if _DEMO_FORM.search(f"{f.title or ''} {f.url or ''}")]
    if forms and fresh and not a.lines:
        when = day_phrase(forms[0].at, ctx.as_of)
        a.add(f"Thank you for asking for a demo {when}.", f"asked for a demo {when}", "Your demo request")
        a.asked_for_meeting = True
    pages = _specific_pages(items)
    if pages and len(a.lines) < 3:
        newest = pages[0]
        when = day_phrase(newest.at, ctx.as_of)
        names = [_page_name(p) for p in pages[:2]]
        lead = "I noticed you were looking at" if fresh else "Earlier you were looking at"
        also = f", and the {names[1]} as well" if len(names) == 2 else ""
        a.add(f"{lead} our {names[0]} {when}{also}.{a.offer(newest.title, newest.url)}",
              "; ".join(f"read {p.url or p.title} {day_phrase(p.at, ctx.as_of)}" for p in pages[:2]),
              f"{_title_case(names[0].removesuffix(' page'))}: next steps" if fresh else None)
    downloads = [d for d in _of_kind(items, "content_download") if _asset_name(d)]
    if downloads and len(a.lines) < 3:
        d = downloads[0]
        name, when = _asset_name(d), day_phrase(d.at, ctx.as_of)
        a.add(f"You downloaded the {name} {when}.{a.offer(name)}", f"downloaded {name} {when}", f"The {name}")
    clicks = [c for c in _of_kind(items, "email_clicked") if _asset_name(c)]
    if clicks and not a.lines:
        c = clicks[0]
        a.add(f"You clicked through from our note \u201c{_asset_name(c)}\u201d {day_phrase(c.at, ctx.as_of)}.{a.offer(c.title)}",
              f"clicked a link in \u201c{_asset_name(c)}\u201d", f"Re: {_asset_name(c)}")


def _title_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def anchor(ctx: Context, sig: Signals, topic: str | None = None) -> Anchor:
    """What a follow-up opens with, most telling first: what they did since we last wrote, the last
    meeting, what they did before, their earlier question (`topic` when a resource answers that
    one), then our last note."""
    a = Anchor()
    _from_content(ctx, sig.fresh, a, fresh=True)
    if not a.lines and sig.last_meeting is not None and (sig.last_touch_at is None or sig.last_meeting.starts_at >= sig.last_touch_at):
        m = sig.last_meeting
        title = one_line(m.title or "", 120)
        what = f"the {title}" if title and quotable(title, 120, 2) else "our meeting"
        a.add(f"Thanks again for {what} {day_phrase(m.starts_at, ctx.as_of)}.", f"meeting {day_phrase(m.starts_at, ctx.as_of)}",
              "Next steps after our meeting")
    if not a.lines:
        _from_content(ctx, sig.older, a, fresh=False)
    if not a.lines and sig.last_inbound is not None and sig.topics and (topic or sig.topics[0].topic.kind != "request"):
        label = topic or sig.topics[0].topic.label
        a.add(f"I wanted to check that my answer on {label} covered what you needed.", f"their earlier question about {label}")
    if not a.lines and sig.last_outbound_subject:
        a.add(f"I am following up on my note \u201c{sig.last_outbound_subject}\u201d.", "our last email", f"Re: {sig.last_outbound_subject}")
    if not a.lines:
        visits = [i for i in sig.fresh + sig.older if i.kind == "page_view"]
        if visits:
            when = day_phrase(visits[0].at, ctx.as_of)
            a.add(f"I saw you visited our website {when}. {DEFAULT_OFFER}", f"visited the website {when}")
    return a


def _name(ctx: Context) -> str:
    return one_line(ctx.name or f"contact {ctx.contact_id}", 80)


def _greeting(ctx: Context) -> str:
    first = first_name_of(ctx.first_name) or (first_name_of(ctx.name.split()[0]) if ctx.name else None)
    return f"Hi {first}," if first else "Hello,"


def _sign(rep: RepHours) -> str:
    return f"Best,\n{rep.name}" if rep.user_id else "Best regards"


def _company(ctx: Context) -> str | None:
    return one_line(ctx.company, 80) if ctx.company and quotable(ctx.company, 80, 2) else None


@dataclass
class Draft:
    subject: str | None
    message: str
    refers_to: list[str]
    specific: bool                 # refers to something the contact did, not a generic nudge
    resource_index: int | None = None


def email_draft(ctx: Context, sig: Signals, slot: datetime, rep: RepHours) -> Draft:
    resource_index = _resource_for(ctx, sig.topics) if sig.last_inbound is not None and sig.topics else None
    covered = None
    if resource_index is not None:
        r = ctx.resources[resource_index]
        covered = next((h.topic.label for h in sig.topics if any(w in r.title.lower() for w in h.topic.resource_words)), None)
    a = anchor(ctx, sig, covered)
    if resource_index is not None:
        r = ctx.resources[resource_index]
        a.lines.append(f"Our {one_line(r.title, 120)} covers {covered or 'it'} in more detail: {r.url}")
        a.refs.append(f"resource: {r.title}")
    quiet = ctx.days_since_last_contact
    body = a.lines
    if not body:
        company = _company(ctx)
        if quiet is None:
            body = [f"I look after {company}'s account on our side and wanted to introduce myself." if company
                    else "I wanted to introduce myself as your contact on our side."]
        elif ctx.deal is not None:
            body = [f"It has been {_days(quiet)} since we last spoke, and I did not want to let {one_line(ctx.deal.name, 120)} drop."]
        else:
            body = [f"It has been {_days(quiet)} since we last spoke."]
    ask = _ask(ctx, slot, rep)
    if a.asked_for_meeting:
        ask = f"You asked to talk: would {_day_options(slot, rep)} work? Send me a time that suits you and I will book it."
    message = "\n\n".join([_greeting(ctx), " ".join(body), ask, _sign(rep)])
    subject = a.subject or (f"Next steps for {_company(ctx)}" if _company(ctx) else "Next steps")
    return Draft(one_line(subject, SUBJECT_MAX), message, a.refs, bool(a.lines), resource_index)


def reply_draft(ctx: Context, sig: Signals, slot: datetime, rep: RepHours) -> Draft:
    """A suggested answer to their unanswered email, for the owner to edit and send."""
    a = Anchor()
    _from_their_email(ctx, sig, a)
    ask = (f"Would {_day_options(slot, rep)} work for a call? Send me a time that suits you and I will book it."
           if a.asked_for_meeting else _ask(ctx, slot, rep))
    message = "\n\n".join([_greeting(ctx), " ".join(a.lines) or "Thank you for getting back to me.", ask, _sign(rep)])
    subject = a.subject or "Re: your email"
    return Draft(one_line(subject, SUBJECT_MAX), message, a.refs, bool(sig.topics))


def call_points(ctx: Context, sig: Signals, why: str, slot: datetime, rep: RepHours) -> Draft:
    a = anchor(ctx, sig)
    company = _company(ctx)
    quiet = ctx.days_since_last_contact
    quiet_text = f"quiet for {_days(quiet)}" if quiet is not None else "never contacted"
    points = [f"Call {_name(ctx)}" + (f" ({company})" if company else "") + f": {quiet_text}; {why}."]
    if ctx.deal is not None:
        points.append(f"Deal: {one_line(ctx.deal.name, 120)}, stage {ctx.deal.stage}"
                      + (f" for {ctx.deal.days_in_stage:.0f} days" if ctx.deal.days_in_stage is not None else "") + ".")
    if ctx.unanswered_touches:
        run = "touch" if ctx.unanswered_touches == 1 else f"{ctx.unanswered_touches} touches"
        points.append(f"Our last {run} got no answer"
                      + (f" (last email: \u201c{sig.last_outbound_subject}\u201d)." if sig.last_outbound_subject else "."))
    points.extend(f"Open point: {h.topic.talking_point}" for h in sig.topics[:2] if h.topic.kind != "request")
    points.extend(f"They {r}." for r in a.refs[:3] if r.startswith(("read", "downloaded", "asked", "clicked", "visited")))
    goal = "agree what is needed to sign" if _late_stage(ctx) else f"book a 20-minute call for {_day_options(slot, rep)}"
    points.append(f"Goal: find out where things stand and {goal}.")
    return Draft(None, "\n".join(f"- {p}" for p in points), a.refs, bool(a.lines))


def linkedin_draft(ctx: Context, sig: Signals, slot: datetime, rep: RepHours) -> Draft:
    a = anchor(ctx, sig)
    body = a.lines[:2] or ["I tried to reach you by email and wanted to make sure my note did not get lost."]
    text = f"{_greeting(ctx)} " + " ".join(body) + f" {_ask(ctx, slot, rep)}"
    return Draft(None, text[:LINKEDIN_MAX], a.refs, bool(a.lines))


def send_slot(ctx: Context) -> Slot:
    """The working-hours slot (weekdays only) closest to when this contact, else the owner's contacts, answered."""
    rep = ctx.owner or DEFAULT_REP
    after = ctx.as_of + timedelta(minutes=EMAIL_LEAD_MINUTES)
    slot = best_slot(rep, after, ctx.pattern.engagement, what="opens and replies",
                     fallback=ctx.owner_pattern, fallback_what=f"answers from {rep.name}'s contacts")
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
    name = _name(ctx)
    return f"{name} ({one_line(ctx.deal.name, 60)})" if ctx.deal else name


def _trusted_links(ctx: Context) -> list[str]:
    return [r.url for r in ctx.resources if r.url]


class FollowUpAgent:
    name: ClassVar[str] = "follow_up"
    tier: ClassVar[str] = "mid"
    Context: ClassVar[type[BaseModel]] = Context
    Decision: ClassVar[type[BaseModel]] = Decision
    prompt: ClassVar[Prompt] = Prompt(version="follow_up/2", system=_system())

    def render(self, ctx: Context) -> str:
        from agents.llm import fence

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
            "Plan the follow-up. Facts computed by the CRM (trusted):", _json(facts),
            "What the CRM's own checks found (trusted):", _json(checks),
            fence("\n".join(explained), "the checks explained (may quote imported names)"),
            "The team's follow-up history (trusted, response within 7 days):",
            "\n".join(f"- {line}" for line in playbook_summary(ctx.playbook)),
            "Contact and deal (imported values):",
            fence(_json({"name": ctx.name, "first_name": ctx.first_name, "title": ctx.title, "company": ctx.company,
                         "deal": ctx.deal.name if ctx.deal else None}), "contact profile"),
        ]
        if ctx.pending:
            rows = "\n".join(f"{p.kind} {_iso(p.at) or ''}: {p.label or ''}" for p in ctx.pending)
            blocks += ["Already on its way:", fence(rows, "pending follow-ups")]
        if ctx.emails:
            blocks.append("Email history, oldest first:")
            for e in ctx.emails:
                head = {"direction": e.direction, "sent_at": _iso(e.sent_at), "opened_at": _iso(e.opened_at), "replied_at": _iso(e.replied_at)}
                blocks += [_json(head), fence(f"Subject: {e.subject or ''}\n\n{e.body or ''}", f"{e.direction} email body")]
        if ctx.content:
            rows = "\n".join(f"{c.at:%a %Y-%m-%d %H:%M} {c.kind}: {c.title or ''} {c.url or ''}".rstrip() for c in ctx.content)
            blocks += ["Pages read and content downloaded, newest first:", fence(rows, "web activity")]
        if ctx.meetings:
            rows = "\n".join(f"{m.starts_at:%a %Y-%m-%d %H:%M} [{m.status}] {m.title or ''}" for m in ctx.meetings)
            blocks += ["Meetings (past and booked):", fence(rows, "meeting titles")]
        if ctx.touches:
            rows = "\n".join(f"{t.at:%Y-%m-%d} {t.kind}: {t.summary or ''}" for t in ctx.touches)
            blocks += ["Calls, LinkedIn messages and notes:", fence(rows, "call and note summaries")]
        if ctx.resources:
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
        params = {"title": f"{verb} {_name(ctx)}"[:500],
                  "description": (body + f"\n\nBest time: {decision.send_time_basis or send_at.isoformat(timespec='minutes')}")[:10000],
                  "contact_id": ctx.contact_id, "due_at": send_at.isoformat(), "kind": "follow_up"}
        return ProposedAction(type="create_task", params=self._owned(ctx, params), reason=f"follow-up by {channel.replace('_', ' ')}")

    def _handoff(self, ctx: Context, sig: Signals, stop: Stop, decision: Decision, due: datetime) -> ProposedAction:
        name = _name(ctx)
        if stop.handoff == "reply":
            about = _join([h.topic.label for h in sig.topics if h.topic.kind != "request"][:3])
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


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


AGENT = FollowUpAgent()

__all__ = ["AGENT", "Context", "Decision", "FollowUpAgent", "Playbook", "TouchEvent", "learn_playbook"]
