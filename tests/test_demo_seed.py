"""seed-demo: the book a newcomer sees first. Size, consistency, learnable outcomes, determinism."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from agents.enrichment.sources import places
from crm_core import clock
from crm_core.cli import main
from crm_core.contexts.enrichment_rules import contact_country_from_account
from crm_core.db import unit_of_work
from crm_core.demo import countries, seed_demo, vocab
from crm_core.demo.generator import DemoOptions, generate_book
from crm_core.errors import UserError
from crm_core.models import (Account, Activity, Base, Contact, Deal, Decision, Email, Meeting, ScoreHistory,
                             StageHistory, Task, User)

AS_OF = datetime(2026, 3, 10, 14, 7, 33)
WINDOW_START = AS_OF - timedelta(days=120)
OPEN_STAGES = ("Prospecting", "Discovery", "Demo", "Proposal", "Negotiation")
DECISION_MAKER = re.compile(r"\b(VP|Vice President|Head|Director|Chief|CEO)\b")
BUYER_SIGNALS = ("page_view", "email_opened", "email_clicked", "email_replied", "content_download", "form_submit")
BOOK_TABLES = ("users", "accounts", "contacts", "deals", "deal_stage_history", "emails", "meetings", "activities", "tasks")


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _book_digest(url: str) -> str:
    """A hash of every row the seeder writes, with values in a back-end independent form."""
    def norm(value):
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value.quantize(Decimal("0.01")))
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True)
        return value

    digest = hashlib.sha256()
    with unit_of_work(url, readonly=True) as s:
        for name in BOOK_TABLES:
            table = Base.metadata.tables[name]
            key = table.c.id if "id" in table.c else list(table.primary_key)[0]
            for row in s.execute(select(table).order_by(key)):
                digest.update(json.dumps([norm(v) for v in row], default=str).encode())
    return digest.hexdigest()


# ---- the full default book ---------------------------------------------------------------------

@pytest.mark.slow  # the one full-size seed: about 3 s on SQLite, 5 s on PostgreSQL here
def test_default_book_has_the_stated_size_team_and_content(store):
    result = seed_demo(as_of=AS_OF)
    assert result.seeded and result.counts["contacts"] == 800

    with unit_of_work(readonly=True) as s:
        users = s.scalars(select(User)).all()
        assert [u.role for u in users].count("manager") == 1
        reps = [u for u in users if u.role == "rep"]
        assert len(reps) == 6 and sum(u.is_senior for u in reps) == 2
        assert all(r.manager_id == next(u.id for u in users if u.role == "manager") for r in reps)
        assert len({u.timezone for u in reps}) >= 4 and all(u.work_start_hour < u.work_end_hour for u in users)

        assert 140 <= _count(s, Account) <= 160
        assert 760 <= _count(s, Contact) <= 840
        assert 190 <= _count(s, Deal) <= 210
        assert 19_000 <= _count(s, Activity) <= 21_000
        assert _count(s, Activity, Activity.occurred_at < WINDOW_START) == 0
        assert _count(s, Activity, Activity.occurred_at > AS_OF) == 0
        types = set(s.scalars(select(Activity.type).distinct()))
        assert {"page_view", "content_download", "email_sent", "email_opened", "email_clicked", "email_replied",
                "call", "meeting", "note", "form_submit", "stage_change"} <= types

        healthcare = s.scalars(select(Account).where(Account.industry == "Healthcare")).all()
        assert healthcare and all(a.sensitive for a in healthcare)
        assert _count(s, Contact, Contact.sensitive.is_(True)) >= 3
        assert len(set(s.scalars(select(Contact.source).distinct()))) >= 7
        stages = dict(s.execute(select(Contact.lifecycle_stage, func.count()).group_by(Contact.lifecycle_stage)).all())
        assert set(stages) == {"lead", "mql", "sql", "opportunity", "customer", "disqualified"}
        assert _count(s, Contact, Contact.lifecycle_stage.in_(("customer", "disqualified")), Contact.outcome_at.is_(None)) == 0
        assert _count(s, Contact, Contact.lifecycle_stage.not_in(("customer", "disqualified")), Contact.outcome_at.is_not(None)) == 0
        manual = [c for c in s.scalars(select(Contact).where(Contact.phone.is_not(None))) if "phone" in c.manual_fields]
        assert manual
        # Phones come as people type them, in several national formats, each with its E.164 form.
        phones = s.execute(select(Contact.phone, Contact.phone_normalized).where(Contact.phone.is_not(None))).all()
        assert len({p[1][:3] for p in phones}) >= 8
        assert all(re.fullmatch(r"\+\d{8,15}", e164) for _, e164 in phones)

        statuses = dict(s.execute(select(Deal.status, func.count()).group_by(Deal.status)).all())
        assert statuses["won"] >= 30 and statuses["lost"] >= 30 and statuses["open"] >= 80
        assert set(s.scalars(select(Deal.stage).where(Deal.status == "open").distinct())) == set(OPEN_STAGES)

        # Nothing the agents compute is pre-set.
        assert _count(s, Contact, Contact.score.is_not(None)) == 0
        assert _count(s, Contact, Contact.tier.is_not(None)) == 0
        assert _count(s, ScoreHistory) == 0 and _count(s, Decision) == 0
        assert _count(s, Deal, Deal.risk.is_not(None)) == 0

        assert _count(s, Email, Email.direction == "inbound") >= 300
        assert _count(s, Email, Email.direction == "outbound") >= 800
        assert _count(s, Task, Task.status == "open") >= 10


def test_demo_book_has_threads_meetings_and_an_injection_attempt(store):
    seed_demo(as_of=AS_OF, scale=0.3)
    with unit_of_work(readonly=True) as s:
        injected = s.scalars(select(Email).where(Email.body.contains("ignore previous instructions"))).all()
        assert len(injected) == 1 and injected[0].direction == "inbound"
        assert "attacker@evil.example" in injected[0].body
        sender = s.get(Contact, injected[0].contact_id)
        assert sender.email == injected[0].from_address
        threads = Counter(s.scalars(select(Email.thread_id)))
        assert sum(1 for n in threads.values() if n >= 2) >= 20
        assert s.scalars(select(Email).where(Email.body.contains("above what we budgeted"))).first() is not None

        meetings = s.scalars(select(Meeting)).all()
        past = [m for m in meetings if m.starts_at < AS_OF]
        upcoming = [m for m in meetings if m.starts_at > AS_OF]
        assert len(past) >= 3 and all(m.transcript and m.status == "completed" for m in past)
        for m in past:
            speakers = {line.split("] ", 1)[1].split(":", 1)[0] for line in m.transcript.splitlines()}
            assert len(speakers) >= 3
            assert re.search(r"I'll .+ by (Monday|Tuesday|Wednesday|Thursday|Friday), \w+ \d+", m.transcript)
            assert m.action_items_extracted_at is None
        assert any(m.starts_at <= AS_OF + timedelta(hours=1) for m in upcoming)
        assert any(m.starts_at.date() == AS_OF.date() + timedelta(days=1) for m in upcoming)
        assert all(m.brief is None and m.transcript is None and m.status == "scheduled" for m in upcoming)
        linked = s.scalars(select(Activity).where(Activity.type == "meeting")).all()
        assert {a.payload.get("meeting_id") for a in linked} >= {m.id for m in past}


# ---- consistency -------------------------------------------------------------------------------

def test_stage_history_is_a_consistent_chain_for_every_deal(store):
    seed_demo(as_of=AS_OF, scale=0.3)
    with unit_of_work(readonly=True) as s:
        history = defaultdict(list)
        for h in s.scalars(select(StageHistory).order_by(StageHistory.deal_id, StageHistory.changed_at, StageHistory.id)):
            history[h.deal_id].append(h)
        stage_changes = Counter(s.scalars(select(Activity.deal_id).where(Activity.type == "stage_change")))
        deals = s.scalars(select(Deal)).all()
        assert deals
        for deal in deals:
            rows = history[deal.id]
            assert rows[0].from_stage is None and rows[0].to_stage == "Prospecting"
            assert rows[0].changed_at == deal.opened_at
            for before, after in zip(rows, rows[1:]):
                assert after.from_stage == before.to_stage and after.changed_at > before.changed_at
            assert rows[-1].to_stage == deal.stage and rows[-1].changed_at == deal.stage_entered_at
            if deal.status == "open":
                assert deal.stage in OPEN_STAGES and deal.closed_at is None
                assert [r.to_stage for r in rows] == list(OPEN_STAGES[: len(rows)])
            else:
                assert deal.stage == {"won": "Closed Won", "lost": "Closed Lost"}[deal.status]
                assert deal.closed_at == deal.stage_entered_at <= AS_OF
            assert stage_changes[deal.id] == len(rows)
            assert deal.amount > 0 and deal.currency in ("USD", "EUR", "GBP", "CAD", "AUD")


def test_contact_emails_are_unique_case_insensitively_and_last_activity_matches_the_log(store):
    seed_demo(as_of=AS_OF, scale=0.3)
    with unit_of_work(readonly=True) as s:
        emails = s.execute(select(Contact.email, Contact.email_normalized)).all()
        assert all(norm == email.lower() for email, norm in emails)
        assert len({email.lower() for email, _ in emails}) == len(emails)
        assert any(email != email.lower() for email, _ in emails)  # some typed with capitals
        last = dict(s.execute(select(Activity.contact_id, func.max(Activity.occurred_at)).group_by(Activity.contact_id)).all())
        for contact in s.scalars(select(Contact)):
            assert contact.last_activity_at == last.get(contact.id)
            # Reserved names only: a demo store wired to real SMTP must never reach a real mailbox.
            domain = contact.email.split("@")[1]
            assert domain.endswith(".example") or domain in ("example.com", "example.net", "example.org")
            if contact.account is not None:
                assert domain == contact.account.domain


def test_most_contacts_carry_the_country_they_entered_a_few_another_than_their_account():
    book = generate_book(DemoOptions(seed=3, scale=0.5, as_of=AS_OF))
    given = [c for c in book.contacts if "country" in c.attributes]
    assert 0.80 <= len(given) / len(book.contacts) <= 0.86  # the rest are the gaps enrichment fills
    # Spelled as the accounts spell them, never a code or a variant.
    assert {c.attributes["country"] for c in given} <= {a.country for a in book.accounts} | {m.country for m in vocab.MARKETS}
    paired = [c for c in given if c.account is not None]
    abroad = [c for c in paired if c.attributes["country"] != book.accounts[c.account].country]
    assert 0.03 <= len(abroad) / len(paired) <= 0.05
    # Someone working abroad has a local phone, not one that contradicts the country they gave.
    phoned = [c for c in abroad if c.phone_normalized]
    assert phoned and all(places.country_of_phone(c.phone_normalized).name == c.attributes["country"] for c in phoned)


def test_countries_come_from_their_own_stream_and_move_nothing_else(monkeypatch):
    options = DemoOptions(seed=5, scale=0.2, as_of=AS_OF)
    book = generate_book(options)
    monkeypatch.setattr(countries, "give_countries", lambda *args, **kwargs: None)
    without = generate_book(options)
    abroad = {i for i, c in enumerate(book.contacts)
              if c.account is not None and c.attributes.get("country") not in (None, book.accounts[c.account].country)}
    assert abroad and sum("country" in c.attributes for c in book.contacts) > len(book.contacts) // 2
    # Take the countries (and the abroad people's local phones) away: the rest is the same book.
    for i, (mine, plain) in enumerate(zip(book.contacts, without.contacts, strict=True)):
        mine.attributes.pop("country", None)
        if i in abroad:
            mine.phone, mine.phone_normalized = plain.phone, plain.phone_normalized
    assert book.model_dump_json() == without.model_dump_json()


def test_the_book_can_check_the_contact_is_where_the_account_is(store):
    seed_demo(as_of=AS_OF, scale=0.2)
    with unit_of_work(readonly=True) as s:
        rating = contact_country_from_account(s, as_of=AS_OF)
    # Measured on the book, not the prior: most agree, the few working abroad keep it below certain.
    assert rating.measured and rating.pairs >= 100
    assert 0.9 <= rating.agreed / rating.pairs < 1 and rating.rating < rating.agreed / rating.pairs


# ---- outcomes an agent can learn ---------------------------------------------------------------

def test_outcomes_correlate_with_engagement_like_a_real_funnel(store):
    seed_demo(as_of=AS_OF, scale=0.5)
    with unit_of_work(readonly=True) as s:
        per_contact = Counter(s.scalars(select(Activity.contact_id).where(Activity.contact_id.is_not(None))))
        stage_of = dict(s.execute(select(Contact.id, Contact.lifecycle_stage)).all())
        title_of = dict(s.execute(select(Contact.id, Contact.title)).all())

        def mean_activity(stage: str) -> float:
            return statistics.mean(per_contact.get(c, 0) for c, st in stage_of.items() if st == stage)

        # Converted people engaged more than those turned away.
        assert mean_activity("customer") > 2 * mean_activity("disqualified")

        deals = s.scalars(select(Deal).where(Deal.status.in_(("won", "lost")))).all()
        acts = defaultdict(list)
        for a in s.scalars(select(Activity).where(Activity.deal_id.is_not(None))):
            acts[a.deal_id].append(a)
        by_contact = defaultdict(list)
        for a in s.scalars(select(Activity).where(Activity.type == "page_view")):
            by_contact[a.contact_id].append(a)
        demo_entry = dict(s.execute(select(StageHistory.deal_id, StageHistory.changed_at).where(StageHistory.to_stage == "Demo")).all())

        def share(status: str, test) -> float:
            chosen = [d for d in deals if d.status == status]
            return sum(1 for d in chosen if test(d)) / len(chosen)

        # Buyers who will buy look at the pricing page before the demo.
        def priced_before_demo(d: Deal) -> bool:
            at = demo_entry.get(d.id)
            return at is not None and any(v.payload["url"] == "/pricing" and at - timedelta(days=14) <= v.occurred_at < at
                                          for v in by_contact[d.primary_contact_id])
        reached_demo = [d for d in deals if d.id in demo_entry]
        won_demo = [d for d in reached_demo if d.status == "won"]
        lost_demo = [d for d in reached_demo if d.status == "lost"]
        assert sum(map(priced_before_demo, won_demo)) / len(won_demo) > sum(map(priced_before_demo, lost_demo)) / len(lost_demo)

        # A decision maker was engaged on most won deals, on few lost ones.
        def decision_maker_engaged(d: Deal) -> bool:
            return any(a.contact_id and a.contact_id != d.primary_contact_id and DECISION_MAKER.search(title_of[a.contact_id] or "")
                       for a in acts[d.id])
        assert share("won", decision_maker_engaged) > 0.6 > 0.4 > share("lost", decision_maker_engaged)

        # Lost deals go quiet before they close; won ones stay busy to the end.
        def buyer_signals_before_close(d: Deal) -> int:
            return sum(1 for a in acts[d.id] if a.type in BUYER_SIGNALS and d.closed_at - timedelta(days=14) <= a.occurred_at < d.closed_at)
        won_recent = statistics.mean(buyer_signals_before_close(d) for d in deals if d.status == "won")
        lost_recent = statistics.mean(buyer_signals_before_close(d) for d in deals if d.status == "lost")
        assert won_recent > 2 * lost_recent

        # ... with noise: some disqualified people were busy, some customers were quiet.
        disq = sorted(per_contact.get(c, 0) for c, st in stage_of.items() if st == "disqualified")
        cust = sorted(per_contact.get(c, 0) for c, st in stage_of.items() if st == "customer")
        assert disq[-1] > cust[len(cust) // 10]

        # Competitors come up in notes.
        notes = s.scalars(select(Activity.payload).where(Activity.type == "note")).all()
        assert any(re.search(r"Metricforge|Clarivue|Pulsegrid|Revlytics", n["text"]) for n in notes)


# ---- --if-empty, refusal, validation -----------------------------------------------------------

def test_if_empty_seeds_once_then_leaves_the_store_alone(store, capsys):
    args = ["seed-demo", "--if-empty", "--scale", "0.2", "--as-of", AS_OF.isoformat()]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("demo book seeded") and "160 contacts" in first and first.count("\n") == 2
    assert "demo mode: the 7 demo users sign in with their name and the password 'demo-password'" in first
    with unit_of_work(readonly=True) as s:
        before = (_count(s, Contact), _count(s, Deal), _count(s, Activity), _count(s, User))

    assert main(args) == 0
    assert "not added" in capsys.readouterr().out
    with unit_of_work(readonly=True) as s:
        assert (_count(s, Contact), _count(s, Deal), _count(s, Activity), _count(s, User)) == before


def test_seeding_a_store_that_has_data_without_if_empty_is_refused(store, capsys):
    with unit_of_work() as s:
        s.add(Deal(name="Existing deal", stage="Discovery"))
    assert main(["seed-demo", "--scale", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "already holds 0 contacts and 1 deal;" in err and "--if-empty" in err
    with unit_of_work(readonly=True) as s:
        assert _count(s, Contact) == 0 and _count(s, Deal) == 1
    with pytest.raises(UserError, match="only fills an empty store"):
        seed_demo(scale=0.2)


def test_existing_users_with_the_team_names_are_reused(store):
    with unit_of_work() as s:
        s.add(User(name="Nina Patel", email="nina@old.example", role="rep"))
    seed_demo(as_of=AS_OF, scale=0.2)
    with unit_of_work(readonly=True) as s:
        assert _count(s, User) == 7
        nina = s.scalars(select(User).where(User.name == "Nina Patel")).one()
        assert _count(s, Deal, Deal.owner_id == nina.id) + _count(s, Contact, Contact.owner_id == nina.id) > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scale": 0}, "--scale"), ({"scale": 11}, "--scale"), ({"seed": -1}, "--seed"),
])
def test_bad_options_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        seed_demo(**kwargs)


def test_bad_as_of_on_the_command_line_is_a_user_error(capsys):
    assert main(["seed-demo", "--as-of", "next tuesday"]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_a_store_without_schema_asks_for_init_db(tmp_path):
    with pytest.raises(UserError, match="init-db"):
        seed_demo(url=f"sqlite:///{tmp_path / 'blank.db'}", scale=0.2)


# ---- determinism and "now" ---------------------------------------------------------------------

def test_same_seed_and_moment_give_the_same_book_on_any_backend(store, sqlite_template, tmp_path):
    twin = tmp_path / "twin.db"
    shutil.copyfile(sqlite_template, twin)
    twin_url = f"sqlite:///{twin}"
    seed_demo(as_of=AS_OF, scale=0.2, seed=7)
    seed_demo(as_of=AS_OF, scale=0.2, seed=7, url=twin_url)
    assert _book_digest(store) == _book_digest(twin_url)


def test_a_different_seed_gives_a_different_book():
    one = generate_book(DemoOptions(seed=1, scale=0.2, as_of=AS_OF))
    again = generate_book(DemoOptions(seed=1, scale=0.2, as_of=AS_OF))
    other = generate_book(DemoOptions(seed=2, scale=0.2, as_of=AS_OF))
    assert one.model_dump_json() == again.model_dump_json()
    assert one.model_dump_json() != other.model_dump_json()
    assert [c.email for c in one.contacts] != [c.email for c in other.contacts]


def test_book_is_current_relative_to_the_clock(store):
    moment = datetime(2027, 1, 5, 9, 30)
    with clock.frozen_at(moment):
        result = seed_demo(scale=0.2)
    assert result.as_of == moment
    with unit_of_work(readonly=True) as s:
        newest = s.scalar(select(func.max(Activity.occurred_at)))
        assert moment - timedelta(days=2) < newest <= moment
        soon = s.scalars(select(Meeting).where(Meeting.starts_at > moment, Meeting.starts_at <= moment + timedelta(hours=1))).all()
        assert soon
