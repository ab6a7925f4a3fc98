"""Getting a store ready for the dashboard: newest schema, default policies."""
from __future__ import annotations

from crm_core.db import migrate, unit_of_work
from crm_core.oversight import ensure_default_policies


def prepare_store(url: str) -> None:
    """Migrate to the newest schema and create the default policies; safe to run on every start."""
    migrate(url)
    with unit_of_work(url) as session:
        ensure_default_policies(session)
