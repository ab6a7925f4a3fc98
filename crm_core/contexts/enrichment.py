"""The store -> enrichment contexts: a contact and its account, their gaps, what sources found.

`build()` reads the contacts, their accounts, the accounts sharing each email domain and the
colleagues' addresses and phone numbers, asks the store's own source (plain data, never a
session), and puts into the context what an outside source would be asked (`lookup`): the HTTP
enrichment API, when CRM_ENRICHMENT_API_URL is set, is asked by the run path
(`EnrichmentAgent.gather_outside`), never by the builder. It adds what people already said: values rejected or reverted before (not proposed again), fields
with a decision waiting in the queue (not proposed twice), and likely duplicates of the contact
that no merge decision covers yet.

The store's rule copying an account's country to its contacts is rated on the book itself
(`enrichment_rules.measure`: how often the two agree where a person entered the contact's country),
and every request and context carries that rating and the sentence saying where it came from.
What every contact of a run shares (those ratings, the rules a fill is held to, the policy, people's
verdicts) also rides in each context as one book block (`book_enrichment`), sent once in the cached
system block.

An account is enriched through one contact per batch (the first one, preferring one that is not
sensitive, so the HTTP API may be asked about it): the others see the account as context only,
so a run proposes each account's fields once, not once per colleague.

`subjects()` returns the contacts (not disqualified, entered by `as_of`) for which the offline
reasoner finds something to propose from the store alone, plus, with the HTTP API on, the
non-sensitive ones with a gap the API could fill that were not looked at in the last
RECHECK_DAYS (so a gap no source can fill does not cost an API call every day).

Records are read as they are now (the store keeps no history of field values); `as_of` cuts which
contacts exist and which human verdicts count.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.enrichment import LOW_EVIDENCE, OVERWRITE_MIN, WRITABLE, Context, DuplicateHint, RejectedValue
from agents.enrichment.sources import (
    AccountHint,
    EnrichmentSource,
    FactValue,
    HttpEnrichmentSource,
    LookupRequest,
    RecordSnapshot,
    RuleRating,
    StoreSource,
    configured_sources,
    gather,
)
from agents.enrichment.sources.domains import domain_of, is_company_domain
from agents.enrichment.sources.evidence import same_value, weigh
from agents.enrichment.sources.http_api import COMPANY_TARGETS, PERSON_TARGETS
from agents.learning.features import email_kind
from crm_core.contexts.book_enrichment import enrichment_block
from crm_core.contexts.enrichment_rules import measure
from crm_core.contexts.follow_up import chunks
from crm_core.importing.normalize import email_canonical, fold
from crm_core.models import Account, Contact, Decision
from crm_core.models.enums import LifecycleStage

CONTACT_FIELDS = ("first_name", "last_name", "title", "country", "linkedin_url", "seniority", "department", "city",
                  "company", "account_id")
CONTACT_COLUMNS = {"first_name", "last_name", "title", "account_id"}
ACCOUNT_FIELDS = ("industry", "employee_count", "annual_revenue", "country", "website", "city", "founded_year",
                  "linkedin_url", "description")
ACCOUNT_COLUMNS = {"industry", "employee_count", "annual_revenue", "country"}
# The fields whose absence makes a record worth enriching (the rest are filled when a source has them).
CONTACT_GAPS = ("first_name", "last_name", "title", "country", "seniority", "department")
ACCOUNT_GAPS = ("industry", "employee_count", "annual_revenue", "country", "website")
PENDING = ("proposed", "queued", "approved", "edited")
REFUSED = ("rejected", "reverted")
COLLEAGUES = 50
RECHECK_DAYS = 30
SHARED_PHONE_LIMIT = 5   # a number more contacts share is a switchboard, not a person
# Confidence of each duplicate signal; a phone number alone is none (colleagues share lines).
DUPLICATE_SIGNALS = {"email_variant": 0.85, "same_name_same_account": 0.8, "same_phone_same_surname": 0.8,
                     "same_name_same_domain": 0.75}
NOTES_LIMIT = 4000


@dataclass
class PreparedEnrichment:
    sources: list[EnrichmentSource] = field(default_factory=list)  # the store's own: no outside call here
    outside: bool = False  # an outside source is configured: contexts carry what to ask it
    ratings: dict[str, RuleRating] = field(default_factory=dict)  # the store rules as this book rates them


def prepare(session: Session, *, as_of: datetime) -> PreparedEnrichment:
    outside = any(isinstance(s, HttpEnrichmentSource) for s in configured_sources())
    return PreparedEnrichment(sources=[StoreSource()], outside=outside, ratings=measure(session, as_of=as_of))


# == reading records =================================================================================
def _attr(row: Contact | Account, name: str) -> FactValue | None:
    value = (row.attributes or {}).get(name)
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def contact_snapshot(c: Contact) -> RecordSnapshot:
    values: dict[str, FactValue | None] = {}
    for name in CONTACT_FIELDS:
        values[name] = getattr(c, name) if name in CONTACT_COLUMNS else _attr(c, name)
    return RecordSnapshot(record_type="contact", record_id=c.id, label=c.full_name, values=values,
                          manual_fields=[str(f) for f in (c.manual_fields or [])])


def account_snapshot(a: Account) -> RecordSnapshot:
    values: dict[str, FactValue | None] = {}
    for name in ACCOUNT_FIELDS:
        if name in ACCOUNT_COLUMNS:
            value = getattr(a, name)
            values[name] = float(value) if name == "annual_revenue" and value is not None else value
        elif name == "website":
            values[name] = _attr(a, "website") or a.domain
        else:
            values[name] = _attr(a, name)
    return RecordSnapshot(record_type="account", record_id=a.id, label=a.name, values=values,
                          manual_fields=[str(f) for f in (a.manual_fields or [])])


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def gaps_of(contact: Contact, account: Account | None, *, enrich_account: bool = True) -> list[str]:
    snap = contact_snapshot(contact)
    gaps = [f"contact.{f}" for f in CONTACT_GAPS if _blank(snap.values.get(f))]
    if account is None and is_company_domain(domain_of(contact.email)):
        gaps.append("contact.account_id")
        if _blank(snap.values.get("company")):
            gaps.append("contact.company")
    if account is not None and enrich_account:
        a = account_snapshot(account)
        gaps += [f"account.{f}" for f in ACCOUNT_GAPS if _blank(a.values.get(f))]
    return gaps


@dataclass
class Neighbourhood:
    """What the store knows around the contacts of one batch: accounts by domain, colleagues."""

    accounts_by_domain: dict[str, list[Account]]
    colleague_domains: dict[int, list[str]]
    colleague_phones: dict[int, list[str]]


def neighbourhood(session: Session, contacts: Sequence[Contact]) -> Neighbourhood:
    domains = sorted({d for c in contacts if c.account_id is None for d in [domain_of(c.email)] if is_company_domain(d)})
    by_domain: dict[str, list[Account]] = defaultdict(list)
    for chunk in chunks(domains):  # type: ignore[arg-type]
        for a in session.scalars(select(Account).where(func.lower(Account.domain).in_(chunk)).order_by(Account.id)):
            by_domain[(a.domain or "").lower()].append(a)
    account_ids = sorted({c.account_id for c in contacts if c.account_id is not None})
    mail: dict[int, list[str]] = defaultdict(list)
    phones: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(account_ids):
        for account_id, email, phone in session.execute(
            select(Contact.account_id, Contact.email, Contact.phone).where(Contact.account_id.in_(chunk)).order_by(Contact.id)
        ):
            d = domain_of(email)
            if d and len(mail[account_id]) < COLLEAGUES:
                mail[account_id].append(d)
            if phone and len(phones[account_id]) < COLLEAGUES:
                phones[account_id].append(phone)
    return Neighbourhood(by_domain, mail, phones)


def _sensitive(contact: Contact) -> bool:
    return bool(contact.sensitive or (contact.account is not None and contact.account.sensitive))


def lookup_request(contact: Contact, near: Neighbourhood, *, enrich_account: bool = True,
                   ratings: dict[str, RuleRating] | None = None) -> LookupRequest:
    account = contact.account
    domain = domain_of(contact.email)
    hints = []
    if account is None and domain:
        hints = [AccountHint(account_id=a.id, name=a.name, domain=a.domain, country=a.country)
                 for a in near.accounts_by_domain.get(domain, [])]
    return LookupRequest(
        contact=contact_snapshot(contact),
        account=account_snapshot(account) if account else None,
        enrich_account=enrich_account,
        email=contact.email, email_domain=domain, phone=contact.phone, phone_normalized=contact.phone_normalized,
        account_domain=(account.domain or None) if account else None,
        same_domain_accounts=hints,
        colleague_domains=near.colleague_domains.get(account.id, []) if account else [],
        colleague_phones=near.colleague_phones.get(account.id, []) if account else [],
        wanted=gaps_of(contact, account, enrich_account=enrich_account),
        sensitive=_sensitive(contact),
        ratings=ratings or {},
    )


def _contacts(session: Session, ids: Sequence[int] | None, as_of: datetime) -> list[Contact]:
    base = select(Contact).where(
        Contact.created_at <= as_of,
        or_(Contact.lifecycle_stage != LifecycleStage.DISQUALIFIED.value, Contact.outcome_at > as_of),
    ).order_by(Contact.id)
    if ids is None:
        return list(session.scalars(base).unique())
    rows: list[Contact] = []
    for chunk in chunks(list(ids)):
        rows.extend(session.scalars(base.where(Contact.id.in_(chunk))).unique())
    return rows


def account_enrichers(contacts: Iterable[Contact]) -> set[int]:
    """The contact through which each account is enriched in this batch: the first, not sensitive if any."""
    chosen: dict[int, Contact] = {}
    for c in contacts:
        if c.account_id is None:
            continue
        first = chosen.get(c.account_id)
        if first is None or (_sensitive(first) and not _sensitive(c)):
            chosen[c.account_id] = c
    return {c.id for c in chosen.values()}


# == what people already said ========================================================================
def _enrichment_decisions(session: Session, contacts: Sequence[Contact], statuses: Sequence[str],
                          as_of: datetime) -> list[Any]:
    """The agent's decisions on these contacts and their accounts (only the columns read: rows are wide)."""
    contact_ids = [c.id for c in contacts]
    account_ids = sorted({c.account_id for c in contacts if c.account_id is not None})
    columns = (Decision.subject_type, Decision.subject_id, Decision.status, Decision.decision, Decision.decided_at,
               Decision.reverted_at)
    rows: list[Any] = []
    for kind, ids in (("contact", contact_ids), ("account", account_ids)):
        for chunk in chunks(ids):
            rows.extend(session.execute(select(*columns).where(
                Decision.agent == "enrichment", Decision.subject_type == kind, Decision.subject_id.in_(chunk),
                Decision.status.in_(statuses), Decision.created_at <= as_of)))
    return rows


def _fills(d: Any) -> Iterable[dict[str, Any]]:
    for fill in (d.decision or {}).get("fills", []) or []:
        if isinstance(fill, dict) and fill.get("record_type") == d.subject_type and fill.get("field"):
            yield fill


@dataclass
class Verdicts:
    rejected: dict[tuple[str, int], list[RejectedValue]]
    in_review: dict[tuple[str, int], list[str]]


def verdicts(session: Session, contacts: Sequence[Contact], as_of: datetime) -> Verdicts:
    """Per (record type, id): values a person rejected or reverted, fields with a decision still waiting."""
    rejected: dict[tuple[str, int], list[RejectedValue]] = defaultdict(list)
    in_review: dict[tuple[str, int], list[str]] = defaultdict(list)
    for d in _enrichment_decisions(session, contacts, (*REFUSED, *PENDING), as_of):
        key = (d.subject_type, d.subject_id)
        for fill in _fills(d):
            if d.status in REFUSED:
                rejected[key].append(RejectedValue(record_type=d.subject_type, field=str(fill["field"]),  # type: ignore[arg-type]
                                                   value=str(fill.get("value", "")), rejected_at=d.decided_at or d.reverted_at))
            else:
                in_review[key].append(f"{d.subject_type}.{fill['field']}")
    return Verdicts(rejected, {k: sorted(set(v)) for k, v in in_review.items()})


# == likely duplicates ===============================================================================
_DUP_COLUMNS = (Contact.id, Contact.first_name, Contact.last_name, Contact.email_normalized, Contact.phone_normalized,
                Contact.account_id)


@dataclass(frozen=True)
class _Person:
    id: int
    first: str
    last: str
    email: str | None
    phone: str | None
    account_id: int | None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}".strip()

    @property
    def label(self) -> str:
        return self.name or self.email or f"contact {self.id}"

    @property
    def folded(self) -> str:
        return fold(self.name) if self.first and self.last else ""


def _person(row: Any) -> _Person:
    return _Person(row.id, (row.first_name or "").strip(), (row.last_name or "").strip(), row.email_normalized,
                   row.phone_normalized, row.account_id)


def _candidates(session: Session, batch: Sequence[_Person]) -> dict[int, _Person]:
    found: dict[int, _Person] = {}
    phones = sorted({p.phone for p in batch if p.phone and p.phone.startswith("+")})
    for chunk in chunks(phones):  # type: ignore[arg-type]
        found.update((r.id, _person(r)) for r in session.execute(select(*_DUP_COLUMNS).where(Contact.phone_normalized.in_(chunk))))
    accounts = sorted({p.account_id for p in batch if p.account_id is not None})
    for chunk in chunks(accounts):
        found.update((r.id, _person(r)) for r in session.execute(select(*_DUP_COLUMNS).where(Contact.account_id.in_(chunk))))
    domains = sorted({p.email.rpartition("@")[2] for p in batch if p.email and "@" in p.email})
    for start in range(0, len(domains), 50):
        likes = [Contact.email_normalized.like(f"%@{d}") for d in domains[start:start + 50]]
        found.update((r.id, _person(r)) for r in session.execute(select(*_DUP_COLUMNS).where(or_(*likes))))
    return found


def _signals(a: _Person, b: _Person, phone_users: dict[str, int]) -> list[tuple[str, str]]:
    out = []
    if a.email and b.email and a.email != b.email and email_canonical(a.email) == email_canonical(b.email):
        out.append(("email_variant", f"{a.email} and {b.email} are one mailbox written two ways"))
    same_name = bool(a.folded) and a.folded == b.folded
    if same_name and a.account_id is not None and a.account_id == b.account_id:
        out.append(("same_name_same_account", f"both are \u201c{a.name}\u201d at the same account"))
    elif same_name and (a.account_id is None or b.account_id is None):
        da, db = domain_of(a.email), domain_of(b.email)
        if da and da == db and is_company_domain(da):
            out.append(("same_name_same_domain", f"both are \u201c{a.name}\u201d writing from {da}"))
    # A shared line and a shared surname is a person only if the first names could be one (Dan, Daniel).
    if (a.phone and a.phone == b.phone and phone_users.get(a.phone, 0) <= SHARED_PHONE_LIMIT
            and a.last and fold(a.last) == fold(b.last) and a.first[:1].lower() == b.first[:1].lower()):
        out.append(("same_phone_same_surname", f"{a.label} and {b.label} share the phone number {a.phone}"))
    return out


def _keys(p: _Person) -> list[str]:
    """Blocking keys: only people sharing one are compared, so a whole book stays near-linear."""
    keys = []
    if p.email and (canonical := email_canonical(p.email)):
        keys.append(f"mail:{canonical}")
    if p.folded:
        keys.append(f"name:{p.folded}")
    if p.phone:
        keys.append(f"phone:{p.phone}")
    return keys


def _merge_decided(session: Session, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Pairs some merge decision already covers (queued, decided or executed, by an import or this agent)."""
    targets = sorted({low for low, _ in pairs})
    covered: set[tuple[int, int]] = set()
    for chunk in chunks(targets):
        rows = session.execute(select(Decision.actions, Decision.status).where(
            Decision.subject_type == "contact", Decision.subject_id.in_(chunk), Decision.status != "failed"))
        for actions, _status in rows:
            for a in actions or []:
                params = a.get("params") or {} if isinstance(a, dict) else {}
                if a.get("type") == "merge_contacts":
                    pair = tuple(sorted((params.get("source_contact_id"), params.get("target_contact_id"))))
                    if pair in pairs:
                        covered.add(pair)  # type: ignore[arg-type]
    return covered


def duplicate_hints(session: Session, contacts: Sequence[Contact]) -> dict[int, list[DuplicateHint]]:
    """Per contact of the batch: other contacts likely the same person, each pair given to one contact only."""
    batch = [_person(c) for c in contacts]
    if not batch:
        return {}
    pool = _candidates(session, batch)
    phone_users: dict[str, int] = defaultdict(int)
    for p in pool.values():
        if p.phone:
            phone_users[p.phone] += 1
    blocks: dict[str, list[_Person]] = defaultdict(list)
    for p in pool.values():
        for key in _keys(p):
            blocks[key].append(p)
    found: dict[tuple[int, int], tuple[int, DuplicateHint]] = {}
    for a in batch:
        others = {b.id: b for key in _keys(a) for b in blocks.get(key, [])}
        for b in sorted(others.values(), key=lambda p: p.id):
            pair = tuple(sorted((a.id, b.id)))
            if b.id == a.id or pair in found:
                continue
            signals = _signals(a, b, phone_users)
            if not signals:
                continue
            confidence = min(0.95, max(DUPLICATE_SIGNALS[s] for s, _ in signals) + 0.05 * (len(signals) - 1))
            found[pair] = (a.id, DuplicateHint(contact_id=b.id, label=b.label[:200], signals=[s for s, _ in signals],  # type: ignore[index]
                                               evidence="; ".join(w for _, w in signals)[:1000], confidence=round(confidence, 3)))
    covered = _merge_decided(session, set(found))  # type: ignore[arg-type]
    hints: dict[int, list[DuplicateHint]] = defaultdict(list)
    for pair, (owner, hint) in sorted(found.items()):
        if pair not in covered:
            hints[owner].append(hint)
    return hints


# == subjects and contexts ===========================================================================
def _assemble(session: Session, contacts: Sequence[Contact], as_of: datetime,
              sources: Sequence[EnrichmentSource], ratings: dict[str, RuleRating], outside: bool = False) -> list[Context]:
    near = neighbourhood(session, contacts)
    said = verdicts(session, contacts, as_of)
    duplicates = duplicate_hints(session, contacts)
    enrichers = account_enrichers(contacts)
    contexts = []
    for contact in contacts:
        account = contact.account
        enrich_account = contact.id in enrichers
        request = lookup_request(contact, near, enrich_account=enrich_account, ratings=ratings)
        reports = gather(sources, request)
        account_key = ("account", account.id) if account else None
        rejected = said.rejected.get(("contact", contact.id), []) + (said.rejected.get(account_key, []) if account_key else [])
        in_review = said.in_review.get(("contact", contact.id), []) + (said.in_review.get(account_key, []) if account_key else [])
        contexts.append(Context(
            contact_id=contact.id, contact=request.contact, account=request.account, enrich_account=enrich_account,  # type: ignore[arg-type]
            owner_id=contact.owner_id, name=contact.full_name, company=account.name if account else None,
            email_domain=request.email_domain, email_kind=email_kind(contact.email),  # type: ignore[arg-type]
            gaps=request.wanted, sources=[r.source for r in reports], failed_sources=[r.source for r in reports if r.failed],
            facts=[f for r in reports for f in r.facts], source_notes=[f"{r.source}: {n}" for r in reports for n in r.notes],
            rejected=rejected, in_review=in_review, duplicates=duplicates.get(contact.id, []),
            notes=(contact.notes or "")[:NOTES_LIMIT] or None, sensitive=request.sensitive,
            rule_ratings=sorted(ratings.values(), key=lambda r: r.rule),
            lookup=request if outside and not request.sensitive and request.wanted else None,
        ))
    return contexts


def _has_something_to_propose(ctx: Context) -> bool:
    """Data only, no reasoner: a likely duplicate, or a field a source could write.

    A field counts when it is writable, not waiting for review, and the best supported value the
    sources report for it (weighed as the evidence module weighs it, values a person rejected left
    out) fills a gap, tidies the current value, or differs from it on evidence strong enough to
    propose a change (OVERWRITE_MIN). Whether the agent then proposes it is the agent's call.
    """
    if ctx.duplicates:
        return True
    for record_type, name in sorted({(f.record_type, f.field) for f in ctx.facts}):
        record = ctx.contact if record_type == "contact" else ctx.account
        if (record is None or name not in WRITABLE.get(record_type, ()) or f"{record_type}.{name}" in ctx.in_review
                or (record_type == "account" and not ctx.enrich_account)):
            continue
        facts = [f for f in ctx.facts if f.record_type == record_type and f.field == name
                 and not any(r.record_type == record_type and r.field == name and same_value(name, r.value, f.value)
                             for r in ctx.rejected)]
        ranked = weigh(name, facts)
        if not ranked:
            continue
        best, current = ranked[0], record.values.get(name)
        manual = name in record.manual_fields
        weak = best.confidence < LOW_EVIDENCE or bool(best.disputed_by)
        if current is None or (isinstance(current, str) and not current.strip()):
            if not manual or best.confidence >= OVERWRITE_MIN:
                return True
        elif str(current).strip() == str(best.value).strip():
            continue
        elif any(f.rewrites is not None and str(f.rewrites) == str(current) for f in best.facts):
            if not manual and not weak:
                return True
        elif not same_value(name, current, best.value) and best.confidence >= OVERWRITE_MIN:
            return True
    return False


def _api_could_fill(ctx: Context) -> bool:
    if ctx.sensitive:
        return False
    return any((record == "contact" and name in PERSON_TARGETS) or (record == "account" and name in COMPANY_TARGETS)
               for record, _, name in (g.partition(".") for g in ctx.gaps))


def _looked_at_since(session: Session, contact_ids: Sequence[int], since: datetime) -> set[int]:
    seen: set[int] = set()
    for chunk in chunks(list(contact_ids)):
        seen.update(session.scalars(select(Decision.subject_id).where(
            Decision.agent == "enrichment", Decision.subject_type == "contact", Decision.subject_id.in_(chunk),
            Decision.created_at >= since)))
    return seen


def subjects(session: Session, *, as_of: datetime) -> list[int]:
    """Contacts the store alone gives something to propose for, plus those due an API look-up."""
    contacts = _contacts(session, None, as_of)
    if not contacts:
        return []
    contexts = _assemble(session, contacts, as_of, [StoreSource()], measure(session, as_of=as_of))
    due = [ctx.contact_id for ctx in contexts if _has_something_to_propose(ctx)]
    if any(isinstance(s, HttpEnrichmentSource) for s in configured_sources()):
        waiting = [ctx.contact_id for ctx in contexts if ctx.contact_id not in set(due) and _api_could_fill(ctx)]
        recent = _looked_at_since(session, waiting, as_of - timedelta(days=RECHECK_DAYS))
        due += [cid for cid in waiting if cid not in recent]
    return sorted(due)


def build(session: Session, subject_ids: Sequence[int], *, as_of: datetime,
          prepared: PreparedEnrichment | None = None) -> list[Context]:
    """One context per contact in `subject_ids` present at `as_of` (others are skipped), in that order."""
    prepared = prepared or prepare(session, as_of=as_of)
    wanted = list(dict.fromkeys(subject_ids))
    found = {c.id: c for c in _contacts(session, wanted, as_of)}
    contexts = _assemble(session, [found[i] for i in wanted if i in found], as_of,
                         [s for s in prepared.sources if not isinstance(s, HttpEnrichmentSource)], prepared.ratings,
                         prepared.outside)
    if contexts:
        book = enrichment_block(session, prepared, as_of=as_of)
        contexts = [c.model_copy(update={"book": book}) for c in contexts]
    return contexts


__all__ = ["PreparedEnrichment", "build", "prepare", "subjects"]
