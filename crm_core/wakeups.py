"""Waking an idle scheduler worker when work may have arrived, instead of at its next polling tick.

Two signs, both cheap, both only hints:
- a job was queued: `announce()` sends a PostgreSQL NOTIFY on WORK_CHANNEL from the enqueuing
  transaction, delivered when it commits to every worker listening (any number of them, on any
  machine); a rolled-back enqueue, or a job due later, sends nothing;
- the activity log holds a row newer than the newest one when the worker last read the log
  (`mark()`, called just before each read): one index lookup (`max(id)`). On SQLite the lookup
  is made only when the file's change counter moved (`PRAGMA data_version`, read from memory; it
  moves when any other connection commits, the worker's own included, hence the lookup).
  Comparing with the last read, not with the start of the wait, matters: an event committed
  between the worker's last read and its next wait is not a change the wait could see.

`Wakeup.wait()` returns True as soon as there is a sign, else False when the timeout passes. Any
sign can be missed (a dropped listening connection, a PostgreSQL activity whose id was handed out
before a newer one committed): the worker's timers still run on their tick, so a missed wake-up
costs the old latency, never the work. A spurious one costs one read of the activity log.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any

from sqlalchemy import Engine, func, select as sql_select
from sqlalchemy.orm import Session

log = logging.getLogger("crm.scheduler")
WORK_CHANNEL = "crm_work"


def announce(session: Session, what: str) -> None:
    """Tell listening workers work arrived (PostgreSQL: NOTIFY, sent on commit; SQLite has one worker)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql_select(func.pg_notify(WORK_CHANNEL, what)))


class Wakeup:
    """Waits for a sign of new work on a connection of its own, checking every `step` seconds."""

    def __init__(self, engine: Engine, *, step: float = 0.05) -> None:
        self.engine = engine
        self.step = step
        self.is_postgres = engine.dialect.name == "postgresql"
        self._raw: Any = None  # the pool's wrapper of our own DBAPI connection, kept out of the pool
        self._notified = threading.Event()
        self._seen: Any = None  # the log's newest id when the worker last read it
        self._marked = False
        self._version: Any = None  # SQLite: the change counter when last looked at
        self._failing = False  # said once in the log, not on every wait

    # -- the connection ---------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._raw is None:
            raw = self.engine.raw_connection()
            try:
                if self.is_postgres:
                    conn = raw.driver_connection
                    conn.rollback()  # the pool's pre-ping may have opened a transaction
                    conn.autocommit = True
                    conn.add_notify_handler(lambda _notify: self._notified.set())
                    conn.execute(f"LISTEN {WORK_CHANNEL}")
            except Exception:
                raw.invalidate()
                raise
            self._raw = raw
            self._version = None
        return self._raw

    def _scalar(self, sql: str) -> Any:
        """One value from our connection; on PostgreSQL it also hands any NOTIFY received to the handler."""
        cursor = self._connection().driver_connection.execute(sql)
        try:
            return cursor.fetchone()[0]
        finally:
            cursor.close()

    def _newest_activity(self) -> Any:
        return self._scalar("SELECT max(id) FROM activities")

    def _sign(self) -> bool:
        if not self.is_postgres:
            version = self._scalar("PRAGMA data_version")
            if version == self._version:
                return False  # nobody committed since the last look: no lookup needed
            self._version = version
        return self._newest_activity() != self._seen or self._notified.is_set()

    def close(self) -> None:
        if self._raw is not None:
            try:
                self._raw.invalidate()  # a listening, autocommit connection must not go back to the pool
            except Exception:  # already broken: nothing to give back
                log.debug("closing the wake-up connection failed", exc_info=True)
            self._raw = None

    def _broken(self) -> None:
        # A broken connection (a restarted server): the ticks carry on; reconnect on the next call.
        if not self._failing:
            log.warning("wake-up connection failed; polling on the tick until it is back", exc_info=True)
            self._failing = True
        self.close()

    # -- the worker's side ------------------------------------------------------------------------
    def mark(self) -> None:
        """The worker is about to read the activity log: what it holds now needs no wake-up."""
        try:
            self._seen = self._newest_activity()
            self._marked = True
        except Exception:
            self._broken()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """True as soon as work may have arrived; False after `timeout` (or a stop request) without a sign."""
        deadline = time.monotonic() + timeout
        try:
            if not self._marked:
                self.mark()
            woke = self._sign()
            if self._failing:
                log.info("wake-up connection is back")
                self._failing = False
            while not woke and not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                step = min(self.step, left)
                if self.is_postgres:
                    select.select([self._raw.driver_connection.fileno()], [], [], step)
                elif stop.wait(step):
                    return False
                woke = self._sign()
            self._notified.clear()
            return woke
        except Exception:
            self._broken()
            stop.wait(max(0.0, deadline - time.monotonic()))
            return False
