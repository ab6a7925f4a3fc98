"""Accounts: upsert on external id, then domain, then lower-cased name (`name_key`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm_core.importing.contracts import ImportSummary, RowError
from crm_core.importing.directories import AccountDirectory, UserDirectory
from crm_core.importing.rows import AccountRow
from crm_core.importing.upsert import Progress, Resolution, changed, flush_related, load_rows, merged_attributes, write_creates
from crm_core.models import Account

_PLAIN_COLUMNS = ("external_id", "name", "name_key", "domain", "industry", "employee_count", "annual_revenue",
                  "country", "owner_id", "sensitive")
_STORED = [getattr(Account, c) for c in (*_PLAIN_COLUMNS, "attributes")]


def check_file(rows: list[AccountRow], filename: str) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        keys = [("external id", row.external_id)] if row.external_id else []
        keys.append(("domain", row.domain) if row.domain else ("name", row.name_key))
        for what, key in keys:
            first = seen.setdefault((what, key or ""), row.row)
            if first != row.row:
                errors.append(RowError(file=filename, row=row.row, column=None, value=key,
                                       reason=f"duplicate row: {what} {key!r} is also on row {first}"))
                break
    return errors


def resolve(session: Session, rows: list[AccountRow], filename: str, now: datetime,
            headers: dict[str, str] | None = None) -> Resolution:
    directory = AccountDirectory(session)
    res = Resolution(users=UserDirectory(session) if any(r.owner for r in rows) else None)
    matches = [(row, directory.find(external_id=row.external_id, name=row.name, domain=row.domain)) for row in rows]
    stored = load_rows(session, Account, [aid for _, aid in matches if aid is not None], _STORED)
    for row, aid in matches:
        values: dict[str, Any] = {
            "external_id": row.external_id, "name": row.name, "name_key": row.name_key, "domain": row.domain,
            "industry": row.industry, "employee_count": row.employee_count, "annual_revenue": row.annual_revenue,
            "country": row.country, "sensitive": row.sensitive,
            "owner_id": res.users.find_or_plan(row.owner, now) if res.users else None,
        }
        if aid is None:
            res.creates.append({**values, "sensitive": bool(row.sensitive), "attributes": row.attributes,
                                "manual_fields": [], "created_at": now, "updated_at": now})
            res.create_rows.append(row.row)
            continue
        changes = changed(stored[aid], values, _PLAIN_COLUMNS)
        attributes = merged_attributes(stored[aid].attributes, row.attributes)
        if attributes is not None:
            changes["attributes"] = attributes
        if changes:
            res.updates.append({"id": aid, **changes, "updated_at": now})
            res.update_rows.append(row.row)
        else:
            res.unchanged_rows.append(row.row)
    return res


def write(session: Session, res: Resolution, summary: ImportSummary, progress: Progress | None) -> None:
    flush_related(session, res, summary)
    write_creates(session, Account, res, progress, "accounts")
    summary.created += len(res.creates)
    summary.updated += len(res.updates)
    summary.unchanged += len(res.unchanged_rows)
