"""Shared fixtures: a fresh, migrated store per test, on SQLite and (when configured) PostgreSQL.

`store` is parametrised over both back-ends; a test that takes it runs twice when
CRM_TEST_DATABASE_URL is set (CI sets it). Each test gets its own database: a copy of a
migrated SQLite file, or `CREATE DATABASE ... TEMPLATE` on PostgreSQL, both far faster
than migrating again.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agents.llm.breaker import BREAKERS
from crm_core.db import dispose_engines, migrate, normalise_url

PG_ENV = "CRM_TEST_DATABASE_URL"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers() -> Iterator[None]:
    """Each test starts with every model endpoint trusted: the breakers live in process memory."""
    BREAKERS.reset()
    yield
    BREAKERS.reset()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs CRM_TEST_DATABASE_URL")
    config.addinivalue_line("markers", "browser: drives a real headless Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    migrate(url)
    dispose_engines()
    return path


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    return normalise_url(url) if url else None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    admin = _pg_admin_url()
    if not admin:
        yield None
        return
    name = f"crm_tmpl_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    dispose_engines()  # a template must have no open connections
    yield name
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _fresh_sqlite(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "crm.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = _fresh_sqlite(sqlite_template, tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    yield url
    dispose_engines()


@pytest.fixture
def pg_store(pg_template: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    admin = _pg_admin_url()
    if not admin or not pg_template:
        pytest.skip(f"{PG_ENV} is not set")
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    yield url
    dispose_engines()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> str:
    """A fresh migrated store URL, on each back-end; CRM_DATABASE_URL points at it."""
    return request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    return SHARED_DATA
