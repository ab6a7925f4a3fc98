"""Poll the shared sales inbox over IMAP (imap-tools) and record replies as emails and activities.

New messages are read by UID past a cursor kept in the store (reset when the folder's
UIDVALIDITY changes), without marking them read: the team's mail client is untouched. Each
message is recorded in its own transaction, once (out-of-office replies and bounces are noted but
never count as a reply): its Message-ID is a unique row, so a poll that
died half way, or two pollers, never record a reply twice. A recorded reply is an inbound
`emails` row on its thread plus an `email_replied` activity: the lead-scoring follower rescores
the contact within a second and the follow-up agent sees the reply and stops or changes course.

Mail bodies are untrusted text: stored as data, shown as plain text, fenced when sent to a model.
"""
from __future__ import annotations

import logging
import re
import ssl
from datetime import datetime
from email.utils import parseaddr

from imap_tools import AND, MailBox, MailBoxUnencrypted, MailMessage as ImapMessage
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.models import Activity, Contact, Cursor, Email, MailMessage
from crm_core.mailbox.threads import match
from crm_core.settings import Settings

log = logging.getLogger("crm.mailbox")
BATCH = 200             # messages per poll; the rest wait for the next one
BODY_CHARS = 20_000     # a reply's text beyond this is cut (quoted history, signatures)
_TAGS = re.compile(r"<[^>]+>")


class PollResult(BaseModel):
    read: int = 0
    recorded: int = 0
    automatic: int = 0    # out-of-office, auto-replies and bounces: noted, never counted as a reply
    by_thread: int = 0
    by_sender: int = 0
    unmatched: int = 0
    already_seen: int = 0


def _cursor_names(settings: Settings) -> tuple[str, str]:
    base = f"imap:{settings.imap_user}@{settings.imap_host}/{settings.imap_folder}"[:80]
    return f"{base}:uid", f"{base}:uidvalidity"


def _connect(settings: Settings) -> MailBox | MailBoxUnencrypted:
    if not settings.imap_host:
        raise UserError("no IMAP host configured (CRM_IMAP_HOST)")
    if settings.imap_ssl:
        return MailBox(settings.imap_host, settings.imap_port, ssl_context=ssl.create_default_context(), timeout=30)
    return MailBoxUnencrypted(settings.imap_host, settings.imap_port, timeout=30)


# Where a reply's quoted history starts: Gmail/Apple ("On ... wrote:"), Outlook's header block.
_QUOTE_START = re.compile(r"^\s*(On .{0,300}wrote:|-{2,}\s*Original Message\s*-{2,}|From:\s.+)\s*$", re.I | re.M)


def reply_text(text: str) -> str:
    """The reply's own words: quoted history (our email, earlier replies) cut, so a reader and the agent see what is new."""
    found = _QUOTE_START.search(text)
    own = text[:found.start()] if found else text
    own = "\n".join(line for line in own.splitlines() if not line.lstrip().startswith(">")).strip()
    return own or text.strip()


def _text(msg: ImapMessage) -> str:
    text = msg.text or _TAGS.sub(" ", msg.html or "")
    return reply_text(text)[:BODY_CHARS]


def _header(msg: ImapMessage, name: str) -> str | None:
    values = msg.headers.get(name.lower())
    return " ".join(values) if values else None


_AUTO_SUBJECT = re.compile(r"^\s*(automatic reply|auto(matic)?[- ]?reply|auto:|out of (the )?office|abwesenheit|"
                           r"r[ée]ponse automatique|undeliverable|undelivered mail|delivery status notification|"
                           r"mail delivery (failed|failure))", re.I)
_AUTO_SENDER = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply)@", re.I)


def is_automatic(msg: ImapMessage, sender: str | None) -> bool:
    """An auto-reply or bounce (RFC 3834 Auto-Submitted, Precedence, the usual subjects): not a person answering."""
    auto = (_header(msg, "auto-submitted") or "no").strip().lower()
    precedence = (_header(msg, "precedence") or "").strip().lower()
    return (auto != "no" or precedence in ("bulk", "junk", "list", "auto_reply")
            or any(_header(msg, h) for h in ("x-autoreply", "x-autorespond"))
            or bool(_AUTO_SUBJECT.match(msg.subject or "")) or bool(_AUTO_SENDER.match(sender or "")))


def _sent_at(msg: ImapMessage) -> datetime:
    date = msg.date
    if date is None or date.year < 1990:
        return clock.now()
    return clock.to_naive_utc(date) if date.tzinfo else date


def record_message(session: Session, msg: ImapMessage, *, mailbox: str, own_address: str, fallback_id: str) -> str:
    """Record one message; returns how it matched (thread | sender | none | seen)."""
    message_id = (_header(msg, "message-id") or fallback_id).strip()[:500]
    sender = parseaddr(msg.from_ or "")[1] or msg.from_
    automatic = is_automatic(msg, sender)
    if (sender and sender.lower() == own_address.lower()) or automatic:
        # Our own copy (Bcc to the shared inbox; the outbox recorded it), or an out-of-office or
        # bounce: noted so it is not read again, but no one answered, so the follow-up goes on.
        found = None
    else:
        found = match(session, sender=sender, in_reply_to=_header(msg, "in-reply-to"), references=_header(msg, "references"))
    seen = MailMessage(message_id=message_id, mailbox=mailbox[:300], received_at=clock.now(),
                       matched_by=found.matched_by if found else ("auto" if automatic else "none"),
                       contact_id=found.contact_id if found else None, thread_id=found.thread_id if found else None)
    try:
        with session.begin_nested():
            session.add(seen)
            session.flush()
    except IntegrityError:
        return "seen"
    if found is None or found.contact_id is None:
        return "auto" if automatic else "none"
    at = _sent_at(msg)
    thread_id = found.thread_id or f"mail-{message_id.strip('<>')[:180]}"
    email = Email(thread_id=thread_id, contact_id=found.contact_id, deal_id=found.deal_id, direction="inbound",
                  from_address=(sender or "")[:320], to_address=", ".join(msg.to)[:320] if msg.to else None,
                  subject=(msg.subject or "")[:500], body=_text(msg), sent_at=at)
    session.add(email)
    session.flush()
    seen.email_id = email.id
    seen.thread_id = thread_id
    session.add(Activity(type="email_replied", occurred_at=at, contact_id=found.contact_id, deal_id=found.deal_id,
                         payload={"email_id": email.id, "subject": email.subject, "matched_by": found.matched_by},
                         source="mailbox"))
    # The emails this answers are replied now: the follow-up agent stops chasing them.
    session.execute(update(Email).where(Email.thread_id == thread_id, Email.contact_id == found.contact_id,
                                        Email.direction == "outbound", Email.replied_at.is_(None), Email.sent_at <= at)
                    .values(replied_at=at).execution_options(synchronize_session=False))
    contact = session.get(Contact, found.contact_id)
    if contact is not None and (contact.last_activity_at is None or contact.last_activity_at < at):
        contact.last_activity_at = at
    return found.matched_by


def poll(settings: Settings, url: str | None = None) -> PollResult:
    """Read what arrived since the last poll; each message in its own unit of work."""
    result = PollResult()
    uid_cursor, validity_cursor = _cursor_names(settings)
    mailbox_name = f"{settings.imap_user}@{settings.imap_host}/{settings.imap_folder}"
    with _connect(settings) as box:
        box.login(settings.imap_user or "", settings.imap_password or "", initial_folder=settings.imap_folder)
        status = box.folder.status(settings.imap_folder, ["UIDVALIDITY"])
        validity = int(status.get("UIDVALIDITY", 0))
        with unit_of_work(url) as session:
            last = session.get(Cursor, uid_cursor)
            known = session.get(Cursor, validity_cursor)
            start = last.position if last is not None and known is not None and known.position == validity else 0
        uids = [int(u) for u in box.uids(AND(uid=f"{start + 1}:*")) if int(u) > start][:BATCH]
        if not uids:
            _save_cursor(url, uid_cursor, validity_cursor, start, validity)
            return result
        for msg in box.fetch(AND(uid=",".join(str(u) for u in uids)), mark_seen=False, bulk=True):
            result.read += 1
            with unit_of_work(url) as session:
                how = record_message(session, msg, mailbox=mailbox_name, own_address=settings.mail_from,
                                     fallback_id=f"<imap-{validity}-{msg.uid}@{settings.imap_host}>")
            if how == "seen":
                result.already_seen += 1
            elif how == "auto":
                result.automatic += 1
            elif how == "none":
                result.unmatched += 1
            else:
                result.recorded += 1
                result.by_thread += how == "thread"
                result.by_sender += how == "sender"
        _save_cursor(url, uid_cursor, validity_cursor, max(uids), validity)
    log.info("mailbox %s: %s", mailbox_name, result.model_dump())
    return result


def _save_cursor(url: str | None, uid_cursor: str, validity_cursor: str, position: int, validity: int) -> None:
    with unit_of_work(url) as session:
        for name, value in ((uid_cursor, position), (validity_cursor, validity)):
            row = session.get(Cursor, name, with_for_update=True)
            if row is None:
                session.add(Cursor(name=name, position=value, updated_at=clock.now()))
            else:
                row.position = value
                row.updated_at = clock.now()
