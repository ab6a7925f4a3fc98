"""Records that are one record typed twice: same email, or same name at the same company, once
case, accents, punctuation, spaces and legal suffixes ("Inc.", "Ltda") are set aside."""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import Account, Contact
from crm_core.quality.fields import record_labels
from crm_core.quality.placeholders import is_placeholder_text
from crm_core.quality.schemas import DuplicateGroup

_LEGAL = {"inc", "incorporated", "llc", "ltd", "limited", "corp", "corporation", "co", "company", "gmbh", "sa",
          "ltda", "plc", "ag", "bv", "srl", "spa", "sas", "pty", "me", "eireli", "oy", "ab", "nv"}
_WORDS = re.compile(r"[a-z0-9]+")
_CHUNK = 5000


def _plain(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()


def email_key(email: str | None) -> str | None:
    if not email or is_placeholder_text(email):
        return None
    text = re.sub(r"\s+", "", _plain(email)).removeprefix("mailto:").strip(".,;<>\"'")
    return text if "@" in text else None


def name_key(*parts: str | None) -> str | None:
    words = [w for p in parts if p and not is_placeholder_text(p) for w in _WORDS.findall(_plain(p))]
    return "".join(words) or None


def company_key(name: str | None) -> str | None:
    if not name or is_placeholder_text(name):
        return None
    words = _WORDS.findall(_plain(name).replace("&", " and ").replace(".", ""))  # "S.A." is "sa", a legal suffix
    kept = [w for w in words if w not in _LEGAL] or words
    return "".join(kept) or None


def _groups(keys: dict[int, str]) -> list[list[int]]:
    by_key: dict[str, list[int]] = defaultdict(list)
    for rid, key in keys.items():
        by_key[key].append(rid)
    return [sorted(ids) for ids in by_key.values() if len(ids) > 1]


def duplicate_groups(session: Session) -> list[DuplicateGroup]:
    emails: dict[int, str] = {}
    people: dict[int, str] = {}
    last = 0
    while True:
        rows = session.execute(
            select(Contact.id, Contact.email, Contact.first_name, Contact.last_name, Account.name, Contact.attributes)
            .outerjoin(Account, Account.id == Contact.account_id)
            .where(Contact.id > last).order_by(Contact.id).limit(_CHUNK)).all()
        if not rows:
            break
        for rid, email, first, last_name, account, attributes in rows:
            ekey = email_key(email)
            if ekey:
                emails[rid] = ekey
            company = account or (attributes or {}).get("company")
            person, firm = name_key(first, last_name), company_key(company if isinstance(company, str) else None)
            # Both names, so "Maria" at a big company is not taken for every Maria there.
            if person and firm and first and last_name:
                people[rid] = f"{person}|{firm}"
        last = rows[-1][0]
    accounts: dict[int, str] = {}
    for rid, name in session.execute(select(Account.id, Account.name)):
        key = company_key(name)
        if key:
            accounts[rid] = key

    groups: list[tuple[str, str, list[int]]] = []
    by_email = _groups(emails)
    in_email_group = {frozenset(g) for g in by_email}
    groups += [("contacts.email", emails[g[0]], g) for g in by_email]
    groups += [("contacts.name_company", people[g[0]], g) for g in _groups(people) if frozenset(g) not in in_email_group]
    groups += [("accounts.name", accounts[g[0]], g) for g in _groups(accounts)]
    contact_ids = sorted({i for key, _, g in groups if key.startswith("contacts") for i in g})
    account_ids = sorted({i for key, _, g in groups if key.startswith("accounts") for i in g})
    labels = {"contacts": record_labels(session, "contacts", contact_ids), "accounts": record_labels(session, "accounts", account_ids)}
    return [DuplicateGroup(field_key=key, key=shared, record_ids=ids,
                           labels=[labels[key.split(".")[0]].get(i, str(i)) for i in ids])
            for key, shared, ids in groups]
