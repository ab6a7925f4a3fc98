"""Engine and session factory: SQLite in WAL mode, or PostgreSQL through psycopg 3.

Engines are cached per URL, not per process, because AppTest and the tests change the URL
inside one interpreter.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from crm_core.settings import PROJECT_ROOT, get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    # Plain postgresql:// would pick psycopg2, which we do not ship.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
        # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN handling is off)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Writers use IMMEDIATE: the write lock is taken up front, so two writers queue on
        # busy_timeout instead of failing on a lock upgrade half way through a unit of work.
        # Read-only units (dashboard pages) begin DEFERRED and never block the scheduler.
        if conn.get_execution_options().get("crm_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str | None = None) -> Engine:
    settings = get_settings()
    url = normalise_url(url or settings.database_url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                db_path = url.split("///", 1)[1] if "///" in url else ""
                if db_path and db_path != ":memory:":
                    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000})
                _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: str | None = None, *, readonly: bool = False) -> sessionmaker[Session]:
    engine = get_engine(url)
    if readonly:
        engine = engine.execution_options(crm_readonly=True)
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One session, one transaction: commits on success, rolls back on any error."""
    session = session_factory(url, readonly=readonly)()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def migrate(url: str | None = None) -> None:
    """Bring the store to the newest schema (`alembic upgrade head`)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "crm_core" / "migrations"))
    cfg.attributes["engine"] = get_engine(url)
    command.upgrade(cfg, "head")
