"""init-db: migrate the store to the newest schema."""
from __future__ import annotations

import argparse

from crm_core.db import migrate
from crm_core.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("init-db", help="migrate the store to the newest schema (alembic upgrade head)")
    p.set_defaults(func=_init_db)


def _init_db(args: argparse.Namespace) -> int:
    migrate()
    url = get_settings().database_url
    print(f"store at newest schema: {url.split('@')[-1]}")
    return 0
