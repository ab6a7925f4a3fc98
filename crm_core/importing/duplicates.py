"""Likely duplicates no exact key catches, among the contacts an import creates or changes.

Three signals, each a hint for a human and never a merge by itself:
- one mailbox under two addresses (case, dots or a +tag in the local part);
- the same phone number (a number shared by more than 5 contacts is a switchboard and ignored);
- the same or a similar name at the same company ('Jon Smith' / 'Jonathan Smith', 'J. Smith',
  one typo). Names are compared only inside (company, last name) and (company, first name)
  blocks of at most 50 people, so a large import stays linear.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.contracts import DuplicateCandidate
from crm_core.importing.normalize import email_canonical
from crm_core.importing.refs import CHUNK, Pending
from crm_core.importing.upsert import Resolution
from crm_core.models import Contact, Decision

CONFIDENCE = {"email_variant": 0.9, "same_name": 0.8, "same_phone": 0.75, "similar_name": 0.6}
SHARED_PHONE_LIMIT = 5
BLOCK_LIMIT = 50
SIMILARITY = 0.85


def merge_key(a: int, b: int) -> str:
    """The idempotency key of the proposal to merge two contacts: one proposal per pair, ever."""
    low, high = sorted((a, b))
    return f"merge_contacts:{low}:{high}"


@dataclass
class _Pair:
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def add(self, reason: str, detail: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            self.details.append(detail)


def _account_key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Pending):
        return f"new:{id(value)}"
    return f"id:{value}"


def fold_column(values: pd.Series) -> pd.Series:
    """`normalize.fold` for a whole column: accents off, lower case, punctuation to single spaces."""
    text = values.fillna("").astype(str).str.normalize("NFKD").str.replace(r"[\u0300-\u036f]", "", regex=True)
    return text.str.lower().str.replace(r"[^0-9a-z]+", " ", regex=True).str.strip()


class _People:
    """Contacts as columns (plain lists, indexed by position): the file's rows first, then the store's."""

    COLUMNS = ("key", "row", "contact_id", "touched", "email", "phone", "first", "last", "account", "display_email",
               "external_id")

    def __init__(self, records: list[tuple[Any, ...]]) -> None:
        self.size = len(records)
        columns = list(zip(*records)) if records else [() for _ in self.COLUMNS]
        self.cols: dict[str, list[Any]] = {name: list(values) for name, values in zip(self.COLUMNS, columns)}

    def label(self, i: int) -> str:
        c = self.cols
        name = " ".join(p for p in (c["first"][i], c["last"][i]) if p)
        fallback = f"row {c['row'][i]}" if c["contact_id"][i] is None else f"contact #{c['contact_id'][i]}"
        return name or c["display_email"][i] or c["external_id"][i] or fallback


def _people(session: Session, res: Resolution) -> _People:
    records: list[tuple[Any, ...]] = []
    for row, v in zip(res.create_rows, res.creates, strict=True):
        records.append((f"r:{row}", row, None, True, v.get("email_normalized"), v.get("phone_normalized"),
                        v.get("first_name"), v.get("last_name"), _account_key(v.get("account_id")), v.get("email"),
                        v.get("external_id")))
    stored = res.extra.get("stored", {})
    touched_ids: set[int] = set()
    for row, changes in zip(res.update_rows, res.updates, strict=True):
        cid = changes["id"]
        touched_ids.add(cid)
        current = stored[cid]

        def after(column: str, _changes: dict[str, Any] = changes, _current: Any = current) -> Any:
            return _changes[column] if column in _changes else getattr(_current, column)

        records.append((f"c:{cid}", row, cid, True, after("email_normalized"), after("phone_normalized"),
                        after("first_name"), after("last_name"), _account_key(after("account_id")), after("email"),
                        after("external_id")))
    if records:
        others = select(Contact.id, Contact.email_normalized, Contact.phone_normalized, Contact.first_name,
                        Contact.last_name, Contact.account_id, Contact.email, Contact.external_id)
        for c in session.execute(others):
            if c.id not in touched_ids:
                records.append((f"c:{c.id}", None, c.id, False, c.email_normalized, c.phone_normalized, c.first_name,
                                c.last_name, None if c.account_id is None else f"id:{c.account_id}", c.email,
                                c.external_id))
    return _People(records)


def _blocks(key: pd.Series, touched: np.ndarray, limit: int) -> list[np.ndarray]:
    """Positions of 2..limit people sharing a key, with at least one person this import touched."""
    dup = key.notna() & key.duplicated(keep=False)
    if not dup.any():
        return []
    shared = key[dup]
    groups = shared.groupby(shared, sort=False).indices  # positions within `shared`
    return [pos for pos in (shared.index.values[ix] for ix in groups.values())
            if 2 <= len(pos) <= limit and touched[pos].any()]


def _close(a: str, b: str) -> bool:
    """One typo apart or so ('Jonh'/'John', 'Mueller'/'Muller'); cheap checks before difflib."""
    if abs(len(a) - len(b)) > 2 or a[:1] != b[:1]:
        return False
    matcher = SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= SIMILARITY and matcher.ratio() >= SIMILARITY


def _similar_first(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a) or _close(a, b)


def find_duplicates(session: Session, res: Resolution) -> list[DuplicateCandidate]:
    people = _people(session, res)
    if not people.size:
        return []
    cols = people.cols
    touched = np.array(cols["touched"], dtype=bool)
    pairs: dict[tuple[int, int], _Pair] = {}

    def note(a: int, b: int, reason: str, detail: str) -> None:
        pairs.setdefault((min(a, b), max(a, b)), _Pair()).add(reason, detail)

    def each_pair(groups: list[np.ndarray]) -> Any:
        for group in groups:
            for a, b in combinations(group.tolist(), 2):
                if touched[a] or touched[b]:
                    yield a, b

    email = pd.Series(cols["email"], dtype=object)
    canonical = email.map(email_canonical, na_action="ignore")
    for a, b in each_pair(_blocks(canonical, touched, BLOCK_LIMIT)):
        if cols["email"][a] != cols["email"][b]:
            note(a, b, "email_variant", f"{cols['email'][a]} and {cols['email'][b]} are one mailbox")
    for a, b in each_pair(_blocks(pd.Series(cols["phone"], dtype=object), touched, SHARED_PHONE_LIMIT)):
        note(a, b, "same_phone", f"both have phone {cols['phone'][a]}")

    account = pd.Series(cols["account"], dtype=object)
    first = fold_column(pd.Series(cols["first"], dtype=object))
    last = fold_column(pd.Series(cols["last"], dtype=object))
    named = account.notna() & (first != "") & (last != "")
    if named.any():
        first_f, last_f = first.tolist(), last.tolist()
        company = account[named]
        for a, b in each_pair(_blocks(company + "|" + first[named] + " " + last[named], touched, BLOCK_LIMIT)):
            note(a, b, "same_name", f"both are {people.label(a)} at the same company")
        for a, b in each_pair(_blocks(company + "|" + last[named], touched, BLOCK_LIMIT)):
            if first_f[a] != first_f[b] and _similar_first(first_f[a], first_f[b]):
                note(a, b, "similar_name", f"{people.label(a)} and {people.label(b)} at the same company")
        for a, b in each_pair(_blocks(company + "|" + first[named], touched, BLOCK_LIMIT)):
            if last_f[a] != last_f[b] and _close(last_f[a], last_f[b]):
                note(a, b, "similar_name", f"{people.label(a)} and {people.label(b)} at the same company")

    if not pairs:
        return []
    already = _already_proposed(session, [(cols["contact_id"][a], cols["contact_id"][b]) for a, b in pairs])
    out: list[DuplicateCandidate] = []
    for (a, b), pair in pairs.items():
        if not touched[a] or (touched[b] and (cols["row"][b] or 0) < (cols["row"][a] or 0)):
            a, b = b, a  # the row of this file first
        ids = (cols["contact_id"][a], cols["contact_id"][b])
        if ids[0] is not None and ids[1] is not None and merge_key(ids[0], ids[1]) in already:
            continue
        miss = 1.0
        for reason in pair.reasons:
            miss *= 1 - CONFIDENCE[reason]
        out.append(DuplicateCandidate(
            reasons=pair.reasons, detail="; ".join(pair.details), confidence=round(min(1 - miss, 0.99), 2),
            row=cols["row"][a], contact_id=ids[0], label=people.label(a),
            other_row=cols["row"][b], other_contact_id=ids[1], other_label=people.label(b)))
    out.sort(key=lambda d: (d.row or 0, d.other_row or 0, d.other_contact_id or 0))
    return out


def _already_proposed(session: Session, id_pairs: list[tuple[int | None, int | None]]) -> set[str]:
    keys = [merge_key(a, b) for a, b in id_pairs if a is not None and b is not None]
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        query = select(Decision.idempotency_key).where(Decision.idempotency_key.in_(keys[start:start + CHUNK]))
        found.update(k for k in session.scalars(query) if k)
    return found
