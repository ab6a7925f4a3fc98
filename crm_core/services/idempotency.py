"""Idempotency keys for POSTs from outside: a retried request gets the first answer, never a second write.

The guarantee is the unique (scope, key) row, written in the same transaction as the request's
effects. Two concurrent requests with one key: the second's insert waits on the first's
transaction (PostgreSQL's unique index; SQLite's single writer) and then finds its row, so it
answers with the stored response. A request that failed stored nothing, key included, so its
retry runs afresh.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.errors import UserError
from crm_core.models import IdempotencyRecord

KEEP_DAYS = 7  # a client retries within minutes; a week covers a queue that was down over a weekend


class IdempotencyConflict(UserError):
    """The key was used before for a different request body."""


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def claim(session: Session, *, scope: str, key: str, body_hash: str) -> tuple[IdempotencyRecord, bool]:
    """(record, replay). replay=True: the key was seen with this body; answer record.response again."""
    if not key or len(key) > 200:
        raise UserError("Idempotency-Key must be 1 to 200 characters")
    record = IdempotencyRecord(scope=scope, key=key, request_hash=body_hash, status_code=0, response={}, created_at=clock.now())
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
        return record, False
    except IntegrityError:
        pass
    stored = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)).one()
    if stored.request_hash != body_hash:
        raise IdempotencyConflict(f"the Idempotency-Key {key!r} was already used for a different request body")
    return stored, True


def remember(record: IdempotencyRecord, status_code: int, response: dict[str, Any]) -> None:
    record.status_code = status_code
    record.response = response


def purge_old(session: Session, *, days: int = KEEP_DAYS) -> int:
    cutoff = clock.now() - timedelta(days=days)
    return session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount or 0
