"""Paying for changes, not for events: an unchanged fingerprint reuses the last decision without a call.

Runs go through the real `anthropic` SDK against the local fake Messages API; the fake answers
each lead-scoring request with the offline reasoner's decision for the contact the request names,
and the tests count the requests it received.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from agents.lead_scoring import Context as LeadContext
from agents.lead_scoring import Engagement
from agents.llm import offline_provider
from agents.llm.fingerprint import fingerprint
from agents.pipeline import Context as DealContext
from agents.pipeline import CurrentFlag, RiskEstimate
from agents.registry import get_agent
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import AuditEntry, Decision
from orchestration.registry import builder
from orchestration.runner import reused_in, run_agent
from tests.fakes import LoggedRequest, Step
from tests.fakes.anthropic_server import FakeAnthropicServer, error, fake_anthropic, reply_json, route_sdk_to  # noqa: F401  (fixture)

AS_OF = datetime(2026, 6, 1, 9, 0)
_CONTACT = re.compile(r'\\?"contact_id\\?":\s*(\d+)')


def _offline_replies(as_of: datetime) -> dict[int, dict]:
    agent, module = get_agent("lead_scoring"), builder("lead_scoring")
    with unit_of_work() as s:
        prepared = module.prepare(s, as_of=as_of)
    with unit_of_work(readonly=True) as s:
        contexts = module.build(s, module.subjects(s, as_of=as_of), as_of=as_of, prepared=prepared)
    return {c.contact_id: offline_provider.decide(agent, c).model_dump(mode="json") for c in contexts}


class _Answering(FakeAnthropicServer):
    """Answers every request with the offline decision for the contact its user message names."""

    replies: dict[int, dict] = {}
    fail_once: set[int] = set()  # contacts whose next request gets a 500 (a batch item errors)

    def unscripted(self, req: LoggedRequest) -> Step:
        body = req.body if isinstance(req.body, dict) else {}
        found = _CONTACT.search(json.dumps(body.get("messages", [])))
        contact = int(found.group(1)) if found else None
        reply = self.replies.get(contact) if contact is not None else None
        if reply is None:
            return super().unscripted(req)
        if contact in self.fail_once:
            self.fail_once.discard(contact)
            return error(500, "fake overloaded item")(req)
        return reply_json(reply)(req)


@pytest.fixture
def answering(store, monkeypatch):
    server = _Answering().start()
    route_sdk_to(monkeypatch, server.url)
    with clock.frozen_at(AS_OF):
        seed_demo(as_of=AS_OF, scale=0.05)
    try:
        yield server
    finally:
        server.stop()


def test_a_repeat_run_with_no_new_data_calls_the_model_for_almost_no_one(answering):
    answering.replies = _offline_replies(AS_OF)
    first = run_agent("lead_scoring", provider="anthropic", as_of=AS_OF, skip_unchanged=True)
    calls_first = len(answering.message_requests)
    decided = [o for o in first.outcomes if not o.skipped and not o.failed]
    assert calls_first >= 10 and len(decided) >= 10

    # Ten minutes later, nothing new: engagement has decayed a little, the previous score is now
    # set, the clock moved. None of that is a reason to ask again.
    later = AS_OF + timedelta(minutes=10)
    answering.replies = _offline_replies(later)
    again = run_agent("lead_scoring", provider="anthropic", as_of=later, skip_unchanged=True)
    calls_again = len(answering.message_requests) - calls_first
    skipped = [o for o in again.outcomes if o.skipped]
    assert len(again.outcomes) >= len(decided)
    assert len(skipped) >= 0.95 * len(again.outcomes)
    assert calls_again <= 0.05 * len(again.outcomes)
    assert "unchanged since the last decision" in again.summary()
    with unit_of_work(readonly=True) as s:
        # One audit row for the run, not one per skipped lead; its details name each lead's standing decision.
        [reused] = s.scalars(select(AuditEntry).where(AuditEntry.event == "decision.reused")).all()
        assert reused.details["count"] == len(skipped) and "nothing it depends on changed" in reused.details["reason"]
        assert {reused_in(reused.details, "contact", int(o.subject_key.rsplit(":", 1)[1])) for o in skipped} == \
            {o.reused_decision_id for o in skipped}
        # No new decision rows for the skipped subjects.
        assert s.scalar(select(func.count()).select_from(Decision).where(Decision.agent == "lead_scoring")) == \
            len(first.decision_ids) + len(again.decision_ids)


def _lead(**engagement) -> LeadContext:
    return LeadContext(contact_id=7, as_of=AS_OF, engagement=Engagement(**engagement))


def test_decaying_figures_and_the_clock_leave_the_fingerprint_alone_but_new_activity_and_thresholds_do_not():
    base = _lead(web_recent=6.1892, days_since_last_activity=0.486, page_views_7d=3)
    drifted = _lead(web_recent=6.1637, days_since_last_activity=0.528, page_views_7d=3).model_copy(
        update={"as_of": AS_OF + timedelta(hours=1)})
    assert fingerprint("lead_scoring", base) == fingerprint("lead_scoring", drifted)
    # A new page view is new data.
    assert fingerprint("lead_scoring", base) != fingerprint("lead_scoring", _lead(
        web_recent=6.1892, days_since_last_activity=0.486, page_views_7d=4))
    # Going quiet past the 30-day inactivity rule is a time-driven change the decision turns on.
    assert fingerprint("lead_scoring", _lead(days_since_last_activity=29.5)) != \
        fingerprint("lead_scoring", _lead(days_since_last_activity=30.5))
    # Another contact with the same facts is another subject.
    assert fingerprint("lead_scoring", base) != fingerprint("lead_scoring", base.model_copy(update={"contact_id": 8}))


def _deal(days_in_stage: float, current: CurrentFlag = CurrentFlag()) -> DealContext:
    estimate = RiskEstimate(kind="prior", loss_probability=0.3, red_min=0.6, amber_min=0.35)
    return DealContext(deal_id=3, as_of=AS_OF, name="Acme renewal", stage="Proposal", days_in_stage=days_in_stage,
                       estimate=estimate, current=current)


def test_a_deal_aging_past_a_threshold_changes_the_fingerprint_its_own_flag_does_not():
    assert fingerprint("pipeline", _deal(12.1)) == fingerprint("pipeline", _deal(12.9))
    assert fingerprint("pipeline", _deal(13.9)) != fingerprint("pipeline", _deal(14.1))
    flagged = CurrentFlag(risk="amber", reason="quiet for two weeks", action="nudge", updated_at=AS_OF)
    assert fingerprint("pipeline", _deal(12.1)) == fingerprint("pipeline", _deal(12.1, flagged))
    snoozed = flagged.model_copy(update={"snoozed_until": AS_OF.date() + timedelta(days=7), "snoozed_by": "Morgan"})
    assert fingerprint("pipeline", _deal(12.1)) != fingerprint("pipeline", _deal(12.1, snoozed))


# -- prompt caching ----------------------------------------------------------------------------
def _call(server: FakeAnthropicServer, agent_name: str, model: str, user: str):
    import anthropic

    from agents.llm import anthropic_provider
    from agents.llm.reasoning import system_prompt

    agent = get_agent(agent_name)
    server.script(reply_json({"ok": True}))
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=server.url, max_retries=0)
    return anthropic_provider.call(client, model=model, system=system_prompt(agent), user=user,
                                   decision_model=agent.Decision)


def test_a_prefix_above_the_minimum_is_written_once_then_read_and_one_below_is_never_cached(fake_anthropic):
    # follow-up runs on the mid tier (1,024-token minimum): instructions and schema reach it.
    first = _call(fake_anthropic, "follow_up", "claude-sonnet-5-5", "contact 1: " + "x" * 400)
    second = _call(fake_anthropic, "follow_up", "claude-sonnet-5-5", "contact 2: " + "y" * 400)
    [block] = fake_anthropic.message_requests[-1].body["system"]
    assert block["cache_control"] == {"type": "ephemeral"} and "JSON Schema" in block["text"]
    assert first.usage.cache_write_tokens >= 1024 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens and second.usage.cache_write_tokens == 0
    assert second.usage.input_tokens < second.usage.cache_read_tokens  # only the per-subject part is paid in full
    # Lead scoring on the small tier cannot reach its 4,096-token minimum: the schema is not
    # added (it would only cost), and the API reports no cache use at all, however often it is sent.
    for n in range(2):
        reply = _call(fake_anthropic, "lead_scoring", "claude-haiku-5-5", f"contact {n}")
        assert reply.usage.cache_read_tokens == reply.usage.cache_write_tokens == 0
    [block] = fake_anthropic.message_requests[-1].body["system"]
    assert "JSON Schema" not in block["text"]


# -- the Message Batches API -----------------------------------------------------------------------
def test_a_bulk_run_goes_through_a_batch_at_half_price_with_the_synchronous_decisions(answering, monkeypatch):
    from agents.llm.pricing import DEFAULT_PRICES, cost_usd

    answering.replies = _offline_replies(AS_OF)
    monkeypatch.setenv("CRM_LLM_BATCH_POLL_S", "0.01")
    sync: dict[str, object] = {}
    monkeypatch.setenv("CRM_LLM_BATCH_ABOVE", "100000")
    first = run_agent("lead_scoring", provider="anthropic", as_of=AS_OF,
                      on_envelope=lambda e: sync.__setitem__(e.context_snapshot["contact_id"], e))
    assert not any(r.path.startswith("/v1/messages/batches") for r in answering.requests)
    sync_calls = len(answering.message_requests)
    assert sync_calls >= 10

    monkeypatch.setenv("CRM_LLM_BATCH_ABOVE", "5")
    flaky = sorted(answering.replies)[0]
    answering.fail_once = {flaky}
    batched: dict[int, object] = {}
    second = run_agent("lead_scoring", provider="anthropic", as_of=AS_OF,
                       on_envelope=lambda e: batched.__setitem__(e.context_snapshot["contact_id"], e))
    later = answering.requests[sync_calls:] if len(answering.requests) >= sync_calls else []
    posts = [r for r in answering.requests if r.path == "/v1/messages/batches" and r.method == "POST"]
    assert len(posts) == 1 and len(posts[0].body["requests"]) == sync_calls
    # Each item carries the same system blocks as the synchronous requests: the book block included.
    item_systems = {json.dumps(i["params"]["system"]) for i in posts[0].body["requests"]}
    sync_systems = {json.dumps(r.body["system"]) for r in answering.message_requests[:sync_calls]}
    assert len(item_systems) == 1 and item_systems == sync_systems
    assert "About this team's book of leads" in json.loads(item_systems.pop())[-1]["text"]
    singles = [r for r in later if r.path == "/v1/messages"]
    assert len(singles) == 1  # the errored item, retried on its own
    assert _CONTACT.search(json.dumps(singles[0].body["messages"])).group(1) == str(flaky)
    assert not second.failed and set(batched) == set(sync)
    for contact, env in batched.items():
        assert env.decision == sync[contact].decision  # same decisions as the synchronous path
        full, _ = cost_usd(env.model, env.usage, DEFAULT_PRICES)
        if contact == flaky:
            assert env.usage.cost_usd == pytest.approx(full)
        else:
            assert env.usage.cost_usd == pytest.approx(full * 0.5) and env.usage.cost_usd > 0
            assert any("Message Batches API" in n for n in env.notes)
    assert len(first.outcomes) == len(second.outcomes)
