"""The one interface every enrichment source implements, and the values that cross it.

A source gets a `LookupRequest` (plain data: the record's current values and what the context
builder already read from the store) and returns a `SourceReport` of `Fact`s, each naming the
source, a confidence and the evidence. A source never opens a database session: whatever it
needs from the store, the builder puts into the request. A source never raises for a bad answer
from outside either: it returns no fact and says why in `notes`.
"""
from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from agents.base import Frozen

RecordType = Literal["contact", "account"]
FactValue = str | int | float


class RecordSnapshot(Frozen):
    """A record as the store holds it now: the fields enrichment may fill, and who set them."""

    record_type: RecordType
    record_id: int
    label: str | None = None
    values: dict[str, FactValue | None] = Field(default_factory=dict)
    manual_fields: list[str] = Field(default_factory=list)


class AccountHint(Frozen):
    """An account already in the store that shares the contact's email domain (found by the builder)."""

    account_id: int
    name: str
    domain: str | None = None
    country: str | None = None


class RuleRating(Frozen):
    """How far one store rule is trusted in this book: measured by the context builder, or the prior.

    A rule that copies a field from a linked record ("a contact's country is its account's") is
    right as often as the book says: among records where a person entered the field, `agreed` of
    `pairs` match what the rule would have copied. `rating` is a cautious lower bound of that
    share, or `prior` when the pairs are too few to say; `sentence` says which, in plain words.
    """

    rule: str
    prior: float = Field(ge=0.0, le=1.0)
    rating: float = Field(ge=0.0, le=1.0)
    agreed: int = 0
    pairs: int = 0
    measured: bool = False
    sentence: str = ""


class LookupRequest(Frozen):
    contact: RecordSnapshot | None = None
    account: RecordSnapshot | None = None
    # False when another contact of the same batch enriches the account, or a decision on it waits
    # for review: the account is then context only, and no source reports facts about it.
    enrich_account: bool = True
    email: str | None = None
    email_domain: str | None = None
    phone: str | None = None
    phone_normalized: str | None = None  # as the importer read it (E.164 where it could)
    account_domain: str | None = None
    same_domain_accounts: list[AccountHint] = Field(default_factory=list)
    colleague_domains: list[str] = Field(default_factory=list)     # email domains of the account's contacts
    colleague_phones: list[str] = Field(default_factory=list)      # phone numbers of the account's contacts
    wanted: list[str] = Field(default_factory=list)                # the gaps, "contact.title", "account.industry"
    sensitive: bool = False
    ratings: dict[str, RuleRating] = Field(default_factory=dict)  # rule name -> as measured on this book

    def wants(self, record_type: RecordType, fields: set[str] | frozenset[str]) -> bool:
        return any(g.split(".", 1)[0] == record_type and g.split(".", 1)[1] in fields for g in self.wanted)

    def rating(self, rule: str, prior: float) -> RuleRating:
        """The rule's rating as the builder measured it, else the prior (a request built by hand)."""
        return self.ratings.get(rule) or RuleRating(rule=rule, prior=prior, rating=prior)


class Fact(Frozen):
    record_type: RecordType
    field: str
    value: FactValue
    source: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: str = ""
    # Set when the fact re-writes the record's current value in standard form ("vp sales" ->
    # "VP Sales", "UK" -> "United Kingdom"): a tidy of the same information, not a new claim.
    rewrites: FactValue | None = None


class SourceReport(Frozen):
    source: str
    facts: list[Fact] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    failed: bool = False  # the source could not answer (time-out, HTTP error): the context is incomplete


@runtime_checkable
class EnrichmentSource(Protocol):
    name: str

    def lookup(self, request: LookupRequest) -> SourceReport:
        """Facts about the request's records. Never raises for bad input from outside; notes it."""
