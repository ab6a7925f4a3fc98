"""The privacy screen on hand-made contexts: ids at any depth, builder declarations, mentions, links."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from pydantic import BaseModel

from crm_core.contexts import privacy
from crm_core.db import unit_of_work
from crm_core.models import Account, Activity, Contact, Deal, Email, Meeting


class Item(BaseModel):
    deal_id: int
    note: str = ""


class Batch(BaseModel):  # no subject of its own: items carrying sensitive records are taken out
    deals: list[Item]


class MeetingCtx(BaseModel):
    meeting_id: int


class Nested(BaseModel):
    contact_id: int
    related: list[Item] = []
    text: str = ""


def seed() -> SimpleNamespace:
    with unit_of_work() as s:
        quiet = Account(name="Quiet Holdings", name_key="quiet holdings", sensitive=True)
        plain = Account(name="Plainview", name_key="plainview")
        s.add_all([quiet, plain])
        s.flush()
        jane = Contact(first_name="Jane", last_name="Roe", email="jane.roe@plainview.example",
                       email_normalized="jane.roe@plainview.example", account_id=plain.id, sensitive=True)
        at_quiet = Contact(first_name="Quinn", last_name="Hale", account_id=quiet.id)
        bob = Contact(first_name="Bob", last_name="Plain", email="bob@plainview.example", account_id=plain.id)
        s.add_all([jane, at_quiet, bob])
        s.flush()
        of_account = Deal(name="Quiet renewal", stage="Demo", account_id=quiet.id)
        logged = Deal(name="Plainview expansion", stage="Demo", account_id=plain.id, primary_contact_id=bob.id)
        attended = Deal(name="Plainview pilot", stage="Demo", account_id=plain.id, primary_contact_id=bob.id)
        clean = Deal(name="Plainview add-on", stage="Demo", account_id=plain.id, primary_contact_id=bob.id)
        s.add_all([of_account, logged, attended, clean])
        s.flush()
        s.add(Email(thread_id="t1", contact_id=jane.id, deal_id=logged.id, direction="inbound", sent_at=datetime(2026, 5, 1)))
        s.add(Activity(type="note", occurred_at=datetime(2026, 5, 2), contact_id=bob.id, deal_id=clean.id))
        meeting = Meeting(uid="m1", title="Pilot review", contact_id=bob.id, deal_id=attended.id,
                          starts_at=datetime(2026, 5, 3), ends_at=datetime(2026, 5, 3, 1),
                          attendees=["bob@plainview.example", "JANE.ROE@plainview.example"])
        s.add(meeting)
        s.flush()
        return SimpleNamespace(jane=jane.id, quinn=at_quiet.id, bob=bob.id, of_account=of_account.id, logged=logged.id,
                               attended=attended.id, clean=clean.id, meeting=meeting.id)


def screen(*contexts, builder=None):
    with unit_of_work(readonly=True) as s:
        return privacy.screen(s, list(contexts), builder=builder)


def test_linked_records_are_found_at_any_depth_with_the_reason(store):
    ids = seed()
    [(_, by_account), (_, by_email), (_, by_attendee), (_, clean), (_, by_meeting), (_, quinn)] = screen(
        Nested(contact_id=ids.bob, related=[Item(deal_id=ids.of_account)]),
        Nested(contact_id=ids.bob, related=[Item(deal_id=ids.logged)]),
        Nested(contact_id=ids.bob, related=[Item(deal_id=ids.attended)]),
        Nested(contact_id=ids.bob, related=[Item(deal_id=ids.clean)]),
        MeetingCtx(meeting_id=ids.meeting),
        Nested(contact_id=ids.quinn),
    )
    assert [r.why for r in by_account.withheld] == ["its account Quiet Holdings is marked sensitive"]
    assert [r.why for r in by_email.withheld] == ["it holds records of Jane Roe, who is sensitive"]
    assert [r.why for r in by_attendee.withheld] == ["Jane Roe, who is sensitive, attends its meetings"]
    assert not clean.keep_local and clean.withheld == ()
    assert [(r.kind, r.why) for r in by_meeting.withheld] == [("meeting", "Jane Roe, who is sensitive, attends")]
    assert [(r.kind, r.label, r.why) for r in quinn.withheld] == [("contact", "Quinn Hale", "its account is marked sensitive")]


def test_a_mention_by_name_or_address_without_any_id_is_caught(store):
    ids = seed()
    [(_, named), (_, addressed), (_, account), (_, plain)] = screen(
        Nested(contact_id=ids.bob, text="Call notes: jane  roe wants the pricing by Friday"),
        Nested(contact_id=ids.bob, text="cc Jane.Roe@Plainview.example on the thread"),
        Nested(contact_id=ids.bob, text="They compared us with Quiet Holdings last year"),
        Nested(contact_id=ids.bob, text="Janet Roebuck and Jane R. asked for a demo"),
    )
    assert [r.label for r in named.withheld] == ["Jane Roe"]
    assert [r.label for r in addressed.withheld] == ["Jane Roe"]
    assert [r.label for r in account.withheld] == ["Quiet Holdings"]
    assert plain.withheld == ()


def test_a_builder_declaration_adds_records_the_context_does_not_hold(store):
    ids = seed()
    builder = SimpleNamespace(declared_records=lambda ctx: {"deal": {ids.logged}})
    [(_, declared)] = screen(Nested(contact_id=ids.bob), builder=builder)
    assert [r.label for r in declared.withheld] == ["Plainview expansion"]


def test_a_batch_context_loses_its_sensitive_items_and_stays_shareable(store):
    ids = seed()
    [(kept, verdict)] = screen(Batch(deals=[Item(deal_id=ids.clean), Item(deal_id=ids.of_account),
                                            Item(deal_id=ids.clean, note="met Jane Roe")]))
    assert kept.deals == [Item(deal_id=ids.clean)]
    assert not verdict.keep_local
    assert {r.label for r in verdict.redacted} == {"Quiet renewal", "Jane Roe"}


def test_a_book_without_sensitive_records_costs_nothing_more(store):
    with unit_of_work() as s:
        s.add(Contact(first_name="Only", last_name="Plain"))
    [(ctx, verdict)] = screen(Nested(contact_id=1, text="anything"))
    assert verdict.withheld == () and verdict.redacted == () and ctx == Nested(contact_id=1, text="anything")
