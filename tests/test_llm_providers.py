"""One provider interface behind reason(): the real three, and the test doubles of agents.llm.testing.

No socket here: FixedProvider and FunctionProvider stand in for the remote model, and what
reason() does around them (routing, validation, checks, the breaker, prices, the offline
comparison) is the same code a real provider's reply goes through.
"""
from __future__ import annotations

import pytest

from agents.base import Usage
from agents.llm import OFFLINE_MODEL, SYSTEM_DATA_RULE, LLMSettings, default_providers, reason
from agents.llm.anthropic_provider import AnthropicProvider
from agents.llm.offline_provider import OfflineProvider
from agents.llm.ollama_provider import OllamaProvider
from agents.llm.pricing import Price
from agents.llm.provider import ModelRequest, Provider
from agents.llm.reply import ProviderFailure
from agents.llm.testing import FixedProvider, FunctionProvider
from tests.fakes.scoring_agent import AGENT, ScoringContext, ScoringDecision, good_reply

SETTINGS = LLMSettings(anthropic_api_key="sk-never-used", timeout_s=7.0, max_retries=1, breaker_failures=2)


def ctx(**kw) -> ScoringContext:
    return ScoringContext(**{"contact_id": 5, "name": "Ada", "email": "ada@x.example", "page_views": 9, **kw})


def test_the_real_providers_and_the_doubles_share_one_interface():
    real = default_providers(SETTINGS)
    assert {name: type(p) for name, p in real.items()} == {
        "offline": OfflineProvider, "anthropic": AnthropicProvider, "ollama": OllamaProvider}
    for provider in [*real.values(), FixedProvider(good_reply()), FunctionProvider(lambda r: good_reply())]:
        assert isinstance(provider, Provider)
    assert [(p.is_local, p.is_model) for p in real.values()] == [(True, False), (False, True), (True, True)]
    request = ModelRequest(agent=AGENT, ctx=ctx())
    assert [p.model_for(request) for p in real.values()] == [OFFLINE_MODEL, SETTINGS.model_small, SETTINGS.ollama_model]


def test_a_fixed_reply_goes_through_validation_proposals_and_the_offline_comparison():
    stand_in = FixedProvider(ScoringDecision(**good_reply(score=30, next_action="mark_low_priority")))
    env = reason(AGENT, ctx(), provider="anthropic", settings=SETTINGS, providers={"anthropic": stand_in})

    assert not env.failed and env.provider == "anthropic" and env.model == "test-model"
    assert env.is_local and env.usage.cost_usd == 0  # the double is local unless told otherwise
    [proposal] = env.proposals
    assert [a.type for a in proposal.actions] == ["update_lead_score"]
    # 9 page views: the offline reasoner routes to a senior rep, so it disagrees with this reply.
    assert proposal.confidence_factors["offline_agrees"] is False
    assert len(stand_in.requests) == 1


def test_a_function_provider_sees_the_prompt_and_the_call_limits():
    seen = []

    def answer(request: ModelRequest) -> dict:
        seen.append((request.system, request.user, request.decision_model, request.tier))
        return good_reply()

    stand_in = FunctionProvider(answer)
    env = reason(AGENT, ctx(), provider="anthropic", settings=SETTINGS, providers={"anthropic": stand_in})

    assert not env.failed
    [(system, user, decision_model, tier)] = seen
    assert system.endswith(SYSTEM_DATA_RULE) and "Contact #5 Ada" in user
    assert decision_model is ScoringDecision and tier == "small"
    [limits] = stand_in.limits
    assert (limits.timeout_s, limits.max_retries) == (7.0, 1)


def test_a_sensitive_context_never_reaches_the_remote_stand_in():
    stand_in = FunctionProvider(lambda request: pytest.fail("a sensitive record reached the remote provider"))
    env = reason(AGENT, ctx(sensitive=True), provider="anthropic", settings=SETTINGS, providers={"anthropic": stand_in})

    assert env.provider == "offline" and env.model == OFFLINE_MODEL and not env.failed
    assert stand_in.requests == []


def test_a_reply_outside_the_schema_fails_with_no_proposals():
    stand_in = FixedProvider({**good_reply(), "score": 140, "extra": "x"})
    env = reason(AGENT, ctx(), provider="anthropic", settings=SETTINGS, providers={"anthropic": stand_in})

    assert env.failed and env.proposals == ()
    assert env.error.startswith("anthropic reply breaks the ScoringDecision schema")


def test_an_endpoint_that_keeps_failing_opens_the_breaker_and_the_offline_reasoner_takes_over():
    def down(request: ModelRequest) -> dict:
        raise ProviderFailure("anthropic: no reply within 7s", outage=True, attempts=1)

    stand_in = FunctionProvider(down)
    providers = {"anthropic": stand_in}
    first, second, third = (reason(AGENT, ctx(), provider="anthropic", settings=SETTINGS, providers=providers)
                            for _ in range(3))

    assert first.failed and second.failed and "stopped answering" in second.notes[-1]
    assert third.provider == "offline" and not third.failed and len(stand_in.requests) == 2


def test_a_remote_stand_in_is_priced_from_the_settings_value():
    prices = {"priced-model": Price(input=2.0, output=10.0, cache_read=0.2, cache_write=2.5)}
    settings = SETTINGS.model_copy(update={"prices": prices})
    stand_in = FixedProvider(good_reply(), is_local=False, model="priced-model",
                             usage=Usage(input_tokens=1_000_000, output_tokens=100_000))
    env = reason(AGENT, ctx(), provider="anthropic", settings=settings, providers={"anthropic": stand_in})

    assert not env.is_local and env.usage.cost_usd == pytest.approx(2.0 + 1.0)


def test_the_offline_reasoner_is_a_provider_too():
    # Put a double in its place: the comparison that reason() makes asks whatever stands at "offline".
    agreeing = FixedProvider(ScoringDecision(**good_reply()))
    env = reason(AGENT, ctx(page_views=0), provider="anthropic", settings=SETTINGS,
                 providers={"anthropic": FixedProvider(good_reply()), "offline": agreeing})
    assert env.proposals[0].confidence_factors["offline_agrees"] is True and len(agreeing.requests) == 1

    plain = reason(AGENT, ctx(), provider="offline", settings=SETTINGS)
    assert plain.provider == "offline" and plain.model == OFFLINE_MODEL and plain.is_local and not plain.failed


def test_without_settings_nothing_leaves_the_machine():
    env = reason(AGENT, ctx())
    assert env.provider == "offline" and not env.failed
