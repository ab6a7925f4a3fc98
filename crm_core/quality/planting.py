"""Known problems planted into a book, so the audit can be judged on what it was given.

`generate_clean_book` writes a small book whose values have no problem at all; `plant_problems`
then writes placeholders, spelling variants, unit errors, impossible dates and duplicates into any
book (the clean one, or an imported real one) and returns exactly what it planted; `score_audit`
says how much of it an audit found and how many of the audit's findings were false alarms.
Used by `bench/bench_data_quality.py` and the tests; never by the running CRM.
"""
from __future__ import annotations

import copy
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.models import Account, Contact, Deal
from crm_core.quality.fields import TABLE_MODELS, FieldValues, read_fields
from crm_core.quality.placeholders import is_placeholder_text, value_text
from crm_core.quality.schemas import AuditReport

PLANT_WORDS = ("Select", "--", "N/A", "unknown", "não informado", "-- Select --", "n/a", "?", "none", "desconhecido",
               "Not applicable", "null")
COUNTRY_ALIASES = {"United States": ("USA", "U.S."), "United Kingdom": ("UK", "U.K."), "Brazil": ("Brasil",),
                   "Germany": ("Deutschland",), "Netherlands": ("Holland",)}
_PLACEHOLDER_COLUMNS = {"contacts": ("title", "source"), "accounts": ("industry", "country"), "deals": ("product",)}
_NUMBER_COLUMNS = {"accounts": ("employee_count", "annual_revenue"), "deals": ("amount",)}
_DATE_COLUMNS = {"deals": ("closed_at", "opened_at"), "contacts": ("created_at",)}


@dataclass(frozen=True)
class Planted:
    kind: str                       # placeholder | variant | unit | date | duplicate
    field_key: str
    value: str | None = None        # placeholder or variant text
    canonical: str | None = None    # variant: what it spells
    record_ids: tuple[int, ...] = ()


@dataclass
class AuditScore:
    planted: int
    found: int
    findings: int
    false_alarms: int
    missed: list[Planted] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else 1.0

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.findings if self.findings else 0.0


# ---- a clean book -------------------------------------------------------------------------------

_FIRST = ("Ana", "Bruno", "Carla", "Diego", "Elena", "Felipe", "Grace", "Hiro", "Ines", "Jonas", "Kara", "Luis",
          "Maya", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yara")
_LAST = ("Almeida", "Berg", "Costa", "Dietrich", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kowalski",
         "Lopes", "Moreau", "Novak", "Okafor", "Petrov", "Quispe", "Rossi", "Silva", "Tanaka", "Ueda", "Varga")
_SYLLABLES = ("lum", "tek", "cor", "vin", "dal", "nex", "ora", "pix", "qua", "ris", "sol", "tra", "ven", "zen", "bri")
TITLES = ("Sales Manager", "Head of Marketing", "Chief Executive Officer", "Operations Director", "Software Engineer",
          "Account Executive", "Procurement Lead", "Finance Director", "Product Manager", "Customer Success Lead")
SOURCES = ("web form", "referral", "trade show", "paid search", "organic search", "partner", "cold outreach")
INDUSTRIES = ("software", "healthcare", "retail", "manufacturing", "logistics", "education", "finance", "energy")
COUNTRIES = ("United States", "Brazil", "Germany", "United Kingdom", "France", "Netherlands", "Spain", "Japan")
PRODUCTS = ("Starter Plan", "Growth Plan", "Enterprise Plan", "Analytics Add-on", "Support Package")
LEAD_TYPES = ("inbound", "outbound", "partner", "event")


def _company(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        name += rng.choice(("", " Systems", " Labs", " Group", " Works"))
        if name not in taken:
            taken.add(name)
            return name


def generate_clean_book(session: Session, rng: random.Random, *, accounts: int = 120, contacts: int = 600,
                        deals: int = 400) -> None:
    """A book whose every value is plausible: placeholders, variants and outliers are absent by construction."""
    now = clock.now()
    taken: set[str] = set()
    rows = []
    for _ in range(accounts):
        name = _company(rng, taken)
        employees = int(round(10 ** rng.uniform(1.3, 3.3)))
        rows.append(Account(name=name, name_key=name.casefold(), domain=f"{name.replace(' ', '').casefold()}.com",
                            industry=rng.choice(INDUSTRIES), country=rng.choices(COUNTRIES, weights=(5, 3, 2, 2, 1, 1, 1, 1))[0],
                            employee_count=employees,
                            annual_revenue=Decimal(int(employees * 10 ** rng.uniform(4.8, 5.4))),
                            attributes={}, manual_fields=[]))
    session.add_all(rows)
    session.flush()
    account_rows = rows
    people: set[tuple[str, str, int]] = set()
    contact_rows = []
    while len(contact_rows) < contacts:
        first, last, account = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(account_rows)
        if (first, last, account.id) in people:
            continue
        people.add((first, last, account.id))
        email = f"{first}.{last}.{len(contact_rows)}@{account.domain}".casefold()
        attributes = {"lead_type": rng.choice(LEAD_TYPES)} if rng.random() < 0.7 else {}
        contact_rows.append(Contact(
            first_name=first, last_name=last, email=email, email_normalized=email,
            title=rng.choice(TITLES) if rng.random() < 0.75 else None, account_id=account.id,
            source=rng.choice(SOURCES) if rng.random() < 0.85 else None,
            created_at=now - timedelta(days=rng.uniform(1, 700)), attributes=attributes, manual_fields=[]))
    session.add_all(contact_rows)
    session.flush()
    for i in range(deals):
        account = rng.choice(account_rows)
        opened = now - timedelta(days=rng.uniform(20, 700))
        closed = rng.random() < 0.6
        status = rng.choice(("won", "lost")) if closed else "open"
        session.add(Deal(
            name=f"{account.name} deal {i}", account_id=account.id, product=rng.choice(PRODUCTS),
            stage={"won": "Closed Won", "lost": "Closed Lost"}.get(status, rng.choice(("Qualify", "Proposal", "Negotiate"))),
            amount=Decimal(int(10 ** rng.uniform(3.3, 4.7))), status=status, opened_at=opened,
            stage_entered_at=opened, closed_at=opened + timedelta(days=rng.uniform(5, 19)) if closed else None,
            expected_close=(now + timedelta(days=rng.uniform(5, 150))).date() if not closed else None,
            attributes={"segment": rng.choice(("smb", "mid-market", "enterprise"))}, manual_fields=[]))
    session.flush()


# ---- planting -----------------------------------------------------------------------------------

def _rows(session: Session, table: str, ids: list[int]) -> dict[int, object]:
    model = TABLE_MODELS[table]
    out = {}
    for start in range(0, len(ids), 500):
        for row in session.scalars(select(model).where(model.id.in_(ids[start:start + 500]))):
            out[row.id] = row
    return out


def _set(row: object, fv_field: str, value: object) -> None:
    if fv_field.startswith("attributes."):
        attributes = copy.deepcopy(row.attributes or {})  # type: ignore[attr-defined]
        attributes[fv_field.removeprefix("attributes.")] = value
        row.attributes = attributes  # type: ignore[attr-defined]
    else:
        setattr(row, fv_field, value)


def _variant(rng: random.Random, value: str, taken: set[str]) -> str | None:
    options = []
    if value in COUNTRY_ALIASES:
        options += list(COUNTRY_ALIASES[value])
    options += [value.lower() if value != value.lower() else value.upper(), value + ".", value.replace(" ", "  ", 1),
                value.replace(" ", ", ", 1), value.replace(" ", "-", 1)]
    letters = [i for i in range(1, len(value) - 2) if value[i].isalpha() and value[i + 1].isalpha() and value[i] != value[i + 1]]
    if len(value) >= 8 and letters:
        i = rng.choice(letters)
        options.append(value[:i] + value[i + 1] + value[i] + value[i + 2:])
    options = [o for o in options if o != value and o not in taken]
    return rng.choice(options) if options else None


def _category_fields(fields: list[FieldValues], counts: dict[str, int]) -> list[FieldValues]:
    out = []
    for fv in fields:
        if fv.kind != "category":
            continue
        if fv.field.startswith("attributes.") or fv.field in _PLACEHOLDER_COLUMNS.get(fv.table, ()):
            filled = [v for v in fv.values if v is not None and str(v).strip() and not is_placeholder_text(str(v))]
            if len(filled) >= 30 and len(set(map(str, filled))) >= 2:
                out.append(fv)
    return out


def plant_problems(session: Session, rng: random.Random, *, fields_per_kind: int = 4) -> list[Planted]:
    """Write known problems into the book in the caller's transaction; returns what was planted."""
    fields, counts = read_fields(session)
    planted: list[Planted] = []
    categories = _category_fields(fields, counts)
    rng.shuffle(categories)
    touched: dict[str, set[int]] = {}

    # Placeholders: a form's default written where nothing was chosen (or over a value when every record has one).
    for fv in categories[:fields_per_kind]:
        present = {value_text(v) for v in fv.values if v is not None}
        word = rng.choice([w for w in PLANT_WORDS if w not in present])
        filled_ids = {rid for rid, v in zip(fv.ids, fv.values, strict=True) if v is not None and str(v).strip()}
        all_ids = [rid for rid in _all_ids(session, fv.table) if rid not in filled_ids] or sorted(filled_ids)
        ids_all = rng.sample(all_ids, min(len(all_ids), max(3, counts[fv.table] // 50)))
        for rid, row in _rows(session, fv.table, ids_all).items():
            _set(row, fv.field, word)
        touched.setdefault(fv.key, set()).update(ids_all)
        planted.append(Planted("placeholder", fv.key, value=word, record_ids=tuple(sorted(ids_all))))

    # Spelling variants of a common value, on a minority of its records.
    for fv in categories[-fields_per_kind:] if len(categories) > fields_per_kind else categories:
        tally = Counter(value_text(v) for rid, v in zip(fv.ids, fv.values, strict=True)
                        if v is not None and rid not in touched.get(fv.key, set()) and not is_placeholder_text(str(v)))
        common = [v for v, n in tally.most_common(3) if n >= 12]
        if not common:
            continue
        value = rng.choice(common)
        variant = _variant(rng, value, set(tally))
        if variant is None:
            continue
        holders = [rid for rid, v in zip(fv.ids, fv.values, strict=True) if v is not None and value_text(v) == value]
        ids = rng.sample(holders, max(2, min(10, tally[value] // 5)))
        for row in _rows(session, fv.table, ids).values():
            _set(row, fv.field, variant)
        touched.setdefault(fv.key, set()).update(ids)
        planted.append(Planted("variant", fv.key, value=variant, canonical=value, record_ids=tuple(sorted(ids))))

    # Unit errors: an ordinary value typed a thousand times too large.
    numbers = [fv for fv in fields if fv.kind == "number"
               and (fv.field in _NUMBER_COLUMNS.get(fv.table, ()) or fv.field.startswith("attributes."))]
    rng.shuffle(numbers)
    for fv in numbers[:fields_per_kind]:
        positives = sorted((float(v), rid) for rid, v in zip(fv.ids, fv.values, strict=True)
                           if v is not None and not isinstance(v, bool) and float(v) > 0)
        if len(positives) < 40:
            continue
        middle = positives[len(positives) // 4: 3 * len(positives) // 4]
        ids = [rid for _, rid in rng.sample(middle, 3)]
        for rid, row in _rows(session, fv.table, ids).items():
            current = row.attributes.get(fv.field.removeprefix("attributes.")) if fv.field.startswith("attributes.") else getattr(row, fv.field)
            bigger = current * 1000 if not isinstance(current, Decimal) else current * Decimal(1000)
            _set(row, fv.field, bigger)
        touched.setdefault(fv.key, set()).update(ids)
        planted.append(Planted("unit", fv.key, record_ids=tuple(sorted(ids))))

    # A number left at 0 where nobody knew it (no placeholder word to spot: only its frequency).
    for fv in numbers:
        taken = touched.get(fv.key, set())
        present = [(rid, v) for rid, v in zip(fv.ids, fv.values, strict=True)
                   if v is not None and not isinstance(v, bool) and rid not in taken]
        if len(present) < 40 or any(float(v) <= 0 for _, v in present):
            continue
        ids = [rid for rid, _ in rng.sample(present, max(4, len(present) // 30))]
        for row in _rows(session, fv.table, ids).values():
            _set(row, fv.field, 0)
        touched.setdefault(fv.key, set()).update(ids)
        planted.append(Planted("placeholder", fv.key, value="0", record_ids=tuple(sorted(ids))))
        break

    # Impossible dates: a close date years ahead, an engagement before any CRM existed.
    now = clock.now()
    for table, columns in _DATE_COLUMNS.items():
        for column in columns:
            fv = next(f for f in fields if f.table == table and f.field == column)
            filled = [rid for rid, v in zip(fv.ids, fv.values, strict=True) if v is not None]
            if len(filled) < 20:
                continue
            ids = rng.sample(filled, 2)
            for i, row in enumerate(_rows(session, table, ids).values()):
                setattr(row, column, now + timedelta(days=400 + 100 * i) if column == "closed_at" else now.replace(year=1975 + i))
            planted.append(Planted("date", fv.key, record_ids=tuple(sorted(ids))))

    planted += _plant_duplicates(session, rng)
    session.flush()
    return planted


def _all_ids(session: Session, table: str) -> list[int]:
    model = TABLE_MODELS[table]
    return list(session.scalars(select(model.id).order_by(model.id)))


def _plant_duplicates(session: Session, rng: random.Random) -> list[Planted]:
    planted: list[Planted] = []
    people = list(session.scalars(select(Contact).where(Contact.email.is_not(None), Contact.first_name.is_not(None),
                                                        Contact.last_name.is_not(None), Contact.account_id.is_not(None))
                                  .order_by(Contact.id).limit(2000)))
    if len(people) >= 10:
        for i, original in enumerate(rng.sample(people, 6)):
            if i < 3:  # the same address typed again with capitals and a stray space
                email = " " + original.email.upper() + " "
                twin = Contact(first_name=original.first_name, last_name=original.last_name, email=email,
                               email_normalized=email.casefold(), account_id=None, attributes={}, manual_fields=[])
                key = "contacts.email"
            else:  # the same person at the same company, name typed in capitals, no email
                twin = Contact(first_name=original.first_name.upper(), last_name=original.last_name.upper() + ".",
                               account_id=original.account_id, attributes={}, manual_fields=[])
                key = "contacts.name_company"
            session.add(twin)
            session.flush()
            planted.append(Planted("duplicate", key, record_ids=(original.id, twin.id)))
    accounts = list(session.scalars(select(Account).order_by(Account.id).limit(2000)))
    if len(accounts) >= 10:
        for original in rng.sample(accounts, 3):
            name = original.name.upper() + ", Inc."
            twin = Account(name=name, name_key=name.casefold(), attributes={}, manual_fields=[])
            session.add(twin)
            session.flush()
            planted.append(Planted("duplicate", "accounts.name", record_ids=(original.id, twin.id)))
    return planted


# ---- judging ------------------------------------------------------------------------------------

def finding_units(report: AuditReport) -> set[tuple[str, str, str]]:
    """Each thing the audit claims, at the grain it is judged: a value, a record, or a group."""
    units: set[tuple[str, str, str]] = set()
    for f in report.findings():
        if f.kind in ("placeholder", "variant"):
            units.add((f.kind, f.field_key, f.value or ""))
        else:
            units.update((f.kind, f.field_key, str(rid)) for rid in f.record_ids)
    for g in report.duplicates:
        units.add(("duplicate", g.field_key, ",".join(map(str, g.record_ids))))
    return units


def _matches(unit: tuple[str, str, str], p: Planted) -> bool:
    kind, key, what = unit
    if p.field_key != key:
        return False
    if p.kind in ("placeholder", "variant"):
        return kind == p.kind and what == p.value
    if p.kind == "duplicate":
        return kind == "duplicate" and set(p.record_ids) <= {int(x) for x in what.split(",")}
    return kind == p.kind and int(what) in p.record_ids


def score_audit(report: AuditReport, planted: list[Planted], *, baseline: AuditReport | None = None) -> AuditScore:
    """Recall over what was planted; false alarms among findings that are neither planted nor already
    in `baseline` (an audit of the same book before planting: a real book's own problems are not false alarms)."""
    units = finding_units(report)
    if baseline is not None:
        units -= finding_units(baseline)
    found, missed = 0, []
    for p in planted:
        expected = len(p.record_ids) if p.kind in ("unit", "date") else 1
        hits = sum(1 for u in units if _matches(u, p))
        if hits >= expected:
            found += 1
        else:
            missed.append(p)
    false = sorted(f"{k} {key} {what}" for k, key, what in units if not any(_matches((k, key, what), p) for p in planted))
    return AuditScore(planted=len(planted), found=found, findings=len(units), false_alarms=len(false), missed=missed, false=false)


# ---- exact comparison -----------------------------------------------------------------------------

def dump_tables(session: Session, tables: tuple[str, ...] = ("contacts", "accounts", "deals")) -> bytes:
    """Every row of the tables as the database stores it, for byte-for-byte comparison.

    PostgreSQL renders each row with its own text output (JSON as stored, numerics with their
    scale); SQLite returns its stored values untouched (JSON is text there).
    """
    parts: list[str] = []
    postgres = session.get_bind().dialect.name == "postgresql"
    for table in tables:
        sql = f"SELECT CAST(t AS text) FROM {table} t ORDER BY t.id" if postgres else f"SELECT * FROM {table} ORDER BY id"
        for row in session.execute(text(sql)):
            parts.append(f"{table}:{tuple(row)!r}")
    return "\n".join(parts).encode()
