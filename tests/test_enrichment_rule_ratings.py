"""The copy rule "a contact's country is its account's" rated on the book itself, and what that rating does.

Generated books, not the demo: countries, accounts and which contacts disagree are drawn at random,
and the share of contacts whose own country differs from their account's is set per book.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from agents.enrichment import AGENT
from agents.enrichment.sources import LookupRequest, RecordSnapshot, RuleRating, StoreSource
from agents.enrichment.sources.store import CONTACT_COUNTRY_FROM_ACCOUNT, COUNTRY_FROM_ACCOUNT
from crm_core import clock
from crm_core.contexts import enrichment as builder
from crm_core.contexts.enrichment_rules import MIN_PAIRS, country_rating, entered_country, measure, wilson_lower
from crm_core.db import unit_of_work
from crm_core.models import Account, Contact, Decision, User
from orchestration.runner import run_agent

NOW = datetime(2025, 6, 10, 15, 0)
COUNTRIES = ["Germany", "France", "United Kingdom", "United States", "Spain", "Netherlands", "Sweden", "India", "Brazil"]


def _book(*, references: int, disagree_share: float, targets: int = 8, seed: int = 11) -> dict[str, list[int]]:
    """Accounts in random countries; `references` contacts whose country a person entered (that share
    of them in another country than their account); `targets` contacts with no country at all."""
    rng = random.Random(seed)
    with unit_of_work() as s:
        rep = User(name="sam.rep", role="rep")
        s.add(rep)
        s.flush()
        accounts = []
        for i in range(20):
            a = Account(name=f"Company {i}", name_key=f"company {i}", domain=f"company{i}.com", country=rng.choice(COUNTRIES),
                        created_at=NOW - timedelta(days=200))
            s.add(a)
            accounts.append(a)
        s.flush()
        wrong = set(rng.sample(range(references), round(references * disagree_share)))
        out: dict[str, list[int]] = {"references": [], "targets": [], "disagreeing": []}

        def contact(n: int, account: Account, **kw) -> int:
            c = Contact(first_name=f"Pat{n}", last_name=f"Lee{n}", email=f"pat{n}.lee@{account.domain}",
                        email_normalized=f"pat{n}.lee@{account.domain}", account_id=account.id, owner_id=rep.id,
                        created_at=NOW - timedelta(days=30), **kw)
            s.add(c)
            s.flush()
            return c.id

        for n in range(references):
            account = rng.choice(accounts)
            country = rng.choice([c for c in COUNTRIES if c != account.country]) if n in wrong else account.country
            cid = contact(n, account, attributes={"country": country})
            out["references"].append(cid)
            if n in wrong:
                out["disagreeing"].append(cid)
        for n in range(references, references + targets):
            out["targets"].append(contact(n, rng.choice(accounts)))
        return out


def _country_decisions(ids: list[int]) -> list[Decision]:
    with unit_of_work(readonly=True) as s:
        rows = s.scalars(select(Decision).where(Decision.agent == "enrichment", Decision.subject_type == "contact",
                                                Decision.subject_id.in_(ids))).all()
        return [d for d in rows if any(f["field"] == "country" for f in (d.decision or {}).get("fills", []))]


def test_the_rating_is_a_cautious_lower_bound_and_the_prior_stays_below_the_minimum():
    assert wilson_lower(0, 0) == 0.0
    assert wilson_lower(30, 30) < 0.92 < wilson_lower(300, 300)  # more pairs, more sure
    assert 0.5 < wilson_lower(60, 100) < wilson_lower(600, 1000) < 0.6  # below the share, closer with more pairs
    rated = country_rating(142, 145)
    assert rated.measured and 0.9 < rated.rating <= 0.95
    assert rated.sentence == "the account's country matched the contact's own country for 142 of 145 contacts in this book"
    few = country_rating(MIN_PAIRS - 1, MIN_PAIRS - 1)
    assert not few.measured and few.rating == COUNTRY_FROM_ACCOUNT and f"only {MIN_PAIRS - 1} contacts" in few.sentence
    none = country_rating(0, 0)
    assert none.rating == COUNTRY_FROM_ACCOUNT and none.sentence.startswith("not checked on this book")


def test_only_a_country_a_person_gave_counts():
    assert entered_country({"country": "France"}, [], {}) == "France"
    assert entered_country({"country": "N/A"}, [], {}) is None           # a placeholder
    assert entered_country({"country": "  "}, [], {}) is None
    assert entered_country({}, [], {}) is None
    assert entered_country({"country": "Spain"}, [], {"contacts.attributes.country": frozenset({"Spain"})}) is None  # audited
    agents = {"country": "France", "_enrichment": {"country": {"value": "France", "source": "store"}}}
    assert entered_country(agents, [], {}) is None                        # the agent wrote it
    assert entered_country(agents, ["country"], {}) == "France"           # a person typed it since
    retyped = {"country": "Italy", "_enrichment": {"country": {"value": "France", "source": "store"}}}
    assert entered_country(retyped, [], {}) == "Italy"                    # a person changed the agent's value


def test_the_store_source_uses_the_rating_it_is_given_and_copies_only_into_a_gap():
    account = RecordSnapshot(record_type="account", record_id=9, values={"country": "Germany"})
    rated = RuleRating(rule=CONTACT_COUNTRY_FROM_ACCOUNT, prior=COUNTRY_FROM_ACCOUNT, rating=0.52, agreed=60, pairs=100,
                       measured=True, sentence="the account's country matched the contact's own country for 60 of 100 contacts in this book")

    def country_facts(contact_country, ratings):
        contact = RecordSnapshot(record_type="contact", record_id=1, values={"country": contact_country})
        report = StoreSource().lookup(LookupRequest(contact=contact, account=account, ratings=ratings))
        return [f for f in report.facts if f.field == "country"]

    [prior] = country_facts(None, {})
    assert prior.confidence == COUNTRY_FROM_ACCOUNT
    [measured] = country_facts(None, {rated.rule: rated})
    assert measured.confidence == 0.52 and "for 60 of 100 contacts in this book" in measured.evidence
    # A country someone entered is never contradicted by the copy rule, however well rated.
    strong = rated.model_copy(update={"rating": 0.95})
    assert country_facts("France", {rated.rule: strong}) == []


def test_a_book_where_contacts_often_work_abroad_keeps_the_fills_in_the_queue(store):
    ids = _book(references=60, disagree_share=0.4)
    with unit_of_work(readonly=True) as s:
        rated = measure(s, as_of=NOW)[CONTACT_COUNTRY_FROM_ACCOUNT]
    assert (rated.agreed, rated.pairs) == (36, 60) and rated.measured and rated.rating < 0.6
    with clock.frozen_at(NOW):
        run_agent("enrichment", provider="offline", as_of=NOW)
    decisions = _country_decisions(ids["targets"])
    assert len(decisions) == len(ids["targets"])
    assert all(d.status == "queued" and d.decision["kind"] == "guess" for d in decisions)
    assert all("for 36 of 60 contacts in this book" in d.reasoning for d in decisions)
    with unit_of_work(readonly=True) as s:
        assert all("country" not in (s.get(Contact, i).attributes or {}) for i in ids["targets"])
    assert _country_decisions(ids["references"]) == []  # the entered countries are left as they are


def test_a_book_where_they_nearly_always_agree_lets_the_fills_run_alone(store):
    ids = _book(references=60, disagree_share=1 / 60, seed=5)
    with clock.frozen_at(NOW):
        run_agent("enrichment", provider="offline", as_of=NOW)
    decisions = _country_decisions(ids["targets"])
    assert len(decisions) == len(ids["targets"]) and all(d.status == "executed" for d in decisions)
    with unit_of_work(readonly=True) as s:
        for cid in ids["targets"]:
            contact = s.get(Contact, cid)
            assert contact.attributes["country"] == contact.account.country
            assert "for 59 of 60 contacts in this book" in contact.attributes["_enrichment"]["country"]["source"]
        # Its own rating did not make the rule contradict the one contact who works abroad.
        [abroad] = ids["disagreeing"]
        assert s.get(Contact, abroad).attributes["country"] != s.get(Contact, abroad).account.country
    assert _country_decisions(ids["references"]) == []


def test_a_book_with_no_country_a_person_entered_keeps_the_prior_and_says_so(store):
    ids = _book(references=0, disagree_share=0.0)
    with unit_of_work(readonly=True) as s:
        [ctx] = builder.build(s, ids["targets"][:1], as_of=NOW)
    [rated] = ctx.rule_ratings
    assert not rated.measured and rated.rating == COUNTRY_FROM_ACCOUNT
    [fill] = [f for f in AGENT.offline_decide(ctx).fills if f.field == "country"]
    assert fill.confidence == COUNTRY_FROM_ACCOUNT
    [proposal] = AGENT.proposals(ctx, AGENT.offline_decide(ctx))
    assert "not checked on this book: no contact with an account has a country a person entered" in proposal.reasoning


def test_too_few_pairs_keep_the_prior_whatever_they_say(store):
    references = MIN_PAIRS - 1
    _book(references=references, disagree_share=0.0)
    with unit_of_work(readonly=True) as s:
        rated = measure(s, as_of=NOW)[CONTACT_COUNTRY_FROM_ACCOUNT]
    assert (rated.agreed, rated.pairs, rated.measured, rated.rating) == (references, references, False, COUNTRY_FROM_ACCOUNT)
