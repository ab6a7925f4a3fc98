"""The team, the accounts and the people at them.

Each contact carries a latent buying intent (from title seniority, lead source and how well the
account fits the ideal customer profile, plus noise). Later stages read it to decide how much a
person engages and how deals end, so the book's outcomes have learnable causes.
"""
from __future__ import annotations

import math
import random
import re
import unicodedata
from datetime import datetime
from decimal import Decimal

from crm_core.demo import vocab
from crm_core.demo.records import AccountRec, ContactRec, UserRec
from crm_core.demo.timeline import days

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ø": "o", "å": "a"})


def ascii_slug(text: str) -> str:
    """'Müller' -> 'mueller', 'van den Berg' -> 'vandenberg', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode().lower())


def _weighted(rng: random.Random, items: dict[str, float] | list[tuple[object, float]]):
    pairs = list(items.items()) if isinstance(items, dict) else list(items)
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs], k=1)[0]


# ---- users -----------------------------------------------------------------------------------

def make_users(as_of: datetime) -> list[UserRec]:
    since = as_of.replace(hour=9, minute=0, second=0) - days(400)
    people = (vocab.MANAGER, *vocab.REPS)
    users = []
    for person in people:
        users.append(UserRec(
            name=person.name, email=f"{ascii_slug(person.name.split()[0])}.{ascii_slug(person.name.split()[-1])}@{vocab.SELLER_DOMAIN}",
            role=person.role, is_senior=person.is_senior, timezone=person.timezone, utc_offset=person.utc_offset,
            work_start_hour=person.work_start, work_end_hour=person.work_end,
            manager=None if person.role == "manager" else 0, team=person.team, created_at=since,
        ))
    return users


# ---- accounts --------------------------------------------------------------------------------

def _size_fit(employees: int) -> float:
    if employees < 50:
        return -0.7
    if employees < 200:
        return 0.0
    if employees <= 5000:
        return 0.5
    return 0.2  # big companies buy, slowly


def _employees(rng: random.Random) -> int:
    raw = math.exp(rng.gauss(5.9, 1.25))
    value = int(min(max(raw, 8), 60_000))
    # People quote headcount roughly: 1,240 not 1,237.
    if value >= 1000:
        return round(value, -1)
    return value


def _pick_owner(rng: random.Random, country: str, user_index: dict[str, int]) -> int:
    names = vocab.TERRITORY[country]
    weights = [2.0] + [1.0] * (len(names) - 1)
    return user_index[rng.choices(names, weights=weights, k=1)[0]]


def make_accounts(rng: random.Random, n: int, users: list[UserRec], as_of: datetime) -> list[AccountRec]:
    user_index = {u.name: i for i, u in enumerate(users)}
    markets = {m.country: m for m in vocab.MARKETS}
    names: set[str] = set()
    domains: set[str] = set()
    stems = list(vocab.COMPANY_STEMS)
    rng.shuffle(stems)
    accounts: list[AccountRec] = []
    for i in range(n):
        market = markets[_weighted(rng, [(m.country, m.weight) for m in vocab.MARKETS])]
        industry = _weighted(rng, [(ind, ind.weight) for ind in vocab.INDUSTRIES])
        stem = stems[i % len(stems)]
        suffix = rng.choice(industry.suffixes)
        core = f"{stem} {suffix}"
        if core in names:  # more accounts than stems: combine two stems
            core = f"{stem} {rng.choice(stems)} {suffix}"
        while core in names:
            core = f"{core} {rng.choice(('Group', 'International', 'Holdings', 'Partners'))}"
        names.add(core)
        legal = rng.choice(market.legal_suffixes) if rng.random() < 0.4 else ""
        name = f"{core} {legal}".strip()
        domain = _domain(rng, stem, suffix, core, domains)
        employees = _employees(rng)
        low, high = industry.revenue_per_employee
        revenue = Decimal(round(employees * rng.uniform(low, high), -5) or 100_000)
        attributes = {"tech_stack": sorted(rng.sample(vocab.TECH_STACK, rng.randint(2, 4)))}
        if market.currency != "USD":
            attributes["revenue_currency"] = market.currency
        accounts.append(AccountRec(
            name=name, domain=domain, industry=industry.name, employee_count=employees, annual_revenue=revenue,
            country=market.country, owner=_pick_owner(rng, market.country, user_index), sensitive=industry.sensitive,
            attributes=attributes, created_at=as_of - days(rng.uniform(125, 400)),
            fit=industry.fit + _size_fit(employees) + rng.gauss(0, 0.3), currency=market.currency,
            utc_offset=market.utc_offset,
        ))
    return accounts


def _domain(rng: random.Random, stem: str, suffix: str, core: str, taken: set[str]) -> str:
    candidates = [ascii_slug(core), ascii_slug(stem) + "-" + ascii_slug(suffix), ascii_slug(stem),
                  "get" + ascii_slug(stem), ascii_slug(stem) + "hq"]
    first = rng.choices(candidates[:3], weights=[5, 2, 3], k=1)[0]
    for candidate in [first, *candidates]:
        domain = f"{candidate}.example"
        if domain not in taken:
            taken.add(domain)
            return domain
    n = 2
    while f"{candidates[0]}{n}.example" in taken:
        n += 1
    taken.add(f"{candidates[0]}{n}.example")
    return f"{candidates[0]}{n}.example"


# ---- contacts --------------------------------------------------------------------------------

def typed_phone(rng: random.Random, country: str) -> tuple[str, str]:
    """(as a person typed it, E.164)."""
    cc, trunk, groups, displays = vocab.PHONE_SHAPES[country]
    values = []
    for alternatives in groups:
        pattern = rng.choice(alternatives[0].split("|"))
        values.append("".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern))
    shown = rng.choice(displays).format(cc=cc, trunk=trunk, **{f"g{i}": v for i, v in enumerate(values)})
    if rng.random() < 0.05:
        shown += f" ext. {rng.randint(200, 499)}"
    return shown, "+" + cc + "".join(values)


def _level(rng: random.Random, employees: int) -> str:
    weights = dict(vocab.LEVEL_WEIGHTS)
    if employees < 100:  # in a small company the founders answer the website chat
        weights["c_level"] *= 4
        weights["vp"] *= 1.5
    return _weighted(rng, weights)


def _local_part(rng: random.Random, first: str, last: str, small_company: bool) -> str:
    f, l_ = ascii_slug(first), ascii_slug(last)
    forms = [(f"{f}.{l_}", 60), (f"{f[0]}{l_}", 20), (f"{f}_{l_}", 8), (f"{f}", 12 if small_company else 1)]
    return _weighted(rng, forms)


def _unique_email(local: str, domain: str, taken: set[str]) -> str:
    email = f"{local}@{domain}"
    n = 2
    while email.lower() in taken:
        email = f"{local}{n}@{domain}"
        n += 1
    taken.add(email.lower())
    return email


def make_contacts(rng: random.Random, n: int, accounts: list[AccountRec], users: list[UserRec]) -> list[ContactRec]:
    """Contacts spread over accounts by size and fit; a few with personal addresses and no company."""
    markets = {m.country: m for m in vocab.MARKETS}
    n_personal = max(1, round(n * 0.03))
    n_business = n - n_personal
    weights = [(a.employee_count ** 0.35) * (1.2 + a.fit) for a in accounts]
    per_account = [1] * len(accounts) if n_business >= len(accounts) else [0] * len(accounts)
    for idx in rng.choices(range(len(accounts)), weights=[max(w, 0.1) for w in weights], k=n_business - sum(per_account)):
        per_account[idx] += 1
    taken: set[str] = set()
    contacts: list[ContactRec] = []
    reps_by_team: dict[str | None, list[int]] = {}
    for i, u in enumerate(users):
        if u.role == "rep":
            reps_by_team.setdefault(u.team, []).append(i)
    for a_idx, count in enumerate(per_account):
        account = accounts[a_idx]
        market = markets[account.country]
        for _ in range(count):
            contacts.append(_business_contact(rng, account, a_idx, market, users, reps_by_team, taken))
    for _ in range(n_personal):
        contacts.append(_personal_contact(rng, taken))
    rng.shuffle(contacts)  # ids should not cluster by account
    return contacts


def _business_contact(rng, account: AccountRec, a_idx: int, market: vocab.Market, users: list[UserRec],
                      reps_by_team: dict[str | None, list[int]], taken: set[str]) -> ContactRec:
    pool = market.names if rng.random() < 0.85 else "en"
    first, last = rng.choice(vocab.FIRST_NAMES[pool]), rng.choice(vocab.LAST_NAMES[pool])
    level = _level(rng, account.employee_count)
    source = _weighted(rng, {k: v[0] for k, v in vocab.SOURCES.items()})
    intent = vocab.LEVEL_INTENT[level] + vocab.SOURCES[source][1] + 0.8 * account.fit + rng.gauss(0, 0.8)
    email = _unique_email(_local_part(rng, first, last, account.employee_count < 60), account.domain, taken)
    if rng.random() < 0.06:  # some people type their address capitalised
        local, _, domain = email.partition("@")
        email = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain
    phone, phone_e164 = typed_phone(rng, account.country) if rng.random() < 0.75 else (None, None)
    owner = account.owner
    if rng.random() < 0.08:
        owner = rng.choice(reps_by_team.get(users[owner].team, [owner]))
    attributes: dict = {}
    if source == "paid_search":
        attributes = {"utm_campaign": rng.choice(vocab.CAMPAIGNS), "utm_term": rng.choice(vocab.PAID_KEYWORDS)}
    elif source == "webinar":
        attributes = {"webinar": rng.choice(vocab.WEBINARS)}
    elif source == "event":
        attributes = {"event": rng.choice(vocab.EVENTS)}
    elif source == "partner":
        attributes = {"partner": rng.choice(("Northstar Consulting", "Cloudfold Partners", "RevGen Advisors"))}
    if market.names not in ("en", "in", "sg"):
        attributes["preferred_language"] = {"de": "de", "fr": "fr", "nl": "nl", "sv": "sv", "es": "es", "br": "pt"}[market.names]
    manual: list[str] = []
    notes = None
    if phone and rng.random() < 0.05:
        manual.append("phone")  # a rep corrected the number by hand after a call
        notes = "Direct line confirmed on a call; use this number rather than the switchboard."
    if rng.random() < 0.02:
        manual.append("title")
    sensitive = account.sensitive
    if not sensitive and rng.random() < 0.01:
        sensitive = True
        notes = "Asked that their personal data is processed only on our own systems (GDPR request)."
    title = rng.choice(vocab.TITLES[level])
    return ContactRec(
        first_name=first, last_name=last, email=email, phone=phone, phone_normalized=phone_e164, title=title,
        account=a_idx, owner=owner, source=source, sensitive=sensitive, attributes=attributes, manual_fields=manual,
        notes=notes, created_at=account.created_at, level=level, intent=intent, utc_offset=market.utc_offset,
    )


def _personal_contact(rng: random.Random, taken: set[str]) -> ContactRec:
    first, last = rng.choice(vocab.FIRST_NAMES["en"]), rng.choice(vocab.LAST_NAMES["en"])
    local = f"{ascii_slug(first)}{ascii_slug(last)[:1]}{rng.randint(10, 99)}"
    email = _unique_email(local, rng.choice(vocab.PERSONAL_DOMAINS), taken)
    source = _weighted(rng, {"organic_search": 5, "paid_search": 3, "webinar": 2})
    return ContactRec(
        first_name=first, last_name=last, email=email, title=rng.choice(vocab.PERSONAL_TITLES), account=None,
        owner=None, source=source, created_at=datetime(2000, 1, 1), level="ic",
        intent=-0.9 + vocab.SOURCES[source][1] + rng.gauss(0, 0.6), utc_offset=-5,
    )


def promote_to_decision_maker(rng: random.Random, contact: ContactRec) -> None:
    """Give a buying-committee member a decision maker's title (an account needs one to buy)."""
    contact.level = rng.choice(("vp", "head", "director"))
    contact.title = rng.choice(vocab.TITLES[contact.level])
    contact.intent += 0.4
