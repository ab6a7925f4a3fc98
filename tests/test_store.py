"""The store: migrations, engine settings, constraints, the append-only audit log."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from crm_core import clock
from crm_core.db import get_engine, unit_of_work
from crm_core.models import Account, AuditEntry, Contact, Deal, User


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(sqlite_store):
    with get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_contact_email_is_unique_case_insensitively(store):
    with unit_of_work() as s:
        s.add(Contact(email="Ana@Example.com", email_normalized="ana@example.com"))
    with pytest.raises(IntegrityError):
        with unit_of_work() as s:
            s.add(Contact(email="ana@example.COM", email_normalized="ana@example.com"))


def test_unit_of_work_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with unit_of_work() as s:
            s.add(User(name="Rita Rep"))
            s.flush()
            raise RuntimeError("boom")
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_entities_carry_created_and_updated_timestamps(store):
    from datetime import datetime

    with clock.frozen_at(datetime(2026, 1, 2, 3, 4, 5)):
        with unit_of_work() as s:
            acc = Account(name="Acme", name_key="acme")
            s.add(acc)
            s.flush()
            s.add(Deal(name="Acme expansion", stage="Discovery", account_id=acc.id))
    with unit_of_work() as s:
        deal = s.scalars(select(Deal)).one()
        assert deal.created_at == datetime(2026, 1, 2, 3, 4, 5)
        assert deal.updated_at == deal.created_at


def test_database_refuses_update_and_delete_of_audit_rows(store):
    with unit_of_work() as s:
        s.add(AuditEntry(actor="system", event="test.event", details={"n": 1}))
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with unit_of_work() as s:
                s.execute(text(statement))
    with unit_of_work() as s:
        row = s.scalars(select(AuditEntry)).one()
        assert row.actor == "system"
