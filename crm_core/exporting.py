"""CSV export of contacts, deals and decisions, safe to open in a spreadsheet.

A text cell starting with = + - @ (or a tab or carriage return) would run as a formula in
Excel, LibreOffice or Google Sheets; such cells get a leading apostrophe, which spreadsheets
show as plain text. Numbers we wrote ourselves (a negative amount) are left as numbers. The
import undoes the apostrophe, so an exported file imports back unchanged.

Files are UTF-8 with a byte-order mark so Excel reads accents right; `import` reads the mark.
Columns the CRM computes (ids, score, tier, risk, timestamps) are named `crm_*`; an import
ignores them, so an exported file edited in a spreadsheet imports back cleanly.

Who may export what follows the rights of the person asking: a rep's file holds the contacts and
deals they own, a manager's or admin's the whole book; the decision log (every agent decision
about anyone's records) needs `view_all`.

API: `export_csv(session, what, destination, *, actor) -> rows written` (a path, '-' or an open
text file) and `export_bytes(session, what, *, actor) -> bytes` for a download button.
"""
from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from crm_core.auth.actor import Actor
from crm_core.auth.rights import require, visible_owner
from crm_core.errors import UserError
from crm_core.models import Account, Contact, Deal, Decision, User

ExportKind = Literal["contacts", "deals", "decisions"]
EXPORT_KINDS: tuple[str, ...] = ExportKind.__args__  # type: ignore[attr-defined]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BATCH = 2000


def escape_cell(value: Any) -> Any:
    """Text that a spreadsheet would read as a formula, made inert with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int | float):
        return value
    if isinstance(value, list | tuple):
        return escape_cell("; ".join(str(v) for v in value))
    return escape_cell(str(value))


def _attribute_names(session: Session, model: Any, owner: int | None) -> list[str]:
    names: set[str] = set()
    query = select(model.attributes)
    if owner is not None:
        query = query.where(model.owner_id == owner)
    for attributes in session.scalars(query).yield_per(_BATCH):
        names.update((attributes or {}).keys())
    return sorted(names)


def _contacts(session: Session, owner: int | None) -> tuple[list[str], Iterator[list[Any]]]:
    attrs = _attribute_names(session, Contact, owner)
    headers = ["crm_id", "external_id", "first_name", "last_name", "email", "phone", "title", "company",
               "company_domain", "owner", "source", "lifecycle_stage", "outcome_at", "crm_score", "crm_tier",
               "last_activity_at", "sensitive", "created_at", "crm_updated_at", *(f"attributes.{a}" for a in attrs)]
    query = (select(Contact, Account.name, Account.domain, User.name)
             .outerjoin(Account, Contact.account_id == Account.id)
             .outerjoin(User, Contact.owner_id == User.id).order_by(Contact.id)
             .execution_options(yield_per=_BATCH))
    if owner is not None:
        query = query.where(Contact.owner_id == owner)

    def rows() -> Iterator[list[Any]]:
        for c, company, domain, owner in session.execute(query):
            extra = c.attributes or {}
            yield [c.id, c.external_id, c.first_name, c.last_name, c.email, c.phone, c.title, company, domain,
                   owner, c.source, c.lifecycle_stage, c.outcome_at, c.score, c.tier, c.last_activity_at,
                   c.sensitive, c.created_at, c.updated_at, *(extra.get(a) for a in attrs)]
    return headers, rows()


def _deals(session: Session, owner: int | None) -> tuple[list[str], Iterator[list[Any]]]:
    attrs = _attribute_names(session, Deal, owner)
    headers = ["crm_id", "external_id", "name", "account", "stage", "status", "amount", "currency", "owner",
               "contact_email", "product", "opened_at", "expected_close", "stage_entered_at", "closed_at",
               "crm_risk", "crm_risk_reason", "crm_created_at", "crm_updated_at", *(f"attributes.{a}" for a in attrs)]
    primary = aliased(Contact)
    query = (select(Deal, Account.name, User.name, primary.email)
             .outerjoin(Account, Deal.account_id == Account.id)
             .outerjoin(User, Deal.owner_id == User.id)
             .outerjoin(primary, Deal.primary_contact_id == primary.id).order_by(Deal.id)
             .execution_options(yield_per=_BATCH))
    if owner is not None:
        query = query.where(Deal.owner_id == owner)

    def rows() -> Iterator[list[Any]]:
        for d, account, owner, email in session.execute(query):
            extra = d.attributes or {}
            yield [d.id, d.external_id, d.name, account, d.stage, d.status, d.amount, d.currency, owner, email,
                   d.product, d.opened_at, d.expected_close, d.stage_entered_at, d.closed_at, d.risk,
                   d.risk_reason, d.created_at, d.updated_at, *(extra.get(a) for a in attrs)]
    return headers, rows()


def _decisions(session: Session, owner: int | None) -> tuple[list[str], Iterator[list[Any]]]:
    # Only reached with `view_all` (export_csv checks it): the log is about everyone's records.
    headers = ["id", "agent", "subject_type", "subject_id", "subject", "status", "actions", "confidence",
               "model_confidence", "stakes", "policy_verdict", "policy_reason", "provider", "model", "is_local",
               "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
               "latency_ms", "prompt_version", "created_at", "expires_at", "decided_at", "decided_by",
               "decision_note", "executed_at", "reverted_at", "reverted_by", "error", "reasoning"]
    query = select(Decision).order_by(Decision.id).execution_options(yield_per=_BATCH)

    def rows() -> Iterator[list[Any]]:
        for d in session.scalars(query):
            actions = [a.get("type", "?") for a in (d.actions or []) if isinstance(a, dict)]
            yield [d.id, d.agent, d.subject_type, d.subject_id, d.subject_label, d.status, actions, d.confidence,
                   d.model_confidence, d.stakes, d.policy_verdict, d.policy_reason, d.provider, d.model,
                   d.is_local, d.input_tokens, d.output_tokens, d.cache_read_tokens, d.cache_write_tokens,
                   d.cost_usd, d.latency_ms, d.prompt_version, d.created_at, d.expires_at, d.decided_at,
                   d.decided_by, d.decision_note, d.executed_at, d.reverted_at, d.reverted_by, d.error,
                   d.reasoning]
    return headers, rows()


_EXPORTERS: dict[str, Callable[[Session, int | None], tuple[list[str], Iterator[list[Any]]]]] = {
    "contacts": _contacts, "deals": _deals, "decisions": _decisions,
}


def write_csv(handle: TextIO, headers: list[str], rows: Iterator[list[Any]]) -> int:
    writer = csv.writer(handle)
    writer.writerow([escape_cell(h) for h in headers])
    count = 0
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        count += 1
    return count


def export_csv(session: Session, what: ExportKind, destination: str | Path | TextIO, *, actor: Actor) -> int:
    """Write one table as CSV, as far as `actor` may see it; returns the number of data rows."""
    if what not in _EXPORTERS:
        raise UserError(f"unknown export {what!r}; use one of {', '.join(EXPORT_KINDS)}")
    if what == "decisions":
        require(actor, "view_all", doing="export the decision log (every agent decision about anyone's records)")
    headers, rows = _EXPORTERS[what](session, visible_owner(actor))
    if isinstance(destination, str | Path):
        if str(destination) == "-":
            return write_csv(sys.stdout, headers, rows)
        path = Path(destination)
        if path.is_dir():
            raise UserError(f"{path}: is a directory; give a file name such as {path / (what + '.csv')}")
        try:
            with open(path, "w", newline="", encoding="utf-8-sig") as handle:
                return write_csv(handle, headers, rows)
        except OSError as exc:
            raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return write_csv(destination, headers, rows)


def export_bytes(session: Session, what: ExportKind, *, actor: Actor) -> bytes:
    buffer = io.StringIO()
    export_csv(session, what, buffer, actor=actor)
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")
