"""Which contact and thread a received message belongs to.

In order: a Message-ID it answers (In-Reply-To, then References, newest first) that the CRM
sent (the outbox's `crm-outbox-<id>` ids) or already recorded; else the sender's address
against contacts' emails. A message from nobody the CRM knows is not a reply: it is noted (so
it is not read again) and nothing else is recorded, so a newsletter never becomes a lead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.normalize import email_key
from crm_core.models import Activity, Contact, Email, MailMessage, OutboxMessage

_MSG_ID = re.compile(r"<[^<>\s]+>")
_OUTBOX_ID = re.compile(r"crm-outbox-(\d+)@")


@dataclass(frozen=True)
class Match:
    contact_id: int | None
    thread_id: str | None
    deal_id: int | None
    matched_by: str  # thread | sender | none


def message_ids(header: str | None) -> list[str]:
    """The <...> ids in an In-Reply-To or References header, in order."""
    return _MSG_ID.findall(header or "")


def _from_outbox(session: Session, outbox_id: int) -> Match | None:
    msg = session.get(OutboxMessage, outbox_id)
    if msg is None or msg.contact_id is None:
        return None
    # The email row the send wrote names the thread; its activity holds the outbox id.
    for payload in session.scalars(select(Activity.payload).where(Activity.contact_id == msg.contact_id,
                                                                  Activity.type == "email_sent").order_by(Activity.id.desc()).limit(200)):
        if (payload or {}).get("outbox_id") == outbox_id and payload.get("email_id"):
            email = session.get(Email, payload["email_id"])
            if email is not None:
                return Match(contact_id=email.contact_id, thread_id=email.thread_id, deal_id=email.deal_id, matched_by="thread")
    return Match(contact_id=msg.contact_id, thread_id=None, deal_id=None, matched_by="thread")


def _from_recorded(session: Session, message_id: str) -> Match | None:
    seen = session.scalar(select(MailMessage).where(MailMessage.message_id == message_id))
    if seen is None or seen.contact_id is None:
        return None
    email = session.get(Email, seen.email_id) if seen.email_id else None
    return Match(contact_id=seen.contact_id, thread_id=seen.thread_id, deal_id=email.deal_id if email else None, matched_by="thread")


def match(session: Session, *, sender: str | None, in_reply_to: str | None, references: str | None) -> Match:
    answered = message_ids(in_reply_to) + list(reversed(message_ids(references)))
    for message_id in dict.fromkeys(answered):
        outbox = _OUTBOX_ID.search(message_id)
        found = _from_outbox(session, int(outbox.group(1))) if outbox else _from_recorded(session, message_id)
        if found is not None:
            return found
    key = email_key(sender)
    if key:
        contact_id = session.scalar(select(Contact.id).where(Contact.email_normalized == key))
        if contact_id is not None:
            # The contact's latest outbound email is the thread this most likely answers.
            last = session.scalars(select(Email).where(Email.contact_id == contact_id, Email.direction == "outbound")
                                   .order_by(Email.sent_at.desc()).limit(1)).first()
            return Match(contact_id=contact_id, thread_id=last.thread_id if last else None,
                         deal_id=last.deal_id if last else None, matched_by="sender")
    return Match(contact_id=None, thread_id=None, deal_id=None, matched_by="none")
