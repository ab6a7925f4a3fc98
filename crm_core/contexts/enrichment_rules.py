"""How often a store rule that copies a field from a linked record is right in this book.

The store source fills a contact's empty country with its account's country. Its prior rating
(0.75: people mostly work where their company is) is a guess about books in general; the book
itself can say better. Among the contacts whose own country a person entered (imported or typed:
not written by the enrichment agent, not a placeholder) and whose account has a country the rule
can read, the share that agree is how often the rule is right here.

The rating is the lower end of that share's 90 % Wilson interval, so a handful of agreeing pairs
never looks certain, capped where two agreeing sources are capped (`CORROBORATED_MAX`). Below
MIN_PAIRS pairs the prior stays, and the sentence shown to people says that the rule is not
checked on this book. A book whose contacts often sit in another country than their account gets
a low rating, so its fills wait for a person; one where the two nearly always agree lets them run.

The other store rules that read linked records (an account's website or country from what most
of its contacts' addresses and phones say) vote over several records and say how many agreed in
their own evidence; they keep their priors.

Values are read as they are now (the store keeps no history of field values); `as_of` cuts which
contacts count.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.enrichment.sources import RuleRating, places
from agents.enrichment.sources.evidence import CORROBORATED_MAX, same_value
from agents.enrichment.sources.store import CONTACT_COUNTRY_FROM_ACCOUNT, COUNTRY_FROM_ACCOUNT
from crm_core.contexts.provenance import written_by_agent
from crm_core.models import Account, Contact
from crm_core.quality.placeholders import audited_placeholders, is_missing

MIN_PAIRS = 30   # contacts to compare with before the book's own rate replaces the prior
Z_90 = 1.645     # two-sided 90 % interval
READ_BATCH = 2000


def wilson_lower(agreed: int, pairs: int, z: float = Z_90) -> float:
    """The lower end of the Wilson interval of agreed / pairs (0 for no pairs)."""
    if pairs <= 0:
        return 0.0
    share = agreed / pairs
    spread = z * math.sqrt(share * (1 - share) / pairs + z * z / (4 * pairs * pairs))
    return max(0.0, (share + z * z / (2 * pairs) - spread) / (1 + z * z / pairs))


def entered_country(attributes: dict[str, Any], manual: list[Any], audited: dict[str, frozenset[str]]) -> str | None:
    """The contact's own country when a person gave it: None when empty, a placeholder, or the agent's."""
    value = attributes.get("country")
    if not isinstance(value, str) or is_missing(value, "contacts.attributes.country", audited):
        return None
    return None if written_by_agent(attributes, manual, "country", value) else value


def contact_country_from_account(session: Session, *, as_of: datetime) -> RuleRating:
    """The copy rule's rating from the contacts at `as_of` whose country a person entered."""
    audited = audited_placeholders(session)
    agreed = pairs = 0
    rows = session.execute(
        select(Contact.attributes, Contact.manual_fields, Account.country)
        .join(Account, Account.id == Contact.account_id)
        .where(Contact.created_at <= as_of, Account.country.is_not(None))
        .execution_options(yield_per=READ_BATCH)
    )
    for attributes, manual, account_country in rows:
        if places.country(account_country) is None or is_missing(account_country, "accounts.country", audited):
            continue  # the rule copies only a country it can read
        own = entered_country(attributes or {}, list(manual or []), audited)
        if own is None:
            continue
        pairs += 1
        agreed += same_value("country", own, account_country)
    return country_rating(agreed, pairs)


def country_rating(agreed: int, pairs: int) -> RuleRating:
    """The rating `agreed` of `pairs` earns, with the sentence people read; the prior below MIN_PAIRS."""
    rule, prior = CONTACT_COUNTRY_FROM_ACCOUNT, COUNTRY_FROM_ACCOUNT
    if pairs < MIN_PAIRS:
        if pairs == 0:
            sentence = "not checked on this book: no contact with an account has a country a person entered"
        else:
            sentence = (f"not checked on this book yet: only {pairs} contact{'s' if pairs != 1 else ''} with an account "
                        f"{'have' if pairs != 1 else 'has'} a country a person entered, {MIN_PAIRS} are needed")
        return RuleRating(rule=rule, prior=prior, rating=prior, agreed=agreed, pairs=pairs, sentence=sentence)
    rating = round(min(CORROBORATED_MAX, wilson_lower(agreed, pairs)), 3)
    sentence = f"the account's country matched the contact's own country for {agreed} of {pairs} contacts in this book"
    return RuleRating(rule=rule, prior=prior, rating=rating, agreed=agreed, pairs=pairs, measured=True, sentence=sentence)


def measure(session: Session, *, as_of: datetime) -> dict[str, RuleRating]:
    """Every store rule rated on this book, by rule name (what `LookupRequest.ratings` carries)."""
    country = contact_country_from_account(session, as_of=as_of)
    return {country.rule: country}


__all__ = ["MIN_PAIRS", "contact_country_from_account", "country_rating", "entered_country", "measure", "wilson_lower"]
