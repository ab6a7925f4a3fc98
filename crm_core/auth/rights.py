"""The rights table: what each role may do. Data, shown as is on the settings page.

Services call `require(actor, right, doing=...)` for plain rights and `authorize_decision(...)`
for approving, rejecting and reverting agent decisions, where the answer depends on the
decision's stakes, its actions and who owns the record it is about. Every refusal is a
`PermissionDenied` whose message names the person, what they asked and the missing right.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from crm_core.actions.deals import stage_outcome
from crm_core.auth.actor import Actor
from crm_core.errors import PermissionDenied
from crm_core.models import Account, Contact, Deal, Decision, Meeting


class Right(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    roles: frozenset[str]


RIGHTS: tuple[Right, ...] = (
    Right(name="decide_own_low", roles=frozenset({"rep", "manager", "admin"}),
          description="Approve, reject or revert low-stakes agent decisions about records you own"),
    Right(name="decide_any", roles=frozenset({"manager", "admin"}),
          description="Approve, reject or revert agent decisions up to high stakes, on anyone's records"),
    Right(name="decide_critical", roles=frozenset({"manager", "admin"}),
          description="Approve critical actions: send a quote, merge contacts, move a deal to won or lost"),
    Right(name="view_all", roles=frozenset({"manager", "admin"}),
          description="See the whole team's pipeline and approval queue, not only your own records"),
    Right(name="act_on_any", roles=frozenset({"manager", "admin"}),
          description="Act on anyone's records (snooze a deal's flag, change a record), not only your own"),
    Right(name="edit_policy", roles=frozenset({"admin"}),
          description="Change what the agents may do alone: thresholds, stakes, always ask"),
    Right(name="agent_settings", roles=frozenset({"admin"}),
          description="Supervise agents and change agent settings"),
    Right(name="manage_users", roles=frozenset({"admin"}),
          description="Add users, change roles and passwords, deactivate users, revoke anyone's API tokens"),
    Right(name="own_tokens", roles=frozenset({"rep", "manager", "admin"}),
          description="Issue and revoke your own API tokens for scripts"),
    Right(name="import_data", roles=frozenset({"manager", "admin"}),
          description="Import CSV files into the book and save import mappings"),
    Right(name="edit_exchange_rates", roles=frozenset({"manager", "admin"}),
          description="Enter or upload exchange rates and choose the reporting currency every total is shown in"),
    Right(name="manage_integrations", roles=frozenset({"admin"}),
          description="Add and turn off webhook sources and subscriptions, which see and write every record"),
)
RIGHTS_BY_NAME: dict[str, Right] = {r.name: r for r in RIGHTS}
ROLES: tuple[str, ...] = ("rep", "manager", "admin")

# Action types that always need a manager, whatever their policy row says today: an admin who
# lowers a policy must not thereby let a rep send quotes or merge contacts.
CRITICAL_ACTION_TYPES: frozenset[str] = frozenset({"send_quote", "merge_contacts"})
_OWNED = {"contact": Contact, "deal": Deal, "account": Account, "meeting": Meeting}
_ROLE_LABEL = {"rep": "a rep", "manager": "a manager", "admin": "an admin", "system": "the system"}

DecisionVerb = Literal["approve", "reject", "revert"]


def rights_of(role: str) -> frozenset[str]:
    return frozenset(r.name for r in RIGHTS if role in r.roles)


def has_right(actor: Actor, right: str) -> bool:
    if right not in RIGHTS_BY_NAME:
        raise KeyError(f"unknown right {right!r}")
    return actor.role in RIGHTS_BY_NAME[right].roles


def visible_owner(actor: Actor) -> int | None:
    """Whose records a list shows: None = everyone's (the `view_all` right, and the system);
    otherwise the actor's own user id. Services that list records filter `owner_id` by it."""
    if actor.role == "system" or has_right(actor, "view_all"):
        return None
    return actor.user_id if actor.user_id is not None else -1  # a rep without a user row owns nothing


def owner_scope(actor: Actor, owner_id: int | None, *, doing: str) -> int | None:
    """The owner filter a list really applies: a manager's choice (None = everyone) as asked; for a
    rep always their own id, and asking for someone else's records is refused (`view_all`)."""
    own = visible_owner(actor)
    if own is None:
        return owner_id
    if owner_id is not None and owner_id != own:
        require(actor, "view_all", doing=f"{doing} of someone else")
    return own


def authorize_view(actor: Actor, owner_id: int | None, *, doing: str) -> None:
    """A rep opens records they own; anyone else's (or nobody's) needs `view_all`."""
    own = visible_owner(actor)
    if own is not None and owner_id != own:
        whose = "a record nobody owns" if owner_id is None else "someone else's record"
        require(actor, "view_all", doing=f"{doing}: it is {whose}")


def authorize_record(actor: Actor, owner_id: int | None, *, doing: str) -> None:
    """A rep acts on records they own; acting on anyone else's (or nobody's) needs `act_on_any`.

    For services that change a record directly (not through an agent decision), e.g. snoozing
    a deal's flag: `authorize_record(actor, deal.owner_id, doing=f"snooze the flag of {deal.name}")`.
    """
    if has_right(actor, "act_on_any"):
        return
    if owner_id is None or owner_id != actor.user_id:
        whose = "a record nobody owns" if owner_id is None else "someone else's record"
        require(actor, "act_on_any", doing=f"{doing}: it is {whose}")


def _who(actor: Actor) -> str:
    return f"{actor.name} ({_ROLE_LABEL.get(actor.role, actor.role)})"


def roles_with(right: str) -> str:
    """Who holds `right`, for a sentence: 'a manager or admin'."""
    roles = " or ".join(r for r in ROLES if r in RIGHTS_BY_NAME[right].roles)
    return ("an " if roles[:1] in ("a", "e", "i", "o", "u") else "a ") + roles


def require(actor: Actor, right: str, *, doing: str) -> None:
    """Raise PermissionDenied unless the actor's role carries `right`. `doing` says what was asked."""
    if not has_right(actor, right):
        raise PermissionDenied(
            f"{_who(actor)} cannot {doing}: that needs the right \u201c{right}\u201d "
            f"({RIGHTS_BY_NAME[right].description.lower()}), which {roles_with(right)} has",
            right=right,
        )


def critical_reasons(decision: Decision, actions: Iterable[dict[str, Any]] | None = None) -> list[str]:
    """Why this decision is critical (needs a manager), or [] when it is not."""
    reasons = []
    if decision.stakes == "critical":
        reasons.append("its stakes are critical")
    for action in actions if actions is not None else (decision.actions or []):
        action_type = action.get("type")
        if action_type in CRITICAL_ACTION_TYPES:
            reasons.append(f"it would {action_type.replace('_', ' ')}")
        elif action_type == "move_deal_stage":
            outcome = stage_outcome(str((action.get("params") or {}).get("to_stage") or ""))
            if outcome:
                reasons.append(f"it would mark a deal {outcome}")
    return reasons


def record_owner(session: Session, decision: Decision) -> int | None:
    model = _OWNED.get(decision.subject_type)
    if model is None or decision.subject_id is None:
        return None
    row = session.get(model, decision.subject_id)
    return getattr(row, "owner_id", None) if row is not None else None


def authorize_decision(session: Session, actor: Actor, decision: Decision, verb: DecisionVerb,
                       *, actions: list[dict[str, Any]] | None = None) -> None:
    """May `actor` approve/reject/revert this decision? Raises PermissionDenied naming the right.

    `actions` are the edited actions when a human edits before approving: the check covers what
    will run, not only what was proposed.
    """
    what = f"{verb} decision {decision.id}"
    if actor.role == "system":
        raise PermissionDenied(f"{what}: agents and the scheduler cannot {verb} a queued decision; a person must "
                               "(right \u201cdecide_own_low\u201d or \u201cdecide_any\u201d)", right="decide_any")
    critical = critical_reasons(decision, actions)
    if critical:
        require(actor, "decide_critical", doing=f"{what} because {' and '.join(critical)}")
        return
    if has_right(actor, "decide_any"):
        return
    require(actor, "decide_own_low", doing=what)
    stakes = decision.stakes or "low"
    if stakes != "low":
        require(actor, "decide_any", doing=f"{what}: its stakes are {stakes}, and only low-stakes decisions are yours to decide")
    owner = record_owner(session, decision)
    if owner is None or owner != actor.user_id:
        whose = "a record nobody owns" if owner is None else "someone else's record"
        require(actor, "decide_any", doing=f"{what}: it is about {whose}, and you may decide only on records you own")
