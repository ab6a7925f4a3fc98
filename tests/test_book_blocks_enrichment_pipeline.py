"""The enrichment and per-deal pipeline book blocks: what every subject of a run shares, sent once.

The blocks are built on the demo book (scale 0.4: the pipeline learns its weights from its closed
deals), seeded once for the module and copied for each test. Runs through the model go through the
real `anthropic` SDK against the local fake Messages API, which answers each request with the
offline reasoner's decision for the subject it names and reports cache use as the API does.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.base import BookBlock, BookSection
from agents.llm import offline_provider
from agents.llm.book import context_snapshot, render_book
from agents.llm.fingerprint import fingerprint
from agents.pipeline import Review
from agents.registry import get_agent
from crm_core import clock
from crm_core.contexts import book_pipeline
from crm_core.db import dispose_engines, unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import Account, Contact, Deal, Decision, Policy, User
from orchestration.registry import builder
from orchestration.runner import run_agent
from tests.fakes import LoggedRequest, Step
from tests.fakes.anthropic_server import FakeAnthropicServer, forget_cache, reply_json, route_sdk_to

AS_OF = datetime(2026, 6, 1, 9, 0)
AGENTS = ("enrichment", "pipeline")
SONNET = "claude-sonnet-5-5"
# The parts each agent sent per subject before its block existed, and must no longer send.
MOVED = {
    "enrichment": ("store_rules_rated_on_this_book", "writable_fields", "guess_below", "change_only_at_or_above"),
    "pipeline": ("Learned estimate (red >=", "trained_on_deals", "holdout_auc", "base_loss_rate", "Model notes"),
}
_SUBJECT = {"enrichment": re.compile(r'"contact_id": (\d+)'), "pipeline": re.compile(r'"deal_id": (\d+)')}


# -- the book -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo book at 40 %, its pipeline weights learned and stored as the learn job leaves them."""
    path = tmp_path_factory.mktemp("books") / "seeded.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.4, url=url)
        with unit_of_work(url) as s:
            prepared = builder("pipeline").prepare(s, as_of=AS_OF)
    assert prepared.model is not None  # the learned path is the one worth testing
    dispose_engines()
    return path


@pytest.fixture
def book(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = tmp_path / "crm.db"
    with sqlite3.connect(seeded) as source, sqlite3.connect(path) as target:
        source.backup(target)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    yield url
    dispose_engines()


def contexts(agent_name: str, *, as_of: datetime = AS_OF, ids: list[int] | None = None) -> list:
    """The contexts a live run at `as_of` builds (the pipeline's review left out)."""
    module = builder(agent_name)
    with clock.frozen_at(as_of):
        with unit_of_work() as s:
            prepared = module.prepare(s, as_of=as_of)
        with unit_of_work(readonly=True) as s:
            subjects = ids if ids is not None else module.subjects(s, as_of=as_of)
            built = module.build(s, subjects, as_of=as_of, prepared=prepared)
    return [c for c in built if not isinstance(c, Review)]


def block_of(agent_name: str, **kwargs) -> BookBlock:
    built = contexts(agent_name, **kwargs)
    assert built and len({c.book.digest for c in built}) == 1
    return built[0].book


def _text(block: BookBlock) -> str:
    return render_book(block)


# -- stable while the book is, and the same for every subject ------------------------------------------------
@pytest.mark.parametrize("agent_name", AGENTS)
def test_the_block_is_the_same_for_every_subject_and_across_builds_of_an_unchanged_book(book, agent_name):
    built = contexts(agent_name)
    assert len(built) >= 10 and len({c.book.digest for c in built}) == 1
    first, second = (c.contact_id if agent_name == "enrichment" else c.deal_id for c in built[:2])
    # A scheduler job builds one subject at a time: each gets the block the whole run gets.
    [one] = contexts(agent_name, ids=[first])
    [other] = contexts(agent_name, ids=[second])
    assert one.book == other.book == built[0].book
    # Later the same day, prepared again (the stored weights read back): byte for byte the same block.
    later = block_of(agent_name, as_of=AS_OF + timedelta(hours=3))
    assert json.dumps(later.model_dump(mode="json")) == json.dumps(built[0].book.model_dump(mode="json"))
    assert "How your decisions are applied" in _text(later) and "What people decided" in _text(later)


def test_an_unchanged_contact_keeps_its_fingerprint_through_the_day_and_the_block_is_part_of_it(book):
    [morning] = contexts("enrichment", ids=[contexts("enrichment")[0].contact_id])
    [evening] = contexts("enrichment", as_of=AS_OF + timedelta(hours=8), ids=[morning.contact_id])
    assert fingerprint("enrichment", morning) == fingerprint("enrichment", evening)
    other = BookBlock.make(agent=morning.book.agent, version=morning.book.version, intro=morning.book.intro,
                           sections=(*morning.book.sections, BookSection(title="one more", lines=("x",))))
    assert fingerprint("enrichment", morning) != fingerprint("enrichment", morning.model_copy(update={"book": other}))
    assert context_snapshot(morning)["book"] == morning.book.stamp  # stored by version and digest


def test_the_pipeline_block_is_part_of_each_deals_fingerprint(book):
    deal = contexts("pipeline")[0]
    other = BookBlock.make(agent=deal.book.agent, version=deal.book.version, intro=deal.book.intro,
                           sections=deal.book.sections[:-1])
    assert fingerprint("pipeline", deal) != fingerprint("pipeline", deal.model_copy(update={"book": other}))
    assert context_snapshot(deal)["book"] == deal.book.stamp


# -- it moves with the policy and with people's verdicts -------------------------------------------------------
@pytest.mark.parametrize("agent_name, action_type", [("enrichment", "write_enrichment"), ("pipeline", "set_deal_risk")])
def test_the_block_changes_when_the_policy_changes(book, agent_name, action_type):
    before = block_of(agent_name)
    with unit_of_work() as s:
        s.merge(Policy(action_type=action_type, stakes="low", threshold=0.93, always_ask=False, updated_at=AS_OF))
    after = block_of(agent_name)
    assert after.digest != before.digest
    assert f"{action_type.replace('_', ' ')} (low stakes): it runs without a person when the combined confidence is at least 0.93" in _text(after)


def _verdict(agent: str, subject_type: str, subject_id: int, decision: dict, action_type: str) -> Decision:
    return Decision(agent=agent, subject_type=subject_type, subject_id=subject_id, subject_label="Ana Lima at Quillfeather",
                    status="rejected", policy_verdict="queue", decided_by="Maria Alvarez",
                    decided_at=AS_OF - timedelta(days=1), created_at=AS_OF - timedelta(days=2),
                    reasoning="Ana Lima works in Lisbon", actions=[{"type": action_type}], decision=decision)


def test_the_enrichment_block_counts_a_new_verdict_by_field_and_source_without_the_value_or_who(book):
    before = block_of("enrichment")
    with unit_of_work() as s:
        s.add(_verdict("enrichment", "contact", 1, {"kind": "guess", "reasoning": "Ana Lima's phone", "fills": [
            {"record_type": "contact", "field": "country", "value": "Portugal", "source": "store", "confidence": 0.65,
             "evidence": "store: the phone number +351 912 345 678 has the calling code +351", "current": None}]},
            "write_enrichment"))
    after = block_of("enrichment")
    text = _text(after)
    assert after.digest != before.digest
    assert "- contact country from store: 1 rejected" in text
    assert "- guess: contact country at 0.65 -> rejected" in text
    for private in ("Portugal", "Ana", "Lima", "Maria", "Quillfeather", "+351", "Lisbon"):
        assert private not in text


def test_the_pipeline_block_counts_a_new_verdict_without_the_deal_or_who(book):
    before = block_of("pipeline")
    with unit_of_work() as s:
        s.add(_verdict("pipeline", "deal", 1, {"kind": "deal", "risk": "red", "loss_probability": 62,
                                               "recommended_action": "re_engage_buyer", "confidence": 0.7,
                                               "reasoning": "Ana Lima went quiet", "evidence": ["Ana Lima"]},
                       "set_deal_risk"))
    text = _text(block_of("pipeline"))
    assert block_of("pipeline").digest != before.digest
    assert "- set deal risk: 1 rejected" in text
    assert "- red flag, chance of loss 62%, next step re engage buyer, confidence 0.7 -> rejected" in text
    assert "Ana" not in text and "Maria" not in text and "Quillfeather" not in text


# -- no one's data ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("agent_name", AGENTS)
def test_the_block_names_no_contact_account_deal_or_user_of_the_store(book, agent_name):
    text = _text(block_of(agent_name))
    with unit_of_work(readonly=True) as s:
        people = s.execute(select(Contact.first_name, Contact.last_name, Contact.email, Contact.phone)).all()
        names = [*s.scalars(select(Account.name)), *s.scalars(select(Deal.name)), *s.scalars(select(User.name)),
                 *s.scalars(select(Account.domain))]
    assert len(people) > 100
    for first, last, email, phone in people:
        assert f"{first} {last}" not in text
        assert not email or email not in text
        assert not phone or phone not in text
    assert not [n for n in names if n and len(n) > 6 and n in text]
    assert "@" not in text and not re.search(r"#\d|_id\": \d|\bid \d", text)


def test_a_closed_deal_of_a_sensitive_account_is_left_out_of_the_pipeline_examples(book, monkeypatch):
    # Tagged lines make each example's deal visible to this test only (the block itself carries no id).
    monkeypatch.setattr(book_pipeline, "_example_line", lambda deal, *rest: f"- example deal {deal.deal_id} {deal.outcome}")
    shown = re.findall(r"example deal (\d+)", _text(block_of("pipeline")))
    assert len(shown) == 2 * book_pipeline.EXAMPLES_PER_OUTCOME
    with unit_of_work() as s:
        deal = s.get(Deal, int(shown[0]))
        s.get(Account, deal.account_id).sensitive = True
        hidden = {d.id for d in s.scalars(select(Deal).where(Deal.account_id == deal.account_id))}
    after = re.findall(r"example deal (\d+)", _text(block_of("pipeline")))
    assert shown[0] not in after and not hidden & {int(i) for i in after}
    assert len(after) == len(shown)  # the next newest closed deal takes its place


# -- the per-subject message and the offline reasoner -----------------------------------------------------------
@pytest.mark.parametrize("agent_name", AGENTS)
def test_the_user_message_no_longer_carries_what_moved_into_the_block(book, agent_name):
    agent = get_agent(agent_name)
    built = contexts(agent_name)
    for ctx in built:
        user = agent.render(ctx)
        assert not [part for part in MOVED[agent_name] if part in user]
        assert "How your decisions are applied" not in user
        subject = ctx.contact_id if agent_name == "enrichment" else ctx.deal_id
        assert int(_SUBJECT[agent_name].search(user).group(1)) == subject  # the subject itself still travels
    # Without a block (a context built by hand, a golden case) the message carries it all, as before.
    without = agent.render(built[0].model_copy(update={"book": None}))
    assert all(part in without for part in MOVED[agent_name])
    text = _text(built[0].book)
    if agent_name == "enrichment":
        assert "The store's copy rules as this book rates them" in text and "rated 0." in text
        assert "Fields enrichment writes: contact account_id" in text
    else:
        assert "Validated on later periods of this book" in text and "What each signal's band says" in text
        assert "Who reviews a red deal" in text and "largest quarter" in text
        assert "Red at a chance of loss of" in text and "Worked examples: closed deals" in text


@pytest.mark.parametrize("agent_name", AGENTS)
def test_the_offline_reasoner_decides_the_same_with_or_without_the_block(book, agent_name):
    agent = get_agent(agent_name)
    built = contexts(agent_name)
    assert len(built) >= 10
    for ctx in built:
        bare = ctx.model_copy(update={"book": None})
        decided, before = offline_provider.decide(agent, ctx), offline_provider.decide(agent, bare)
        assert decided == before
        assert ([p.model_dump(mode="json") for p in agent.proposals(ctx, decided)]
                == [p.model_dump(mode="json") for p in agent.proposals(bare, before)])


# -- through the SDK: one cached prefix for the run ----------------------------------------------------------------
class _Offline(FakeAnthropicServer):
    """Answers each request with the offline decision for the subject its user message names."""

    agent = "enrichment"
    replies: dict[str, dict] = {}

    def unscripted(self, req: LoggedRequest) -> Step:
        user = (req.body or {}).get("messages", [{}])[0].get("content", "") if isinstance(req.body, dict) else ""
        found = _SUBJECT[self.agent].search(user)
        reply = self.replies.get("review" if "(kind: review)" in user else found.group(1) if found else "")
        return reply_json(reply)(req) if reply is not None else super().unscripted(req)


@pytest.mark.parametrize("agent_name", AGENTS)
def test_every_request_of_a_run_sends_the_same_block_and_later_ones_read_it_from_the_cache(book, agent_name, monkeypatch):
    forget_cache()
    server = _Offline().start()
    route_sdk_to(monkeypatch, server.url, batch_above=100000)
    # A tier whose cacheable minimum (1,024 tokens) the blocks reach on any book: what is tested is how
    # the block travels; whether it reaches the small tier's 4,096 is the bench's to report.
    monkeypatch.setenv("CRM_MODEL_SMALL", SONNET)
    agent, module = get_agent(agent_name), builder(agent_name)
    with clock.frozen_at(AS_OF):
        with unit_of_work() as s:
            prepared = module.prepare(s, as_of=AS_OF)
        with unit_of_work(readonly=True) as s:
            built = module.build(s, module.subjects(s, as_of=AS_OF), as_of=AS_OF, prepared=prepared)
    server.agent = agent_name
    server.replies = {("review" if isinstance(c, Review) else str(c.contact_id if agent_name == "enrichment" else c.deal_id)):
                      offline_provider.decide(agent, c).model_dump(mode="json") for c in built}
    envelopes = []
    try:
        with clock.frozen_at(AS_OF):
            run_agent(agent_name, provider="anthropic", on_envelope=envelopes.append)
    finally:
        server.stop()
    sent = [e for e in envelopes if e.provider == "anthropic" and e.model == SONNET]
    requests = [r for r in server.message_requests if r.body.get("model") == SONNET]
    assert len(sent) == len(requests) >= 10 and not any(e.failed for e in sent)
    systems = {tuple(b["text"] for b in r.body["system"]) for r in requests}
    assert len(systems) == 1
    [(_, block)] = systems
    assert block == render_book(built[0].book) and block.startswith("About ")
    first, *later = sent
    assert first.usage.cache_write_tokens > 1024 and first.usage.cache_read_tokens == 0
    assert all(e.usage.cache_read_tokens == first.usage.cache_write_tokens for e in later)
    assert all(e.usage.input_tokens < e.usage.cache_read_tokens for e in later)  # only the subject is paid in full
    # What was decided is what the offline reasoner decides: the block changed nothing but the price.
    with unit_of_work(readonly=True) as s:
        rows = s.scalars(select(Decision).where(Decision.agent == agent_name, Decision.provider == "anthropic")).all()
    assert rows and all(r.context_snapshot["book"] == built[0].book.stamp for r in rows
                        if r.subject_type != "pipeline")


# -- a small book, on each back-end: no learned weights yet ------------------------------------------------------
def test_on_a_book_too_small_to_learn_from_the_pipeline_block_says_so_and_both_blocks_hold_still(store):
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
    for agent_name in AGENTS:
        built = contexts(agent_name)
        assert built and len({c.book.digest for c in built}) == 1
        assert contexts(agent_name, as_of=AS_OF + timedelta(hours=1))[0].book == built[0].book
    text = _text(contexts("pipeline")[0].book)
    assert "No learned deal-risk model yet" in text and "What the early guess weighs" in text
    assert "Red at a chance of loss of 60% or more, amber at 45% or more" in text
    assert "the chance of loss the early guess gives it" in text
