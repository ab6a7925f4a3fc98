"""Build the whole demo book in memory from a seed, a scale and the moment it is "now".

Every part draws from its own random stream, named after the part (`42:accounts`,
`42:story` ...), so the same seed and `as_of` give the same book byte for byte, and a change
in one part's logic does not reshuffle the others.
"""
from __future__ import annotations

import random
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from crm_core.demo import countries, people, pipeline
from crm_core.demo.engagement import Story
from crm_core.demo.records import DemoBook

FULL_SIZE = {"accounts": 150, "contacts": 800, "deals": 200, "activities": 20_000}
MIN_SIZE = {"accounts": 8, "contacts": 40, "deals": 12, "activities": 800}


class DemoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=42, ge=0)
    scale: float = Field(default=1.0, gt=0, le=10)
    as_of: datetime

    def size(self, what: str) -> int:
        return max(MIN_SIZE[what], round(FULL_SIZE[what] * self.scale))


def generate_book(options: DemoOptions) -> DemoBook:
    seed, as_of = options.seed, options.as_of.replace(microsecond=0)

    def stream(part: str) -> random.Random:
        return random.Random(f"{seed}:{part}")

    book = DemoBook(seed=seed, scale=options.scale, as_of=as_of)
    book.users = people.make_users(as_of)
    book.accounts = people.make_accounts(stream("accounts"), options.size("accounts"), book.users, as_of)
    book.contacts = people.make_contacts(stream("contacts"), options.size("contacts"), book.accounts, book.users)
    countries.give_countries(stream("countries"), book.contacts, book.accounts)
    book.deals = pipeline.make_deals(stream("deals"), options.size("deals"), book.accounts, book.contacts, book.users, as_of)
    book.stage_history = pipeline.stage_history(book.deals, book.users)
    pipeline.settle_lifecycle(stream("lifecycle"), book.contacts, book.deals, as_of)
    # An account enters the CRM with its first person.
    first_seen: dict[int, datetime] = {}
    for contact in book.contacts:
        if contact.account is not None:
            first_seen[contact.account] = min(first_seen.get(contact.account, contact.created_at), contact.created_at)
    for a_idx, at in first_seen.items():
        book.accounts[a_idx].created_at = at

    story = Story(stream("story"), book, options.size("activities"))
    story.first_touches()
    story.deal_stories()
    story.marketing()
    story.sequences()
    story.questions()
    story.injection_attempt()
    story.meetings()
    story.tasks()
    story.browsing()
    story.finish()
    return book
