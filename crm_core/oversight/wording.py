"""Plain words for what the agents propose: the one place that turns internal names into sentences.

Cards, group titles, the audit log and the outcome messages all come through here, so a manager
never reads `create_task`, `contact 799` or `offline-v1`. Pure functions: the names of people,
deals and meetings arrive in a `Names` lookup that the views fill from the store in one query
per kind.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from agents.common.compared_figures import compared_percents

AGENT_LABELS: dict[str, str] = {
    "lead_scoring": "Lead scoring",
    "follow_up": "Follow-up",
    "enrichment": "Record completion",
    "pipeline": "Pipeline watch",
    "meeting": "Meetings",
}

# What kind of thing an action is, as a manager would name it (group titles, filters).
ACTION_LABELS: dict[str, str] = {
    "update_lead_score": "New lead score",
    "create_task": "Task for the rep",
    "send_email": "Email to a contact",
    "post_notification": "Message to the team",
    "schedule_meeting": "Meeting invite",
    "move_deal_stage": "Deal stage change",
    "set_deal_risk": "Deal risk flag",
    "write_enrichment": "Missing details filled in",
    "save_meeting_brief": "Meeting brief",
    "create_action_items": "Action items from a meeting",
    "send_quote": "Quote sent to a customer",
    "merge_contacts": "Duplicate contacts merged",
    "normalise_values": "Data clean-up across records",
}
ACTION_PLURALS: dict[str, str] = {
    "update_lead_score": "new lead scores",
    "create_task": "tasks for the rep",
    "send_email": "emails to contacts",
    "post_notification": "messages to the team",
    "schedule_meeting": "meeting invites",
    "move_deal_stage": "deal stage changes",
    "set_deal_risk": "deal risk flags",
    "write_enrichment": "records with missing details filled in",
    "save_meeting_brief": "meeting briefs",
    "create_action_items": "sets of action items from meetings",
    "send_quote": "quotes to customers",
    "merge_contacts": "duplicate contact merges",
    "normalise_values": "data clean-ups across records",
}
# What approving cannot take back, per action type: (one, many, why), in the confirmation's words.
CANNOT_UNDO: dict[str, tuple[str, str, str]] = {
    "send_email": ("email will be sent", "emails will be sent", "a sent email cannot be unsent"),
    "send_quote": ("quote will be sent", "quotes will be sent", "a sent quote cannot be unsent"),
    "schedule_meeting": ("invite will be sent", "invites will be sent",
                         "a cancellation can follow, the invite itself cannot be unsent"),
    "post_notification": ("message will be posted to the team", "messages will be posted to the team",
                          "a posted message cannot be taken back"),
}


def cannot_undo_sentence(action_type: str, count: int, undo_note: str | None = None) -> str:
    """'44 emails will be sent: a sent email cannot be unsent'."""
    one, many, why = CANNOT_UNDO.get(action_type) or (
        f"{action_label(action_type).lower()} cannot be fully undone", f"{action_plural(action_type, 2)} cannot be fully undone",
        plain(undo_note) if undo_note else "there is no way to run it, so it will fail")
    return f"{count} {one if count == 1 else many}: {why}"


STAKES_LABELS: dict[str, str] = {"low": "low stakes", "medium": "medium stakes", "high": "high stakes", "critical": "critical"}
NEXT_ACTIONS: dict[str, str] = {
    "call": "call", "senior_rep": "hand to a senior rep", "schedule_demo": "book a demo", "nurture": "keep nurturing",
    "low_priority": "low priority", "email": "email",
}
FIELD_LABELS: dict[str, str] = {
    "score": "score", "tier": "tier", "next_action": "next step", "risk": "risk flag", "risk_reason": "risk reason",
    "risk_action": "recommended step", "stage": "stage", "status": "status", "account_id": "account", "owner_id": "owner",
    "brief": "brief", "lifecycle_stage": "lifecycle stage", "title": "title", "company": "company", "country": "country",
    "seniority": "seniority", "department": "department", "industry": "industry", "employee_count": "employees",
    "annual_revenue": "annual revenue", "threshold": "threshold", "stakes": "stakes", "always_ask": "always asks",
}

# Why a decision waits, from the policy's reasons; first match wins, most serious first.
REASON_LABELS: dict[str, str] = {
    "cannot_run": "Cannot run as proposed",
    "escalated": "Escalated by the agent",
    "always_asks": "Always needs a person",
    "supervised": "The agent is supervised",
    "overwrites_person": "Would overwrite what a person entered",
    "needs_check": "Needs a person's check",
    "below_threshold": "Confidence below the threshold",
    "other": "Waits for a person",
}
_REASON_ORDER = tuple(REASON_LABELS)


@dataclass
class Names:
    """Display names by id, filled by the caller from the store."""

    contacts: dict[int, str] = field(default_factory=dict)   # "Dana Smith (Acme)"
    deals: dict[int, str] = field(default_factory=dict)      # "Acme - renewal"
    meetings: dict[int, str] = field(default_factory=dict)   # "Demo with Acme (07 Dec 14:00)"
    accounts: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    emails: dict[int, str] = field(default_factory=dict)     # contacts' addresses: tells duplicates apart

    def contact(self, contact_id: Any) -> str:
        return self.contacts.get(_int(contact_id)) or "a contact no longer in the book"

    def deal(self, deal_id: Any) -> str:
        return self.deals.get(_int(deal_id)) or "a deal no longer in the book"

    def meeting(self, meeting_id: Any) -> str:
        return self.meetings.get(_int(meeting_id)) or "a meeting no longer in the book"

    def account(self, account_id: Any) -> str:
        return self.accounts.get(_int(account_id)) or "an account no longer in the book"

    def user(self, user_id: Any) -> str:
        return self.users.get(_int(user_id)) or "the record's owner"

    def record(self, kind: str | None, record_id: Any) -> str:
        lookup = {"contact": self.contact, "deal": self.deal, "meeting": self.meeting, "account": self.account}.get(kind or "")
        if lookup is None or record_id is None:
            return "the whole pipeline" if kind == "pipeline" else ""
        return lookup(record_id)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def agent_label(agent: str | None) -> str:
    return AGENT_LABELS.get(agent or "", (agent or "an agent").replace("_", " ").capitalize())


def agent_phrase(agent: str | None) -> str:
    """'the lead scoring agent'."""
    return f"the {agent_label(agent).lower()} agent"


def action_label(action_type: str | None) -> str:
    return ACTION_LABELS.get(action_type or "", "A proposal" if not action_type else "An action of an unknown kind")


def action_plural(action_type: str | None, count: int) -> str:
    if count == 1:
        return action_label(action_type)[0].lower() + action_label(action_type)[1:]
    return ACTION_PLURALS.get(action_type or "", "proposals")


# What a scheduler worker is busy with; it records "<job kind> #<job id> <agent>" (orchestration/scheduler/worker.py).
JOB_LABELS: dict[str, str] = {
    "agent": "Agent run", "data_audit": "Data-quality audit", "expire_queue": "Expiring unanswered decisions",
    "calibration": "Calibration report", "dispatch_outbox": "Sending the outbox", "deliver_webhooks": "Delivering webhooks",
    "poll_mailbox": "Reading the mailbox", "learn": "Learning from the book",
}


def job_label(current_job: str | None) -> str:
    """'agent #12 lead_scoring' -> 'Lead scoring agent run'; '' when the worker is idle."""
    kind, _, rest = (current_job or "").partition(" ")
    if not kind:
        return ""
    words = rest.split()
    if kind == "agent" and words and not words[-1].startswith("#"):
        return f"{agent_label(words[-1])} agent run"
    return JOB_LABELS.get(kind, kind.replace("_", " ").capitalize())


def stakes_label(stakes: str | None) -> str:
    return STAKES_LABELS.get(stakes or "", "unknown stakes")


def _quote(text: Any, limit: int = 90) -> str:
    text = " ".join(str(text or "").split())
    return f"“{text[:limit - 1]}…”" if len(text) > limit else f"“{text}”"


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%a %d %b %H:%M UTC")
    if isinstance(value, date):
        return value.strftime("%a %d %b %Y")
    return ""


def headline(action_type: str, params: dict[str, Any], names: Names) -> str:
    """One sentence saying what the action does, to whom: 'New score for Dana Smith (Acme): 82, hot'."""
    p = params or {}
    if action_type == "update_lead_score":
        nxt = NEXT_ACTIONS.get(p.get("next_action") or "", (p.get("next_action") or "").replace("_", " "))
        return f"New score for {names.contact(p.get('contact_id'))}: {p.get('score')} ({p.get('tier')})" + (f"; next step: {nxt}" if nxt else "")
    if action_type == "create_task":
        on = [names.contact(p["contact_id"])] if p.get("contact_id") else []
        on += [names.deal(p["deal_id"])] if p.get("deal_id") else []
        on += [names.meeting(p["meeting_id"])] if p.get("meeting_id") else []
        who = f" for {names.user(p['owner_id'])}" if p.get("owner_id") else " for the rep"
        due = f", due {_when(p['due_at'])}" if p.get("due_at") else ""
        return f"Task{who}: {_quote(p.get('title'))}" + (f" about {', '.join(on)}" if on else "") + due
    if action_type == "send_email":
        later = f", sent {_when(p['send_after'])}" if p.get("send_after") else ""
        return f"Email to {names.contact(p.get('contact_id'))}: {_quote(p.get('subject'))}{later}"
    if action_type == "send_quote":
        lines = p.get("lines") or []
        total = sum(float(line.get("quantity", 0)) * float(line.get("unit_price", 0)) for line in lines if isinstance(line, dict))
        return (f"Quote of {total:,.2f} {p.get('currency', 'USD')} for {names.deal(p.get('deal_id'))}, "
                f"sent to {names.contact(p.get('contact_id'))}")
    if action_type == "post_notification":
        return f"Message to the team: {_quote(p.get('title') or p.get('text'))}"
    if action_type == "schedule_meeting":
        return f"Invite {names.contact(p.get('contact_id'))} to {_quote(p.get('title'))} on {_when(p.get('starts_at'))}"
    if action_type == "move_deal_stage":
        return f"Move {names.deal(p.get('deal_id'))} to {p.get('to_stage')}"
    if action_type == "set_deal_risk":
        return f"Flag {names.deal(p.get('deal_id'))} {p.get('risk')}"
    if action_type == "write_enrichment":
        fields = p.get("fields") or {}
        shown = ", ".join(f"{FIELD_LABELS.get(k, k.replace('_', ' '))} {_quote((v or {}).get('value'), 40)}"
                          for k, v in list(fields.items())[:4] if isinstance(v, dict))
        record = names.contact(p.get("entity_id")) if p.get("entity") == "contact" else names.account(p.get("entity_id"))
        return f"Fill in {record}: {shown}" + (" and more" if len(fields) > 4 else "")
    if action_type == "save_meeting_brief":
        return f"Brief for {names.meeting(p.get('meeting_id'))}"
    if action_type == "create_action_items":
        items = p.get("items") or []
        return f"{len(items)} action item{'s' if len(items) != 1 else ''} from {names.meeting(p.get('meeting_id'))}"
    if action_type == "merge_contacts":
        def person(contact_id: Any) -> str:
            email = names.emails.get(_int(contact_id))
            return names.contact(contact_id) + (f" <{email}>" if email else "")
        return f"Merge {person(p.get('source_contact_id'))} into {person(p.get('target_contact_id'))}"
    if action_type == "normalise_values":
        changes = p.get("changes") or {}
        shown = "; ".join(f"{_quote(old, 30)} → {'empty' if new is None else _quote(new, 30)}" for old, new in list(changes.items())[:3])
        count = len(set(p.get("record_ids") or []) | (set(p.get("manual_record_ids") or []) if p.get("include_manual") else set()))
        field_name = FIELD_LABELS.get(str(p.get("field")), str(p.get("field") or "").removeprefix("attributes.").replace("_", " "))
        more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
        return f"Clean up the {field_name} of {count} {p.get('entity')} record{'s' if count != 1 else ''}: {shown}{more}"
    return action_label(action_type)


def provider_line(provider: str | None, model: str | None, is_local: bool) -> str:
    """Who reasoned, without prompt versions or model ids."""
    if provider in (None, "", "offline") or (model or "").startswith("offline"):
        return "Decided by the built-in reasoner (nothing left this machine)"
    if provider == "ollama":
        return "Decided by the local language model (nothing left this machine)"
    family = next((f for f in ("Haiku", "Sonnet", "Opus") if f.lower() in (model or "").lower()), None)
    who = f"Claude {family}" if family else "a remote language model"
    return f"Decided by {who}" + ("" if is_local else "; the record's context was sent to it")


# ---- numbers that agree with the comparison they report ----------------------------------------------
# `compared_percents` (0.499 against 0.50 reads '49.9%' and '50%') lives with the policy's own
# decimals in `agents.common.compared_figures`, so the stored reason and the card round alike.


def confidence_sentence(value: float | None, threshold: float, stakes: str | None) -> str:
    if value is None:
        return f"no confidence was given; this needs {compared_percents(0.0, threshold)[1]} or more"
    shown, limit = compared_percents(value, threshold)
    verb = "is below" if value < threshold else "meets"
    return f"confidence {shown} {verb} the {limit} this kind of action needs ({stakes_label(stakes)})"


# ---- why a decision waits -------------------------------------------------------------------------

_ACTION_PREFIX = re.compile(r"^action \d+ \(([a-z_]+)\): ")
_BELOW = re.compile(r"confidence (-?[0-9.]+) is below the threshold ([0-9.]+) \((\w+) stakes\)")
_SET_BY_HUMAN = re.compile(r"would overwrite (\w+) \d+ field '([^']+)' was set by a human")
_IDS = re.compile(r"\b(contact|deal|meeting|account|decision|user|task) \d+\b")
_HASH_IDS = re.compile(r"\s*\(#\d+\)|\s*#\d+\b")


def reason_kind(reason: str) -> str:
    """The category of one policy reason (see REASON_LABELS)."""
    text = _ACTION_PREFIX.sub("", reason.strip())
    if text.startswith("escalated by the agent"):
        return "escalated"
    if "always asks a human" in text or "always need a human" in text:
        return "always_asks"
    if "supervised" in text or "CRM_SUPERVISED" in text:
        return "supervised"
    if "was set by a human" in text:
        return "overwrites_person"
    if _BELOW.search(text):
        return "below_threshold"
    if "parameters rejected" in text or "not found" in text or "no executor" in text or "in the past" in text \
            or "opted out" in text or "no email address" in text:
        return "cannot_run"
    return "needs_check" if text else "other"


def split_reasons(policy_reason: str | None) -> list[str]:
    text = (policy_reason or "").strip()
    text = text.removeprefix("queued: ")
    # The agent's escalation may itself hold '; ' (a list of signals): keep it whole.
    parts: list[str] = []
    for piece in re.split(r"; (?=action \d+ \(|escalated by the agent|supervised)", text):
        if piece.strip():
            parts.append(piece.strip())
    return parts


def main_reason(policy_reason: str | None) -> str:
    """The most serious category among a decision's reasons: what its group is named by."""
    kinds = {reason_kind(r) for r in split_reasons(policy_reason)} or {"other"}
    return min(kinds, key=_REASON_ORDER.index)


def reason_sentence(reason: str, confidence: float | None, thresholds: dict[str, float]) -> str:
    """One policy reason in plain words, its numbers agreeing with its comparison."""
    match = _ACTION_PREFIX.match(reason)
    action_type = match.group(1) if match else None
    text = _ACTION_PREFIX.sub("", reason.strip())
    below = _BELOW.search(text)
    if below:
        shown_threshold = float(below.group(2))
        current = thresholds.get(action_type or "")
        threshold = current if current is not None and f"{current:.2f}" == f"{shown_threshold:.2f}" else shown_threshold
        value = confidence if confidence is not None else float(below.group(1))
        sentence = confidence_sentence(value, threshold, below.group(3))
    elif text.startswith("escalated by the agent"):
        sentence = "the agent asks a manager to look"
    elif "critical stakes" in text:
        sentence = "critical actions always need a person"
    elif "always asks a human" in text:
        sentence = "the policy always asks a person for this kind of action"
    else:
        human = _SET_BY_HUMAN.search(text)
        if human:
            sentence = f"it would overwrite the {FIELD_LABELS.get(human.group(2), human.group(2))} a person entered"
        else:
            sentence = _IDS.sub(lambda m: f"the {m.group(1)}", text)
    prefix = f"{action_label(action_type)}: " if action_type else ""
    return prefix + sentence[:1].upper() + sentence[1:] if not prefix else prefix + sentence


def why_waiting(policy_reason: str | None, confidence: float | None, thresholds: dict[str, float]) -> list[str]:
    """Every reason a decision waits, each a sentence; repeats (one per action) said once."""
    out: list[str] = []
    for reason in split_reasons(policy_reason):
        sentence = reason_sentence(reason, confidence, thresholds)
        if sentence not in out:
            out.append(sentence)
    return out or ["Waits for a person"]


def plain(text: str | None) -> str:
    """Free text from the store with record ids replaced by words ('contact 12' -> 'the contact')."""
    return _IDS.sub(lambda m: f"the {m.group(1)}", _HASH_IDS.sub("", text or ""))
