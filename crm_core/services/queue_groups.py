"""The approval queue for hundreds of items: groups of the same proposal, and decisions on many at once.

A group is every queued decision with the same agent, the same kind of action and the same main
reason for waiting ("198 tasks for the rep from the lead scoring agent: confidence below the
threshold"). A manager approves or rejects a group, or everything under the current filters, in
one request: `plan(...)` says exactly which decisions and what cannot be undone (the page shows it
as the confirmation), and `decide_many(...)` takes those ids, not the filter again, so nothing
that arrived after the confirmation is decided unseen. Each decision still goes through the
oversight state machine on its own (conditional update, rights, execution, audit) inside its own
savepoint: one that someone else decided meanwhile, or that fails, does not stop the others.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from crm_core import oversight
from crm_core.actions import REGISTRY
from crm_core.auth.actor import Actor
from crm_core.auth.rights import visible_owner
from crm_core.errors import PermissionDenied, UserError
from crm_core.models import Decision
from crm_core.oversight import QueueItem, wording
from crm_core.oversight.defaults import stakes_rank
from crm_core.oversight.schemas import QueueEntry
from crm_core.oversight.views import queue_entries, queue_items_by_id

Verdict = Literal["approve", "reject"]
PREVIEW = 3  # members shown under a group's title


class QueueFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str | None = None
    stakes: str | None = None
    action_type: str | None = None
    reason: str | None = None        # a key of wording.REASON_LABELS


class QueueGroup(BaseModel):
    key: str                          # "agent|action_type|reason": stable across reruns
    agent: str
    action_type: str
    reason: str
    count: int
    title: str                        # "198 tasks for the rep"
    subtitle: str                     # "from the lead scoring agent · confidence below the threshold"
    stakes: str | None                # the highest among the members
    escalated: int                    # members the agent escalated
    cannot_undo: list[str]            # what approving them all would do that cannot be taken back
    preview: list[str]                # headlines of the most urgent members
    ids: list[int]                    # every member, most urgent first


class QueueOverview(BaseModel):
    total: int                        # queued decisions under the filters
    everything: int                   # queued decisions with no filter
    groups: list[QueueGroup]          # the group holding the most urgent decision first
    ids: list[int]                    # every decision under the filters, most urgent first


class BulkPlan(BaseModel):
    """What a group or filter action will do, for the confirmation."""

    verdict: Verdict
    ids: list[int]
    count: int
    what: str                         # "Approve 198 tasks for the rep from the lead scoring agent"
    cannot_undo: list[str]            # sentences; empty when everything can be reverted
    confirm_label: str                # the confirmation button: "Yes, approve 198"


class BulkOutcome(BaseModel):
    verdict: Verdict
    done: int                         # approved and executed, or rejected
    failed: list[str]                 # "<headline>: <why>" for each that was approved but did not run
    skipped: list[str]                # "<headline>: <why>" for each that could not be decided (decided meanwhile, no right)
    message: str


def _group_key(entry: QueueEntry) -> tuple[str, str, str]:
    return entry.agent, "+".join(entry.action_types) or "look", entry.reason_kind


def _cannot_undo(action_types: Sequence[Sequence[str]]) -> list[str]:
    counts: dict[str, int] = {}
    for types in action_types:
        for t in set(types):
            spec = REGISTRY.get(t)
            if spec is None or not spec.reversible or t in wording.CANNOT_UNDO:
                counts[t] = counts.get(t, 0) + 1
    return [wording.cannot_undo_sentence(t, n, REGISTRY[t].undo_note if t in REGISTRY else None)
            for t, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def _filter_entries(session: Session, filters: QueueFilter, actor: Actor | None) -> list[QueueEntry]:
    owner = visible_owner(actor) if actor is not None else None
    return queue_entries(session, agent=filters.agent, stakes=filters.stakes, action_type=filters.action_type,
                         reason=filters.reason, owner_id=owner)


def overview(session: Session, filters: QueueFilter = QueueFilter(), *, actor: Actor | None = None) -> QueueOverview:
    """The queue under the filters: its size, its groups with previews, and every id by urgency.

    With an `actor` lacking the `view_all` right (a rep), only decisions about their own records.
    """
    entries = _filter_entries(session, filters, actor)
    everything = len(entries) if filters == QueueFilter() else len(_filter_entries(session, QueueFilter(), actor))
    members: dict[tuple[str, str, str], list[QueueEntry]] = {}
    for entry in entries:  # already most urgent first: each group's members keep that order
        members.setdefault(_group_key(entry), []).append(entry)
    groups = []
    for (agent, action_type, reason), group in members.items():
        first_type = group[0].action_types[0] if group[0].action_types else None
        title = f"{len(group)} {wording.action_plural(first_type, len(group))}" if "+" not in action_type else \
            f"{len(group)} proposal{'s' if len(group) != 1 else ''} with several actions"
        groups.append(QueueGroup(
            key=f"{agent}|{action_type}|{reason}", agent=agent, action_type=action_type, reason=reason, count=len(group),
            title=title, subtitle=f"from {wording.agent_phrase(agent)} · {wording.REASON_LABELS[reason].lower()}",
            stakes=max((e.stakes for e in group), key=stakes_rank, default=None),
            escalated=sum(e.escalated for e in group), cannot_undo=_cannot_undo([e.action_types for e in group]),
            preview=[e.headline for e in group[:PREVIEW]], ids=[e.id for e in group],
        ))
    return QueueOverview(total=len(entries), everything=everything, groups=groups, ids=[e.id for e in entries])


def cards(session: Session, ids: Sequence[int]) -> list[QueueItem]:
    """Full cards (in plain words) for these decisions, in the order given; decided ones are left out."""
    return queue_items_by_id(session, list(ids))


def plan(session: Session, verdict: Verdict, filters: QueueFilter = QueueFilter(), *, group: str | None = None,
         actor: Actor | None = None) -> BulkPlan:
    """What approving/rejecting a group (by key) or everything under the filters would do (of what `actor` sees)."""
    if verdict not in ("approve", "reject"):
        raise UserError(f"a bulk decision is approve or reject, not {verdict!r}")
    entries = _filter_entries(session, filters, actor)
    if group is not None:
        entries = [e for e in entries if "|".join(_group_key(e)) == group]
        if not entries:
            raise UserError("that group is empty now: someone decided its items, or they expired; the queue is redrawn")
        first = entries[0]
        kind = wording.action_plural(first.action_types[0] if first.action_types else None, len(entries))
        what = f"{verdict.capitalize()} {len(entries)} {kind} from {wording.agent_phrase(first.agent)}"
    else:
        if not entries:
            raise UserError("nothing waits under these filters")
        what = f"{verdict.capitalize()} all {len(entries)} decision{'s' if len(entries) != 1 else ''} under the current filters"
    if verdict == "approve":
        cannot = _cannot_undo([e.action_types for e in entries])
    else:
        cannot = [f"{len(entries)} proposal{'s' if len(entries) != 1 else ''} will be dropped: a rejected proposal "
                  "does not come back to the queue (the agent may propose again when something changes)"]
    return BulkPlan(verdict=verdict, ids=[e.id for e in entries], count=len(entries), what=what, cannot_undo=cannot,
                    confirm_label=f"Yes, {verdict} {len(entries)}")


def _decide_one(session: Session, decision_id: int, verdict: Verdict, actor: Actor, note: str | None,
                edited: list[dict[str, Any]] | None = None) -> Decision:
    extra = {"edited_actions": edited} if edited is not None else {}
    transition = oversight.approve if verdict == "approve" else oversight.reject
    return transition(session, decision_id, actor=actor, note=note, **extra)


class Outcome(BaseModel):
    """What one click on one card did, in a sentence shown as is."""

    decision_id: int
    status: str
    ok: bool
    message: str


def decide_one(session: Session, decision_id: int, *, verdict: Verdict, actor: Actor, note: str | None = None,
               edited: list[dict[str, Any]] | None = None) -> Outcome:
    """Approve (optionally with edited actions) or reject one decision; the message names it, not its id."""
    name = next((e.headline for e in queue_entries(session, ids=[decision_id])), "This proposal")
    try:
        decision = _decide_one(session, decision_id, verdict, actor, note or None, edited)
    except PermissionDenied as exc:
        raise PermissionDenied(f"{name}: {wording.plain(str(exc))}", right=exc.right) from None
    except UserError as exc:
        raise UserError(f"{name}: {wording.plain(str(exc))}") from None
    if decision.status == "rejected":
        return Outcome(decision_id=decision_id, status=decision.status, ok=True,
                       message=f"Rejected by {actor.name}; nothing ran: {name}.")
    if decision.status == "executed":
        how = "Edited, approved" if edited is not None else "Approved"
        return Outcome(decision_id=decision_id, status=decision.status, ok=True,
                       message=f"{how} by {actor.name} and carried out: {name}.")
    return Outcome(decision_id=decision_id, status=decision.status, ok=False,
                   message=f"Approved by {actor.name} but it failed, nothing was applied: {name}: "
                           f"{wording.plain(decision.error or decision.status)}")


def decide_many(session: Session, ids: Sequence[int], *, verdict: Verdict, actor: Actor, note: str | None = None) -> BulkOutcome:
    """Approve or reject each id on its own, in this one unit of work, each in its own savepoint.

    The ids come from a `plan` the person confirmed. One that someone else decided meanwhile, that
    the actor has no right to decide, or whose action fails does not stop the others; the outcome
    lists each such item by name.
    """
    if verdict not in ("approve", "reject"):
        raise UserError(f"a bulk decision is approve or reject, not {verdict!r}")
    headlines = {e.id: e.headline for e in queue_entries(session, ids=ids)}
    done, failed, skipped = 0, [], []
    for decision_id in dict.fromkeys(ids):
        name = headlines.get(decision_id, "A proposal decided meanwhile")
        try:
            with session.begin_nested():
                decision = _decide_one(session, decision_id, verdict, actor, note)
        except UserError as exc:
            skipped.append(f"{name}: {wording.plain(str(exc))}")
            continue
        if verdict == "reject" or decision.status == "executed":
            done += 1
        else:
            failed.append(f"{name}: {wording.plain(decision.error or decision.status)}")
    verb = "approved and carried out" if verdict == "approve" else "rejected"
    parts = [f"{done} {verb} by {actor.name}"]
    if failed:
        parts.append(f"{len(failed)} approved but failed (nothing of those was applied)")
    if skipped:
        parts.append(f"{len(skipped)} not decided")
    return BulkOutcome(verdict=verdict, done=done, failed=failed, skipped=skipped, message="; ".join(parts) + ".")
