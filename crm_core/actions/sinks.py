"""Where outgoing email and notifications go: SMTP, a Slack-compatible webhook, or the outbox table.

Every outgoing message is first an `outbox` row written in the action's transaction:
- no sink configured (the default): status `held`; it stays on the dashboard and never leaves.
- a sink configured: status `pending`. It is sent only after the transaction commits (so a
  rolled-back execution never sent anything), by `dispatch` in a fresh unit of work. A message
  with `send_after` in the future waits for `dispatch_due`, which the scheduler calls.
The dispatcher claims a message by a conditional UPDATE (pending -> sent) before sending: two
dispatchers never send it twice, and a revert that finds it still pending cancels it in time.
"""
from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import Engine, event, or_, select, update
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.models import AuditEntry, OutboxMessage
from crm_core.settings import Settings, get_settings

_AFTER_COMMIT_KEY = "crm_outbox_after_commit"
_LISTENING_KEY = "crm_outbox_listening"
SMTP_TIMEOUT_S = 30
WEBHOOK_TIMEOUT_S = 10


class SinkError(Exception):
    """A sink refused or could not be reached; kept on the outbox row as its error."""


# ---- writing outbox rows (inside the action's transaction) ------------------------------

def queue_email(
    session: Session,
    settings: Settings,
    *,
    decision_id: int | None,
    contact_id: int | None,
    recipient: str,
    subject: str,
    body: str,
    attachments: Iterable[dict[str, Any]] = (),
    send_after=None,
) -> OutboxMessage:
    now = clock.now()
    has_sink = bool(settings.smtp_host)
    msg = OutboxMessage(
        kind="email",
        decision_id=decision_id,
        contact_id=contact_id,
        recipient=recipient,
        subject=subject,
        body=body,
        attachments=list(attachments),
        status="pending" if has_sink else "held",
        sink="smtp" if has_sink else "outbox",
        send_after=send_after or now,
        created_at=now,
    )
    session.add(msg)
    session.flush()
    if has_sink:
        _dispatch_after_commit(session, msg.id)
    return msg


def queue_notification(session: Session, settings: Settings, *, decision_id: int | None, text: str,
                       title: str | None = None) -> OutboxMessage:
    now = clock.now()
    has_sink = bool(settings.webhook_url)
    msg = OutboxMessage(
        kind="notification",
        decision_id=decision_id,
        recipient="webhook" if has_sink else None,
        subject=title,
        body=text,
        status="pending" if has_sink else "held",
        sink="webhook" if has_sink else "outbox",
        send_after=now,
        created_at=now,
    )
    session.add(msg)
    session.flush()
    if has_sink:
        _dispatch_after_commit(session, msg.id)
    return msg


def withdraw(session: Session, message_id: int) -> tuple[bool, OutboxMessage | None]:
    """Cancel a message that has not left (held, pending or failed). Returns (cancelled, row)."""
    cancelled = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(("held", "pending", "failed")))
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    ).rowcount
    msg = session.get(OutboxMessage, message_id)
    if msg is not None:
        session.refresh(msg)
    return bool(cancelled), msg


# ---- sending ----------------------------------------------------------------------------

def build_email(settings: Settings, msg: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = msg.recipient
    email["Subject"] = msg.subject or ""
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(idstring=f"crm-outbox-{msg.id}", domain=settings.mail_from.rpartition("@")[2] or "localhost")
    email.set_content(msg.body or "")
    for att in msg.attachments or []:
        maintype, _, rest = att.get("content_type", "application/octet-stream").partition("/")
        subtype, *param_parts = [p.strip() for p in rest.split(";")]
        params = dict(p.split("=", 1) for p in param_parts if "=" in p)
        content = att.get("content", "")
        if maintype == "text":
            email.add_attachment(content, subtype=subtype, filename=att.get("filename"), params=params)
        else:
            email.add_attachment(content.encode(), maintype=maintype, subtype=subtype, filename=att.get("filename"))
    return email


def send_smtp(settings: Settings, msg: OutboxMessage) -> None:
    if not settings.smtp_host:
        raise SinkError("no SMTP host configured (CRM_SMTP_HOST)")
    email = build_email(settings, msg)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            # The envelope recipient is the outbox row's, and only that one.
            smtp.send_message(email, from_addr=settings.mail_from, to_addrs=[msg.recipient])
    except (OSError, smtplib.SMTPException) as exc:
        raise SinkError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc


def post_webhook(settings: Settings, msg: OutboxMessage) -> None:
    if not settings.webhook_url:
        raise SinkError("no webhook configured (CRM_WEBHOOK_URL)")
    text = f"*{msg.subject}*\n{msg.body}" if msg.subject else (msg.body or "")
    request = urllib.request.Request(
        settings.webhook_url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            if not 200 <= response.status < 300:
                raise SinkError(f"webhook answered HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise SinkError(f"webhook answered HTTP {exc.code}: {exc.reason}") from exc
    except (OSError, urllib.error.URLError) as exc:
        raise SinkError(f"webhook unreachable: {exc}") from exc


def _send(settings: Settings, msg: OutboxMessage) -> None:
    if msg.kind == "email":
        send_smtp(settings, msg)
    else:
        post_webhook(settings, msg)


def dispatch(engine: Engine, message_ids: Iterable[int], settings: Settings | None = None) -> int:
    """Send these pending, due messages, each claimed in its own transaction. Returns how many left."""
    settings = settings or get_settings()
    sent = 0
    for message_id in message_ids:
        now = clock.now()
        with Session(engine, expire_on_commit=False) as session, session.begin():
            claimed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "pending",
                    or_(OutboxMessage.send_after.is_(None), OutboxMessage.send_after <= now),
                )
                .values(status="sent", sent_at=now, error=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            msg = session.get(OutboxMessage, message_id) if claimed else None
        if msg is None:
            continue
        try:
            _send(settings, msg)
        except SinkError as exc:
            with Session(engine) as session, session.begin():
                session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                                .values(status="failed", sent_at=None, error=str(exc)))
                session.add(AuditEntry(at=clock.now(), actor="system", event="outbox.failed", decision_id=msg.decision_id,
                                       details={"outbox_id": message_id, "kind": msg.kind, "sink": msg.sink, "error": str(exc)}))
            continue
        sent += 1
        with Session(engine) as session, session.begin():
            session.add(AuditEntry(at=clock.now(), actor="system", event="outbox.sent", decision_id=msg.decision_id,
                                   details={"outbox_id": message_id, "kind": msg.kind, "sink": msg.sink, "recipient": msg.recipient}))
    return sent


def dispatch_due(url: str | None = None, settings: Settings | None = None, *, limit: int = 100) -> int:
    """Send pending messages whose time has come (scheduled emails); the scheduler calls this.

    It opens its own units of work (one read, then one claim per message), so call it outside
    any open transaction: on SQLite a caller's open write transaction would block the claims.
    """
    from crm_core.db import get_engine

    engine = get_engine(url)
    now = clock.now()
    with Session(engine) as session, session.begin():
        ids = list(session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", or_(OutboxMessage.send_after.is_(None), OutboxMessage.send_after <= now))
            .order_by(OutboxMessage.send_after, OutboxMessage.id)
            .limit(limit)
        ))
    return dispatch(engine, ids, settings) if ids else 0


def _dispatch_after_commit(session: Session, message_id: int) -> None:
    if not session.info.get(_LISTENING_KEY):
        # Listeners stay for the session's life; the id list is per transaction.
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_rollback", _on_rollback)
        session.info[_LISTENING_KEY] = True
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(message_id)


def _on_commit(session: Session) -> None:
    # SQLAlchemy fires after_commit for a released SAVEPOINT too: wait for the real commit.
    if session.get_nested_transaction() is not None:
        return
    ids = session.info.pop(_AFTER_COMMIT_KEY, [])
    if ids:
        # Rows rolled back with a failed savepoint are no longer pending: the claim skips them.
        dispatch(session.get_bind(), ids)


def _on_rollback(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT rolled back: its rows are gone, so the dispatcher's claim skips them
    session.info.pop(_AFTER_COMMIT_KEY, None)
