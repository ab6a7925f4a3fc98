"""The country each contact gave, as a real book carries it.

Web forms, event lists and imports nearly always ask where a person is, so most contacts in a
real CRM carry a country; the rest are the gaps the enrichment agent fills from the account.
A few people work away from their company's country (a UK sales lead of a US firm, a remote
engineer), so the account's country is usually, not always, the person's; such a person's phone
is a local one, as their own line would be. Without these values the book could never check how
often "the contact is where the account is" holds.

Countries are drawn from their own random stream, after the contacts exist, so adding them
does not move any other draw of the book. They are spelled as the accounts spell them.
"""
from __future__ import annotations

import random

from crm_core.demo import vocab
from crm_core.demo.people import typed_phone
from crm_core.demo.records import AccountRec, ContactRec

GIVEN_SHARE = 0.83   # contacts whose country a person entered; the rest stay empty
ABROAD_SHARE = 0.04  # of those with an account, the ones located outside the account's country
# People without a company in the book sign up from the demo's home market (their hours are US Eastern).
PERSONAL_COUNTRY = "United States"


def _abroad(rng: random.Random, home: str) -> str:
    """Another market, likelier the bigger it is: people move where companies hire."""
    others = [m for m in vocab.MARKETS if m.country != home]
    return rng.choices([m.country for m in others], weights=[m.weight for m in others], k=1)[0]


def give_countries(rng: random.Random, contacts: list[ContactRec], accounts: list[AccountRec]) -> None:
    """Set `attributes["country"]` on GIVEN_SHARE of the contacts, ABROAD_SHARE of those at an account abroad."""
    # Exact shares (sampled positions, not a coin per contact) keep every seed and scale looking alike.
    given = sorted(rng.sample(range(len(contacts)), round(len(contacts) * GIVEN_SHARE)))
    at_account = [i for i in given if contacts[i].account is not None]
    abroad = set(rng.sample(at_account, round(len(at_account) * ABROAD_SHARE)))
    for i in given:
        contact = contacts[i]
        if contact.account is None:
            contact.attributes["country"] = PERSONAL_COUNTRY
            continue
        home = accounts[contact.account].country
        if i not in abroad:
            contact.attributes["country"] = home
            continue
        contact.attributes["country"] = _abroad(rng, home)
        if contact.phone is not None:  # the head office's number would contradict where they said they are
            contact.phone, contact.phone_normalized = typed_phone(rng, contact.attributes["country"])

__all__ = ["ABROAD_SHARE", "GIVEN_SHARE", "give_countries"]
