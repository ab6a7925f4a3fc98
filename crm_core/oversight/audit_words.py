"""The audit log in plain words: what happened, to which record, and what changed from what to what.

Reads the stored details of each entry (the action's before-image and what it wrote, the policy's
reasons, a policy's old and new values) and says them as short sentences; never raw JSON.
Pure functions over `AuditView` values plus a `Names` lookup and the decisions' headlines.
"""
from __future__ import annotations

import re
from typing import Any

from crm_core.oversight import wording
from crm_core.oversight.schemas import AuditView

EVENT_LABELS: dict[str, str] = {
    "decision.created": "Proposed",
    "decision.queued": "Sent to the approval queue",
    "decision.auto_approved": "Ran on its own",
    "decision.approved": "Approved",
    "decision.edited": "Edited and approved",
    "decision.rejected": "Rejected",
    "decision.expired": "Expired unanswered",
    "decision.executed": "Carried out",
    "decision.failed": "Failed",
    "decision.reused": "Nothing new: the last decision stands",
    "decision.reverted": "Reverted",
    "decision.revert_failed": "Revert failed",
    "action.executed": "Changed a record",
    "action.reverted": "Undid a change",
    "policy.updated": "Policy changed",
    "policy.defaults_created": "Default policies created",
    "calibration.report": "Calibration report",
    "deal.risk_snoozed": "Risk flag snoozed",
    "deal.risk_unsnoozed": "Risk snooze lifted",
    "outbox.sent": "Message sent",
    "outbox.failed": "Message failed",
    "import.applied": "Import",
    "supervision.updated": "Supervision changed",
    "quality.audited_after_import": "Data quality checked after an import",
}
# Fields a person does not need to see change: bookkeeping timestamps and internal provenance.
_QUIET_FIELDS = {"updated_at", "created_at", "score_updated_at", "risk_updated_at", "brief_ready_at", "_enrichment"}
_PASSED = re.compile(r"^([a-z_]+) confidence ([0-9.]+) >= ([0-9.]+) \((\w+) stakes\)$")
_MAX_LINES = 6
_CODE = re.compile(r"^[a-z]+(_[a-z]+)+$")


_VIA = {"password": "signed in", "oidc": "single sign-on", "token": "API token", "cli": "command line", "system": "system"}
_PERSON = re.compile(r"^(.*) \((password|oidc|token|cli|system)\)$")


def who(actor: str) -> str:
    """'agent:lead_scoring' -> 'Lead scoring agent'; 'policy' -> 'Policy (automatic)';
    'Maria Alvarez (token)' -> 'Maria Alvarez (API token)'."""
    if actor.startswith("agent:"):
        return f"{wording.agent_label(actor.removeprefix('agent:'))} agent"
    person = _PERSON.match(actor)
    if person:
        return f"{person.group(1)} ({_VIA[person.group(2)]})"
    return {"policy": "Policy (automatic)", "system": "The system", "scheduler": "The scheduler"}.get(actor, actor)


def event_label(event: str) -> str:
    return EVENT_LABELS.get(event) or event.replace(".", " ").replace("_", " ").capitalize()


def value_text(value: Any, limit: int = 60) -> str:
    """A stored value as a person reads it: '—' for nothing, quotes around text, yes/no."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{wording.FIELD_LABELS.get(k, k.replace('_', ' '))} {value_text(v, 30)}"
                         for k, v in value.items() if not str(k).startswith("_"))[:limit] or "—"
    if isinstance(value, list):
        return ", ".join(value_text(v, 30) for v in value[:5])[:limit]
    text = " ".join(str(value).split())
    if _CODE.match(text):  # an enum value such as add_to_nurture reads as words
        text = text.replace("_", " ")
    text = text[:limit - 1] + "…" if len(text) > limit else text
    return f"“{wording.plain(text)}”"


def _field(name: str) -> str:
    return wording.FIELD_LABELS.get(name, name.replace("_", " "))


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """'score: — → 82' for every field whose value differs (nested attributes one level down)."""
    out = []
    for key in before.keys() | after.keys():
        if key in _QUIET_FIELDS or str(key).startswith("_"):
            continue
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) or isinstance(new, dict):
            out += changes(old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {})
        elif old != new and key in after:
            out.append(f"{_field(key)}: {value_text(old)} → {value_text(new)}")
    return sorted(out)


def _executed(details: dict[str, Any], names: wording.Names) -> list[str]:
    action_type = details.get("action_type") or ""
    params = details.get("params") or {}
    lines = [wording.headline(action_type, params, names)]
    before = details.get("before_image") or {}
    result = details.get("result") or {}
    if "created" in before:
        return lines
    after = result.get("after") if isinstance(result.get("after"), dict) else None
    for _entity, old in before.items():
        if isinstance(old, dict):
            lines += changes(old, after if after is not None else params)
    return lines


def _passed(text: str) -> str:
    match = _PASSED.match(text)
    if not match:
        return wording.plain(text)
    action_type, value, threshold, stakes = match.groups()
    return f"{wording.action_label(action_type)}: " + wording.confidence_sentence(float(value), float(threshold), stakes)


_KINDS = ("contact", "deal", "meeting", "account")


def _reused(details: dict[str, Any], decision_headline: str | None) -> list[str]:
    """A run's subjects whose last decision stands: how many, never which ids (the details list them)."""
    if decision_headline:
        lines = [f"Still stands: {decision_headline}"]
    else:
        groups = details.get("reused") if isinstance(details.get("reused"), dict) else {}
        counts = [f"{len(ids):,} {kind if kind in _KINDS else 'record'}{'' if len(ids) == 1 else 's'}"
                  for kind, ids in groups.items() if isinstance(ids, list) and ids]
        looked = " and ".join(counts) or "every record of the run"
        lines = [f"Looked again at {looked}: nothing their last decisions depend on had changed, so they stand"]
        if isinstance(details.get("part"), int) and isinstance(details.get("parts"), int):
            lines.append(f"Part {details['part']} of {details['parts']} of one run")
    return lines + ["No model was asked"]


def _generic(details: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in details.items():
        if key.endswith("_id") or key in ("id", "via", "position", "proposal_index", "proposals", "context_snapshot"):
            continue
        lines.append(f"{_field(key)}: {value_text(value, 120)}")
    return lines


def describe(entry: AuditView, names: wording.Names, decision_headline: str | None,
             decision_confidence: float | None, thresholds: dict[str, float]) -> list[str]:
    """The entry's details as short sentences (at most a handful)."""
    d = entry.details or {}
    event = entry.event
    if event == "decision.created":
        lines = [decision_headline or "A proposal"]
    elif event == "decision.queued":
        lines = wording.why_waiting(d.get("reason"), decision_confidence, thresholds)
    elif event == "decision.auto_approved":
        lines = [_passed(p) for p in d.get("passed") or []] or ["no action was proposed"]
    elif event == "action.executed":
        lines = _executed(d, names)
    elif event == "action.reverted":
        lines = [wording.headline(d.get("action_type") or "", d.get("params") or {}, names)] if d.get("params") else []
        lines += [wording.plain(str(d["note"]))] if d.get("note") else []
    elif event == "decision.edited":
        lines = []
        for old, new in zip(d.get("before") or [], d.get("after") or [], strict=False):
            lines += changes(old.get("params") or {}, new.get("params") or {})
        lines = lines or ["approved with edits"]
    elif event == "policy.updated":
        label = wording.action_label(d.get("action_type"))
        lines = [f"{label}: {c}" for c in changes(d.get("old") or {}, d.get("new") or {})]
    elif event in ("decision.failed", "decision.revert_failed", "outbox.failed"):
        lines = [wording.plain(str(d.get("error") or "failed"))]
    elif event in ("decision.approved", "decision.rejected", "decision.executed", "decision.expired"):
        lines = [decision_headline] if decision_headline else []
    elif event == "decision.reverted":
        lines = [decision_headline] if decision_headline else []
        lines += [wording.plain(str(n)) for n in d.get("nothing_undone") or []]
    elif event == "quality.audited_after_import":
        was = f" (was {d['previous_book_score']:.0f})" if isinstance(d.get("previous_book_score"), (int, float)) else ""
        score = d.get("book_score")
        lines = [f"After importing {wording.plain(str(d.get('import_ref') or 'a file'))}: the book scores "
                 f"{score:.0f} of 100{was}" if isinstance(score, (int, float)) else "the book was audited"]
    elif event == "decision.reused":
        lines = _reused(d, decision_headline)
    elif event == "calibration.report":
        rows = d.get("rows") or []
        lines = [f"{len(rows)} kinds of action checked against human verdicts"]
    else:
        lines = _generic(d)
    if d.get("note") and event != "action.reverted":
        lines.append(f"Reason given: {value_text(d['note'], 200)}")
    return [line for line in lines if line][:_MAX_LINES]
