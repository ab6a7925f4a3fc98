"""The words of a follow-up the built-in reasoner writes: the email, the suggested reply, the call's
talking points and the LinkedIn message, each opening with what the contact actually did.

The follow-up agent decides whether, how and when to follow up; this module only words the plan,
from the context and the signals the agent read. It names no product fact the context does not
hold, quotes only what is safe to quote, and links only to resources on record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agents.common.context_records import ContentItem, EmailItem
from agents.common.email_topics import TopicHit
from agents.common.phrasing import WEEKDAYS, day_phrase
from agents.common.text_reading import first_name_of, one_line, quotable
from agents.common.working_hours import RepHours, to_local, zone_of
from agents.follow_up.web_activity import DEFAULT_OFFER, asset_name, of_kind, offer_for, page_name, specific_pages

if TYPE_CHECKING:  # the agent module imports this one: its models are needed for annotations only
    from agents.follow_up import Context, Signals

SUBJECT_MAX = 200
LINKEDIN_MAX = 600
LATE_STAGES = ("proposal", "negotiation", "contract", "closing", "commit")
_DEMO_FORM = re.compile(r"demo|contact[-_ ]?sales|talk[-_ ]?to[-_ ]?sales|book|trial|quote", re.IGNORECASE)


def days_text(value: float) -> str:
    n = int(value)
    return f"{n} day{'s' if n != 1 else ''}"


def contact_name(ctx: Context) -> str:
    return one_line(ctx.name or f"contact {ctx.contact_id}", 80)


def company_name(ctx: Context) -> str | None:
    return one_line(ctx.company, 80) if ctx.company and quotable(ctx.company, 80, 2) else None


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


def late_stage(ctx: Context) -> bool:
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
              f"looks after it at {company_name(ctx) or 'your company'}?", f"said {when} they are not the right person",
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
    forms = [f for f in of_kind(items, "form_submit") if _DEMO_FORM.search(f"{f.title or ''} {f.url or ''}")]
    if forms and fresh and not a.lines:
        when = day_phrase(forms[0].at, ctx.as_of)
        a.add(f"Thank you for asking for a demo {when}.", f"asked for a demo {when}", "Your demo request")
        a.asked_for_meeting = True
    pages = specific_pages(items)
    if pages and len(a.lines) < 3:
        newest = pages[0]
        when = day_phrase(newest.at, ctx.as_of)
        names = [page_name(p) for p in pages[:2]]
        lead = "I noticed you were looking at" if fresh else "Earlier you were looking at"
        also = f", and the {names[1]} as well" if len(names) == 2 else ""
        a.add(f"{lead} our {names[0]} {when}{also}.{a.offer(newest.title, newest.url)}",
              "; ".join(f"read {p.url or p.title} {day_phrase(p.at, ctx.as_of)}" for p in pages[:2]),
              f"{_title_case(names[0].removesuffix(' page'))}: next steps" if fresh else None)
    downloads = [d for d in of_kind(items, "content_download") if asset_name(d)]
    if downloads and len(a.lines) < 3:
        d = downloads[0]
        name, when = asset_name(d), day_phrase(d.at, ctx.as_of)
        a.add(f"You downloaded the {name} {when}.{a.offer(name)}", f"downloaded {name} {when}", f"The {name}")
    clicks = [c for c in of_kind(items, "email_clicked") if asset_name(c)]
    if clicks and not a.lines:
        c = clicks[0]
        a.add(f"You clicked through from our note \u201c{asset_name(c)}\u201d {day_phrase(c.at, ctx.as_of)}.{a.offer(c.title)}",
              f"clicked a link in \u201c{asset_name(c)}\u201d", f"Re: {asset_name(c)}")


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


def _greeting(ctx: Context) -> str:
    first = first_name_of(ctx.first_name) or (first_name_of(ctx.name.split()[0]) if ctx.name else None)
    return f"Hi {first}," if first else "Hello,"


def _sign(rep: RepHours) -> str:
    return f"Best,\n{rep.name}" if rep.user_id else "Best regards"


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
        company = company_name(ctx)
        if quiet is None:
            body = [f"I look after {company}'s account on our side and wanted to introduce myself." if company
                    else "I wanted to introduce myself as your contact on our side."]
        elif ctx.deal is not None:
            body = [f"It has been {days_text(quiet)} since we last spoke, and I did not want to let {one_line(ctx.deal.name, 120)} drop."]
        else:
            body = [f"It has been {days_text(quiet)} since we last spoke."]
    ask = _ask(ctx, slot, rep)
    if a.asked_for_meeting:
        ask = f"You asked to talk: would {_day_options(slot, rep)} work? Send me a time that suits you and I will book it."
    message = "\n\n".join([_greeting(ctx), " ".join(body), ask, _sign(rep)])
    subject = a.subject or (f"Next steps for {company_name(ctx)}" if company_name(ctx) else "Next steps")
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
    company = company_name(ctx)
    quiet = ctx.days_since_last_contact
    quiet_text = f"quiet for {days_text(quiet)}" if quiet is not None else "never contacted"
    points = [f"Call {contact_name(ctx)}" + (f" ({company})" if company else "") + f": {quiet_text}; {why}."]
    if ctx.deal is not None:
        points.append(f"Deal: {one_line(ctx.deal.name, 120)}, stage {ctx.deal.stage}"
                      + (f" for {ctx.deal.days_in_stage:.0f} days" if ctx.deal.days_in_stage is not None else "") + ".")
    if ctx.unanswered_touches:
        run = "touch" if ctx.unanswered_touches == 1 else f"{ctx.unanswered_touches} touches"
        points.append(f"Our last {run} got no answer"
                      + (f" (last email: \u201c{sig.last_outbound_subject}\u201d)." if sig.last_outbound_subject else "."))
    points.extend(f"Open point: {h.topic.talking_point}" for h in sig.topics[:2] if h.topic.kind != "request")
    points.extend(f"They {r}." for r in a.refs[:3] if r.startswith(("read", "downloaded", "asked", "clicked", "visited")))
    goal = "agree what is needed to sign" if late_stage(ctx) else f"book a 20-minute call for {_day_options(slot, rep)}"
    points.append(f"Goal: find out where things stand and {goal}.")
    return Draft(None, "\n".join(f"- {p}" for p in points), a.refs, bool(a.lines))


def linkedin_draft(ctx: Context, sig: Signals, slot: datetime, rep: RepHours) -> Draft:
    a = anchor(ctx, sig)
    body = a.lines[:2] or ["I tried to reach you by email and wanted to make sure my note did not get lost."]
    text = f"{_greeting(ctx)} " + " ".join(body) + f" {_ask(ctx, slot, rep)}"
    return Draft(None, text[:LINKEDIN_MAX], a.refs, bool(a.lines))
