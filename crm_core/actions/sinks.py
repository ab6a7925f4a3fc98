"""The outbox: every outgoing email and notification is first a row, handed to a sink after commit.

Every outgoing message is first an `outbox` row written in the action's transaction:
- no sink for its kind (the default): status `held`; it stays on the dashboard and never leaves.
- a sink for its kind: status `pending`. It is sent only after the transaction commits (so a
  rolled-back execution never sent anything), by `dispatch` in a fresh unit of work. A message
  with `send_after` in the future waits for `dispatch_due`, which the scheduler calls.
The dispatcher claims a message by a conditional UPDATE (pending -> sent) before sending: two
dispatchers never send it twice, and a revert that finds it still pending cancels it in time.
The sinks themselves (SMTP, webhook, recording) are in `crm_core.actions.sink`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm_core import clock
from crm_core.actions.sink import Outgoing, Sink, SinkError, Sinks
from crm_core.db import session_factory
from crm_core.models import AuditEntry, OutboxMessage
from crm_core.settings import get_settings

_AFTER_COMMIT_KEY = "crm_outbox_after_commit"
_LISTENING_KEY = "crm_outbox_listening"


# ---- writing outbox rows (inside the action's transaction) ------------------------------

def _queue(session: Session, sinks: Sinks, sink: Sink | None, msg: OutboxMessage) -> OutboxMessage:
    msg.status = "pending" if sink is not None else "held"
    msg.sink = sink.name if sink is not None else "outbox"
    session.add(msg)
    session.flush()
    if sink is not None:
        _dispatch_after_commit(session, msg.id, sinks)
    return msg


def queue_email(
    session: Session,
    sinks: Sinks,
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
    return _queue(session, sinks, sinks.email, OutboxMessage(
        kind="email", decision_id=decision_id, contact_id=contact_id, recipient=recipient, subject=subject,
        body=body, attachments=list(attachments), send_after=send_after or now, created_at=now,
    ))


def queue_notification(session: Session, sinks: Sinks, *, decision_id: int | None, text: str,
                       title: str | None = None) -> OutboxMessage:
    now = clock.now()
    return _queue(session, sinks, sinks.notification, OutboxMessage(
        kind="notification", decision_id=decision_id, recipient=sinks.notification.name if sinks.notification else None,
        subject=title, body=text, send_after=now, created_at=now,
    ))


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

def _claim(sessions: sessionmaker[Session], message_id: int) -> tuple[Outgoing, int | None, dict[str, Any]] | None:
    """Mark a pending, due message sent before sending it; None when it is not (any more) pending and due."""
    now = clock.now()
    with sessions.begin() as session:
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
        if not claimed:
            return None
        msg = session.get(OutboxMessage, message_id)
        return Outgoing.of(msg), msg.decision_id, {"outbox_id": message_id, "kind": msg.kind, "sink": msg.sink}


def dispatch(sessions: sessionmaker[Session], message_ids: Iterable[int], sinks: Sinks) -> int:
    """Send these pending, due messages, each claimed in its own transaction. Returns how many left."""
    sent = 0
    for message_id in message_ids:
        claimed = _claim(sessions, message_id)
        if claimed is None:
            continue
        outgoing, decision_id, details = claimed
        try:
            sinks.for_kind(outgoing.kind).deliver(outgoing)
        except SinkError as exc:
            with sessions.begin() as session:
                session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                                .values(status="failed", sent_at=None, error=str(exc)))
                session.add(AuditEntry(at=clock.now(), actor="system", event="outbox.failed", decision_id=decision_id,
                                       details=details | {"error": str(exc)}))
            continue
        sent += 1
        with sessions.begin() as session:
            session.add(AuditEntry(at=clock.now(), actor="system", event="outbox.sent", decision_id=decision_id,
                                   details=details | {"recipient": outgoing.recipient}))
    return sent


def dispatch_due(sessions: sessionmaker[Session] | None = None, sinks: Sinks | None = None, *, limit: int = 100) -> int:
    """Send pending messages whose time has come (scheduled emails); the scheduler calls this.

    `sessions` and `sinks` default to the configured store and the sinks the settings configure.
    It opens its own units of work (one read, then one claim per message), so call it outside
    any open transaction: on SQLite a caller's open write transaction would block the claims.
    """
    sessions = sessions or session_factory()
    now = clock.now()
    with sessions.begin() as session:
        ids = list(session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", or_(OutboxMessage.send_after.is_(None), OutboxMessage.send_after <= now))
            .order_by(OutboxMessage.send_after, OutboxMessage.id)
            .limit(limit)
        ))
    return dispatch(sessions, ids, sinks or Sinks.from_settings(get_settings())) if ids else 0


def _dispatch_after_commit(session: Session, message_id: int, sinks: Sinks) -> None:
    if not session.info.get(_LISTENING_KEY):
        # Listeners stay for the session's life; the id list is per transaction.
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_rollback", _on_rollback)
        session.info[_LISTENING_KEY] = True
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append((message_id, sinks))


def _on_commit(session: Session) -> None:
    # SQLAlchemy fires after_commit for a released SAVEPOINT too: wait for the real commit.
    if session.get_nested_transaction() is not None:
        return
    queued: list[tuple[int, Sinks]] = session.info.pop(_AFTER_COMMIT_KEY, [])
    if queued:
        sessions = sessionmaker(session.get_bind(), expire_on_commit=False)
        # Rows rolled back with a failed savepoint are no longer pending: the claim skips them.
        for message_id, sinks in queued:
            dispatch(sessions, [message_id], sinks)


def _on_rollback(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT rolled back: its rows are gone, so the dispatcher's claim skips them
    session.info.pop(_AFTER_COMMIT_KEY, None)
