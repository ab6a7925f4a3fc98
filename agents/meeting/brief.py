"""The brief job: a meeting starting within the hour with no brief gets one for the rep.

Decision: a brief (who, account, deal, recent activity, open tasks, open questions and objections
from their emails, talking points) -> `save_meeting_brief`. A meeting that already has a brief gets
no second one.
"""
from __future__ import annotations

from collections.abc import Sequence

from agents.base import Proposal, ProposedAction
from agents.common.context_records import EmailItem
from agents.common.email_topics import open_points, open_talking_points
from agents.common.phrasing import join_words
from agents.common.rendering import as_json
from agents.common.text_reading import MACHINE_AIMED, outside_references, printable
from agents.common.working_hours import to_local, zone_of
from agents.llm.fence import fence
from agents.meeting.models import (
    ActivityRef,
    Context,
    Decision,
    company_of,
    contact_label,
    meeting_label,
    rep_of,
    stage_words,
)

BRIEF_RECENT_ITEMS = 8


# == deciding =======================================================================================
def _count_of(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _money(amount: float | None, currency: str) -> str:
    return f"{currency} {amount:,.0f}" if amount is not None else "amount not set"


def _activity_line(a: ActivityRef) -> str | None:
    detail = printable(a.detail, 90)
    words = {
        "page_view": f"read {detail}" if detail else "visited the website",
        "content_download": f"downloaded {detail}" if detail else "downloaded content",
        "form_submit": f"submitted the {detail} form" if detail else "submitted a form",
        "email_opened": "opened an email" + (f" (\u201c{detail}\u201d)" if detail else ""),
        "email_clicked": "clicked a link in an email",
        "email_replied": "replied to an email" + (f" (\u201c{detail}\u201d)" if detail else ""),
        "call": "call" + (f": {detail}" if detail else ""),
        "meeting": "meeting" + (f": {detail}" if detail else ""),
        "linkedin_message": "LinkedIn message",
        "email_sent": "we emailed" + (f" (\u201c{detail}\u201d)" if detail else ""),
    }
    text = words.get(a.kind)
    return f"{a.at:%a %d %b}: {text}" if text else None


def stage_goals(stage: str | None) -> list[str]:
    s = stage_words(stage)
    if "negotiat" in s or "contract" in s:
        return ["Close the open contract points and who signs", "Confirm the signature date and the onboarding start"]
    if "proposal" in s:
        return ["Walk through the proposal and surface any objection on price or terms", "Agree the decision date and who signs"]
    if "demo" in s:
        return ["Show the workflow behind what they read about", "Find out who else must see it, and book that session"]
    return ["Confirm the problem, who decides and by when", "Agree a dated next step (a tailored demo)"]


def talking_points(emails: Sequence[EmailItem], stage: str | None) -> list[str]:
    """What to raise: each open question or objection of theirs (unanswered first), then the stage's goals."""
    return open_talking_points(emails) + stage_goals(stage)


def _who(ctx: Context) -> str:
    b = ctx.brief
    role = printable(ctx.contact.title, 80)
    company = company_of(ctx)
    line = "Who: " + contact_label(ctx) + (f", {role}" if role else "") + (f" at {company}" if company else "")
    if b.score is not None:
        line += f"; lead score {b.score}" + (f" ({b.tier})" if b.tier else "")
    others = []
    for p in b.participants:
        if p.side == "contact" or (p.contact_id is not None and p.contact_id == ctx.contact.contact_id):
            continue
        if p.side == "rep" and ctx.owner is not None and p.user_id == ctx.owner.user_id:
            continue  # the brief is for them
        name = printable(p.name, 60)
        if not name:
            continue
        title = printable(p.title, 60)
        others.append(f"{name} ({'our side' if p.side == 'rep' else title or 'their side'})")
    if others:
        line += "; also attending: " + join_words(others)
    return line if line.endswith(".") else line + "."


def decide(ctx: Context) -> Decision:
    b = ctx.brief
    m = b.meeting
    title = printable(m.title, 120, "meeting")
    who = contact_label(ctx)
    if b.has_brief:
        return Decision(kind="brief", confidence=0.9,
                        reasoning=f"{title} already has a brief (saved, or waiting for review): no second one is written.")
    rep = rep_of(ctx)
    local = to_local(m.starts_at, zone_of(rep.timezone))
    lines = [f"Brief: {title}, {m.starts_at:%a %d %b %H:%M}-{m.ends_at:%H:%M} UTC"
             + (f" ({local:%H:%M} {rep.timezone} for {rep.name})" if ctx.owner is not None and rep.timezone != "UTC" else ""), ""]
    lines.append(_who(ctx))
    if b.account is not None:
        a = b.account
        bits = [x for x in (printable(a.industry, 60), f"{a.employee_count:,} employees" if a.employee_count else None,
                            printable(a.country, 60)) if x]
        lines.append(f"Account: {printable(a.name, 80) or company_of(ctx) or 'unknown'}" + (f" ({', '.join(bits)})" if bits else "") + ".")
    else:
        lines.append("Account: none on record.")
    if b.deal is not None:
        d = b.deal
        stage_time = f" for {d.days_in_stage:.0f} days" if d.days_in_stage is not None else ""
        close = f", expected close {d.expected_close:%d %b %Y}" if d.expected_close else ""
        lines.append(f"Deal: {printable(d.name, 100, 'deal')}, stage {d.stage}{stage_time}, {_money(d.amount, d.currency)}{close}.")
    else:
        lines.append(f"Deal: none open; lifecycle stage {b.lifecycle_stage or 'unknown'}.")
    recent = [line for line in (_activity_line(a) for a in b.activity[:BRIEF_RECENT_ITEMS]) if line]
    lines.append("Recent activity:" if recent else "Recent activity: nothing logged lately.")
    lines.extend(f"- {r}" for r in recent)
    if b.previous_meetings:
        last = b.previous_meetings[-1]
        lines.append(f"- Last meeting {last.starts_at:%d %b}: {printable(last.title, 100, 'meeting')}")
    lines.append("Open tasks:" if b.open_tasks else "Open tasks: none.")
    overdue = 0
    for t in b.open_tasks[:5]:
        due = ""
        if t.due_at:
            late = t.due_at < m.starts_at
            overdue += late
            due = f" (due {t.due_at:%d %b}{', before this meeting' if late else ''})"
        owner = f" [{printable(t.owner, 60)}]" if printable(t.owner, 60) else ""
        lines.append(f"- {printable(t.title, 120, 'task')}{due}{owner}")
    points = open_points(b.emails)
    lines.append("Open questions and objections:" if points else "Open questions and objections: none found in their emails.")
    lines.extend(f"- {p}" for p in points)
    talk = talking_points(b.emails, b.deal.stage if b.deal else b.lifecycle_stage)
    if overdue:
        verb = "stands" if overdue == 1 else "stand"
        talk.insert(0, f"Say where the {_count_of(overdue, 'task')} due before this meeting {verb}, before they ask")
    lines.append("Talking points:")
    lines.extend(f"- {g}" for g in talk)
    text = "\n".join(lines)
    filled = sum([b.account is not None, b.deal is not None, bool(recent), bool(b.emails)])
    confidence = round(0.6 + 0.075 * filled, 2)
    inbound = sum(1 for e in b.emails if e.direction == "inbound")
    reasoning = (f"Brief for {title} with {who}, assembled from the CRM: {len(recent)} recent activities, "
                 f"{len(b.open_tasks)} open task{'s' if len(b.open_tasks) != 1 else ''}, {len(points)} open point"
                 f"{'s' if len(points) != 1 else ''} from {_count_of(inbound, 'inbound email')}, "
                 f"stage {b.deal.stage if b.deal else b.lifecycle_stage or 'unknown'}, "
                 f"{len(talk)} talking point{'s' if len(talk) != 1 else ''}.")
    return Decision(kind="brief", brief=text[:8000], confidence=confidence, reasoning=reasoning[:2000])


# == rendering ======================================================================================
def render(ctx: Context) -> list[str]:
    """The brief part of the user message: trusted meeting facts, then names, emails, notes (fenced)."""
    b = ctx.brief
    m = b.meeting
    facts = {"meeting_id": m.meeting_id, "starts_at": m.starts_at.isoformat(timespec="minutes"),
             "ends_at": m.ends_at.isoformat(timespec="minutes"), "score": b.score, "tier": b.tier,
             "lifecycle_stage": b.lifecycle_stage, "already_has_a_brief": b.has_brief,
             "deal": b.deal.model_dump(mode="json", exclude={"name"}) if b.deal else None,
             "account": b.account.model_dump(mode="json", exclude={"name", "industry", "country"}) if b.account else None,
             "participants": [{"side": p.side} for p in b.participants]}
    names = {"deal": b.deal.name if b.deal else None,
             "account": b.account.model_dump(mode="json", include={"name", "industry", "country"}) if b.account else None,
             "participants_in_order": [{"name": p.name, "title": p.title} for p in b.participants]}
    out = ["Meeting facts (trusted):", as_json(facts),
           fence(as_json(names), "names and titles (imported values)"),
           fence(f"Title: {m.title or ''}\nAgenda:\n{m.agenda or ''}", "meeting title and agenda")]
    if b.activity:
        rows = "\n".join(f"{a.at:%a %Y-%m-%d %H:%M} {a.kind}: {a.detail or ''}" for a in b.activity)
        out += ["Recent activity, newest first:", fence(rows, "activity log")]
    for e in b.emails:
        out += [f"{e.direction} email {e.sent_at:%Y-%m-%d %H:%M}:", fence(f"Subject: {e.subject or ''}\n\n{e.body or ''}", f"{e.direction} email body")]
    if b.previous_meetings:
        out += ["Previous meetings:", fence("\n".join(f"{p.starts_at:%Y-%m-%d} {p.title or ''}" for p in b.previous_meetings), "meeting titles")]
    if b.open_tasks:
        rows = "\n".join(f"{t.title}" + (f" (due {t.due_at:%Y-%m-%d})" if t.due_at else "") + (f" [{t.owner}]" if t.owner else "")
                         for t in b.open_tasks)
        out += ["Open tasks:", fence(rows, "task titles")]
    if b.notes:
        out += ["Notes:", fence(b.notes, "contact and deal notes")]
    return out


# == proposing ======================================================================================
def proposal(ctx: Context, decision: Decision) -> Proposal:
    """The brief to save, unless the meeting has one; a human is asked when it names what the CRM did not give."""
    brief = (decision.brief or "").strip()
    actions: list[ProposedAction] = []
    escalation = None
    reasoning = decision.reasoning
    if ctx.brief.has_brief:
        # One brief per meeting: whatever was written now, the saved one stays.
        if brief:
            reasoning += " The meeting already has a brief: it is kept and this one is not saved."
    elif not brief:
        escalation = "no brief was written"
    else:
        known = ctx.brief.meeting.attendees + [p.email for p in ctx.brief.participants if p.email]
        outside = outside_references(brief, known + ([ctx.contact.email] if ctx.contact.email else []))
        if outside:
            escalation = f"the brief names {', '.join(sorted(set(outside))[:3])}, which the CRM did not provide: check it"
        elif MACHINE_AIMED.search(brief):
            escalation = "the brief holds text written at an AI: check it before the rep relies on it"
        actions.append(ProposedAction(type="save_meeting_brief", params={"meeting_id": ctx.meeting_id, "brief": brief[:20000]},
                                      reason=f"brief {len(brief)} characters, ready before the meeting"))
    return Proposal(subject_type="meeting", subject_id=ctx.meeting_id, subject_label=meeting_label(ctx.brief.meeting),
                    confidence=decision.confidence, reasoning=reasoning[:4000], actions=tuple(actions),
                    escalation=escalation, decision=decision.model_dump(mode="json"))


def facts_present(ctx: Context) -> list[bool]:
    """What a brief is built on, each true when the context holds it (the agent's completeness)."""
    b = ctx.brief
    return [b.account is not None, b.deal is not None, bool(b.activity), bool(b.emails), ctx.contact.title is not None]


def agree(a: Decision, b: Decision) -> bool:
    """Two briefs agree when both or neither wrote one."""
    return bool(a.brief) == bool(b.brief)
