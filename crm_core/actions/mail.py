"""Outbound email as the CRM records it: an outbox row, an `emails` row and an `email_sent` activity.

The recipient is always a contact's stored address, resolved by the calling action from the
decision's subject; nothing here accepts an address from params or model output.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from agents.common.working_hours import RepHours, working_windows
from crm_core import clock
from crm_core.actions.base import ActionContext
from crm_core.actions.common import delete_if_present, restore, snapshot
from crm_core.actions.sinks import queue_email, withdraw
from crm_core.models import Activity, Contact, Email, OutboxMessage, User

_CONTACT_FIELDS = ["last_activity_at", "updated_at"]


@dataclass
class Delivery:
    outbox_id: int
    email_id: int
    activity_id: int
    recipient: str
    status: str             # the outbox status right after queueing: pending | held
    contact_before: dict[str, Any]
    contact_after: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_working_moment(owner: User | None, at: datetime) -> datetime:
    """`at` itself when it falls inside the owner's working hours on a weekday, else the next start of them.

    Times are naive UTC like everywhere in the store; the owner's hours are in their own zone.
    """
    if owner is None:
        return at
    rep = RepHours(user_id=owner.id or 0, name=owner.name, timezone=owner.timezone or "UTC",
                   work_start_hour=owner.work_start_hour, work_end_hour=owner.work_end_hour)
    windows = working_windows(rep, at, at + timedelta(days=8))
    return windows[0][0] if windows else at


def deliver(
    ctx: ActionContext,
    contact: Contact,
    *,
    subject: str,
    body: str,
    deal_id: int | None,
    attachments: list[dict[str, Any]] | None = None,
    send_after: datetime | None = None,
    thread_id: str | None = None,
) -> Delivery:
    session = ctx.session
    now = clock.now()
    at = max(send_after, now) if send_after else now
    if send_after is not None and send_after < now:
        # Planned for a moment that passed while the item waited for approval: the agent chose
        # that time for a reason, so go at the next moment inside the owner's working hours,
        # not at 23:00 because that is when the manager clicked.
        at = next_working_moment(session.get(User, contact.owner_id) if contact.owner_id else None, now)
    contact_before = snapshot(contact, _CONTACT_FIELDS)
    msg = queue_email(
        session, ctx.sinks, decision_id=ctx.decision.id, contact_id=contact.id, recipient=contact.email or "",
        subject=subject, body=body, attachments=attachments or [], send_after=at,
    )
    email = Email(
        thread_id=thread_id or f"crm-{uuid.uuid4().hex[:16]}",
        contact_id=contact.id,
        deal_id=deal_id,
        direction="outbound",
        from_address=ctx.settings.mail_from,
        to_address=contact.email,
        subject=subject,
        body=body,
        sent_at=at,
    )
    session.add(email)
    session.flush()
    activity = Activity(
        type="email_sent",
        occurred_at=at,
        contact_id=contact.id,
        deal_id=deal_id,
        account_id=contact.account_id,
        payload={"email_id": email.id, "outbox_id": msg.id, "subject": subject, "decision_id": ctx.decision.id},
        source="agent",
    )
    session.add(activity)
    # A scheduled email is not activity yet; the contact's recency moves only for one going now.
    if at <= now and (contact.last_activity_at is None or contact.last_activity_at < at):
        contact.last_activity_at = at
    session.flush()
    return Delivery(outbox_id=msg.id, email_id=email.id, activity_id=activity.id, recipient=contact.email or "",
                    status=msg.status, contact_before=contact_before, contact_after=snapshot(contact, _CONTACT_FIELDS))


def undeliver(ctx: ActionContext, delivery: dict[str, Any]) -> tuple[bool, str]:
    """Withdraw an email that has not left; (True, note) if the CRM is back as before it was queued."""
    session = ctx.session
    cancelled, msg = withdraw(session, delivery["outbox_id"])
    if not cancelled:
        state = msg.status if msg else "missing"
        when = f" at {msg.sent_at:%Y-%m-%d %H:%M} UTC" if msg and msg.sent_at else ""
        return False, (f"email (outbox {delivery['outbox_id']}) to {delivery['recipient']} was {state}{when}; "
                       "an email cannot be unsent, so nothing was undone")
    delete_if_present(session, Activity, delivery["activity_id"])
    delete_if_present(session, Email, delivery["email_id"])
    session.flush()
    contact = session.get(Contact, msg.contact_id) if msg and msg.contact_id else None
    # Only if nothing touched the contact since: a later activity keeps its own last_activity_at.
    if contact is not None and snapshot(contact, _CONTACT_FIELDS) == delivery["contact_after"]:
        restore(contact, delivery["contact_before"])
    return True, f"email (outbox {delivery['outbox_id']}) to {delivery['recipient']} had not left ({'scheduled' if msg and msg.sink != 'outbox' else 'held in the outbox'}); cancelled"


def outbox_status(ctx: ActionContext, outbox_id: int) -> str | None:
    msg = ctx.session.get(OutboxMessage, outbox_id)
    return msg.status if msg else None
