"""The lead scorer learns only from values a person or an import entered, and scores with the same.

Values the enrichment agent wrote (marked in `attributes["_enrichment"]`) are missing for the
learn step and for the scoring context alike; a person who typed over them makes them theirs.
Generated books: the agent's values planted the way an enrichment run on open leads leaves them
(on most customers and open leads, on no disqualified contact), or a person's at random.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from agents.learning.features import feature_row
from agents.learning.synthetic import SyntheticContact, synthetic_book
from crm_core.contexts.lead_book import load_records
from crm_core.contexts.provenance import entered_attributes, written_by_agent
from crm_core.db import unit_of_work
from crm_core.learning import learn_lead_scorer
from crm_core.models import Account, Activity, Contact, User

NOW = datetime(2025, 6, 10, 15, 0)
LEVELS = ("vp", "director", "manager")


def _mark(value) -> dict:
    return {"value": value, "source": "company website", "confidence": 0.8, "at": NOW.isoformat(), "decision_id": 1}


# -- who wrote a value ----------------------------------------------------------------------------
def test_a_value_is_the_agents_while_it_matches_its_mark_and_no_person_typed_it():
    attributes = {"seniority": "VP", "country": "UK", "_enrichment": {"seniority": _mark("vp"), "country": _mark("United Kingdom")}}
    assert written_by_agent(attributes, [], "seniority", "VP")             # same value, other case
    assert written_by_agent(attributes, [], "country", "UK")               # same country, other spelling
    assert not written_by_agent(attributes, ["seniority"], "seniority", "VP")  # a person typed it since
    assert not written_by_agent(attributes, [], "seniority", "Director")   # changed since (a person, an import)
    assert not written_by_agent(attributes, [], "department", "Sales")     # never marked
    assert not written_by_agent({}, [], "seniority", "VP")
    assert not written_by_agent(attributes, [], "seniority", None)


def test_entered_attributes_leave_out_the_agents_values_and_the_stores_bookkeeping():
    attributes = {"seniority": "vp", "department": "sales", "plan": "pro", "merged_from": [4], "other_emails": ["a@b.example"],
                  "_enrichment": {"seniority": _mark("vp"), "department": _mark("sales")}}
    assert entered_attributes(attributes, ["department"]) == {"department": "sales", "plan": "pro"}
    assert entered_attributes(None, None) == {}


# -- the store read as the learners see it --------------------------------------------------------
def test_the_learners_read_no_value_the_agent_wrote_on_the_contact_or_its_account(store):
    with unit_of_work() as s:
        typed = Account(name="Typed", name_key="typed", industry="Software", employee_count=120, country="Germany",
                        attributes={"website": "typed.example", "founded_year": 1999,
                                    "_enrichment": {"industry": _mark("Software"), "founded_year": _mark(1999)}},
                        manual_fields=["founded_year"])
        guessed = Account(name="Guessed", name_key="guessed", industry="Retail", employee_count=40)
        s.add_all([typed, guessed])
        s.flush()
        own = Contact(first_name="Own", title="VP Sales", account_id=typed.id, source="webinar", created_at=NOW - timedelta(days=9),
                      attributes={"seniority": "vp", "department": "Sales", "country": "Italy", "plan": "pro", "merged_from": [7],
                                  "_enrichment": {"title": _mark("VP Sales"), "seniority": _mark("vp"),
                                                  "department": _mark("Sales"), "country": _mark("France")}},
                      manual_fields=["department"])
        linked = Contact(first_name="Linked", title="Analyst", account_id=guessed.id, created_at=NOW - timedelta(days=9),
                         attributes={"_enrichment": {"account_id": _mark(guessed.id)}})
        s.add_all([own, linked])
        s.flush()
        ids = own.id, linked.id
    with unit_of_work() as s:
        records = load_records(s, as_of=NOW, contact_ids=list(ids))
    own, linked = records[ids[0]], records[ids[1]]
    assert own.fields["title"] is None                       # the agent's title
    assert own.attributes == {"attr.department": "Sales",    # a person typed over the agent's
                              "attr.country": "Italy",       # changed since the agent wrote France
                              "attr.plan": "pro", "account.website": "typed.example", "account.founded_year": 1999}
    assert own.fields["industry"] is None and own.fields["employee_count"] == 120 and own.fields["country"] == "Germany"
    row = feature_row(own, NOW)
    assert row["seniority"] is None and "attr.seniority" not in row and row["industry"] is None
    # A contact the agent linked to an account: nothing of that account is read.
    assert linked.fields["title"] == "Analyst"
    assert (linked.fields["industry"], linked.fields["employee_count"]) == (None, None)


# -- learning on a generated book -----------------------------------------------------------------
def _write(book: list[SyntheticContact], seniority: str, *, end: datetime) -> None:
    """Store the book; `seniority`: "agent" (the agent's, on 3 in 4 customers and every open lead,
    never on a disqualified contact), "person" (typed at random on half the contacts) or "none"."""
    rng = random.Random(3)
    with unit_of_work() as s:
        rep = User(name="book-rep", role="rep")
        s.add(rep)
        accounts: dict[tuple, Account] = {}
        for c in book:
            if (c.industry, c.employees) not in accounts:
                name = f"{c.industry} {c.employees}"
                accounts[(c.industry, c.employees)] = Account(name=name, name_key=name, industry=c.industry,
                                                              employee_count=c.employees, created_at=c.entry_at)
        s.add_all(accounts.values())
        s.flush()
        for c in book:
            closed = c.outcome_at is not None and c.outcome_at <= end
            stage = ("customer" if c.won else "disqualified") if closed else "lead"
            attributes: dict = {"plan": c.plan}
            if seniority == "agent" and (stage == "lead" or (stage == "customer" and rng.random() < 0.75)):
                level = rng.choice(LEVELS)
                attributes.update(seniority=level, _enrichment={"seniority": _mark(level)})
            elif seniority == "person" and rng.random() < 0.5:
                attributes["seniority"] = rng.choice(LEVELS)
            contact = Contact(first_name="Lead", last_name=str(c.key), email=c.email, email_normalized=c.email,
                              title=c.title, source=c.source, account_id=accounts[(c.industry, c.employees)].id,
                              owner_id=rep.id, lifecycle_stage=stage, outcome_at=c.outcome_at if closed else None,
                              attributes=attributes, created_at=c.entry_at)
            s.add(contact)
            s.flush()
            s.add_all(Activity(type="page_view", occurred_at=e.at, contact_id=contact.id, payload={"url": e.detail})
                      for e in c.events if e.at <= end)


def _book() -> tuple[list[SyntheticContact], datetime]:
    book = synthetic_book(300, seed=5)
    end = max(c.outcome_at for c in book if c.outcome_at is not None) - timedelta(days=20)
    return book, end


def _learn(as_of: datetime):
    with unit_of_work() as s:
        model = learn_lead_scorer(s, as_of=as_of, store=False)
    assert model.scorer is not None, model.reason
    return model.scorer


def test_seniority_the_agent_wrote_on_open_leads_and_customers_only_is_never_learned(sqlite_store):
    book, end = _book()
    _write(book, "agent", end=end)
    scorer = _learn(end)
    assert "attr.seniority" not in scorer.vectorizer.features
    assert "attr.seniority" not in scorer.report.dropped     # it never reached the learner
    # The same book without the agent's values learns exactly the same model.
    with unit_of_work() as s:
        for contact in s.scalars(select(Contact)):
            contact.attributes = {k: v for k, v in contact.attributes.items() if k not in ("seniority", "_enrichment")}
    again = _learn(end)
    assert (again.report.candidate, again.report.holdout_auc) == (scorer.report.candidate, scorer.report.holdout_auc)
    assert again.vectorizer.features == scorer.vectorizer.features


def test_seniority_a_person_typed_at_random_is_learned_from(sqlite_store):
    book, end = _book()
    _write(book, "person", end=end)
    scorer = _learn(end)
    assert "attr.seniority" in scorer.vectorizer.features
    assert "attr.seniority" not in scorer.report.dropped
