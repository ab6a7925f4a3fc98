"""Privacy routing, the budget fallback, the local model and the offline reasoner, end to end.

Sensitive records must never reach the remote provider: the fake Anthropic server's request log
is the proof. The local model is the real `ollama` client against a fake /api/chat.
"""
from __future__ import annotations

import pytest

from agents.errors import ConfigError
from agents.llm import OFFLINE_MODEL, default_providers, model_for, reason
from crm_core.errors import UserError
from crm_core.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropicServer, fake_anthropic, reply_json  # noqa: F401
from tests.fakes.ollama_server import FakeOllamaServer, chat_json, chat_text, fake_ollama, hang, ollama_error  # noqa: F401
from tests.fakes.scoring_agent import AGENT, ScoringContext, good_reply

SECRET = "diagnosed with a condition, do not share"


def settings_for(anthropic_server: FakeAnthropicServer | None = None, ollama_server: FakeOllamaServer | None = None, **kw) -> Settings:
    values = dict(
        ANTHROPIC_API_KEY="sk-test" if anthropic_server else None,
        ANTHROPIC_BASE_URL=anthropic_server.url if anthropic_server else None,
        ollama_host=ollama_server.url if ollama_server else None,
        ollama_model="llama-test:8b",
        llm_timeout_s=5.0,
        llm_max_retries=2,
        llm_provider=None,
    )
    values.update(kw)
    return Settings(**values)


def sensitive_ctx() -> ScoringContext:
    from agents.base import UntrustedText

    return ScoringContext(
        contact_id=11, name="Private Person", email="pp@example.org", page_views=9, sensitive=True,
        notes=[UntrustedText(label="note", text=SECRET)],
    )


def test_sensitive_record_goes_to_the_local_model_never_to_anthropic(fake_anthropic, fake_ollama):
    fake_ollama.script(chat_json(good_reply()))
    env = reason(AGENT, sensitive_ctx(), provider="anthropic", settings=settings_for(fake_anthropic, fake_ollama))

    assert fake_anthropic.requests == []
    assert not env.failed, env.error
    assert env.provider == "ollama" and env.is_local and env.model == "llama-test:8b"
    assert env.usage.cost_usd == 0 and env.usage.input_tokens == 300
    [chat] = fake_ollama.chat_requests
    assert SECRET in chat.text()
    assert chat.body["format"]["properties"]["next_action"]["enum"] == [
        "route_to_senior_rep", "add_to_nurture", "mark_low_priority"
    ]
    assert any("sensitive record" in n for n in env.notes)


def test_sensitive_record_without_a_local_model_is_reasoned_offline(fake_anthropic):
    env = reason(AGENT, sensitive_ctx(), provider="anthropic", settings=settings_for(fake_anthropic))

    assert fake_anthropic.requests == []
    assert env.provider == "offline" and env.model == OFFLINE_MODEL and env.is_local
    assert not env.failed and env.proposals


def test_sensitive_record_by_default_provider_stays_local(fake_anthropic):
    env = reason(AGENT, sensitive_ctx(), settings=settings_for(fake_anthropic))  # key set -> anthropic by default
    assert fake_anthropic.requests == [] and env.provider == "offline"


def test_agent_that_cannot_tell_sensitivity_keeps_the_record_local(fake_anthropic, monkeypatch):
    def broken(ctx):
        raise RuntimeError("flag missing")

    monkeypatch.setattr(AGENT, "is_sensitive", broken)
    env = reason(AGENT, sensitive_ctx(), settings=settings_for(fake_anthropic))
    assert fake_anthropic.requests == [] and env.provider == "offline"


def test_spent_budget_falls_back_to_offline_with_a_note(fake_anthropic):
    ctx = ScoringContext(contact_id=3, name="A", email="a@x.example", page_views=2)
    env = reason(AGENT, ctx, settings=settings_for(fake_anthropic), budget_exhausted=True)

    assert fake_anthropic.requests == []
    assert env.provider == "offline" and not env.failed
    assert "daily budget spent: offline reasoner used" in env.notes


def test_offline_reasoner_decides_with_zero_usage():
    ctx = ScoringContext(contact_id=3, name="A", email="a@x.example", page_views=3)
    env = reason(AGENT, ctx, provider="offline", settings=settings_for())

    assert not env.failed and env.provider == "offline" and env.model == OFFLINE_MODEL
    assert env.usage.input_tokens == 0 and env.usage.cost_usd == 0
    assert env.decision["score"] == 44 and env.decision["next_action"] == "add_to_nurture"
    [p] = env.proposals
    assert p.confidence_factors["offline_agrees"] is None  # nothing to compare with itself


def test_no_key_and_no_provider_means_offline(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("CRM_LLM_PROVIDER", raising=False)
    ctx = ScoringContext(contact_id=3, name="A", email="a@x.example")
    env = reason(AGENT, ctx, settings=Settings(ANTHROPIC_API_KEY=None, llm_provider=None))
    assert env.provider == "offline"


def test_offline_reasoner_failure_is_a_failed_envelope(monkeypatch):
    def broken(ctx):
        raise ZeroDivisionError("no history")

    monkeypatch.setattr(AGENT, "offline_decide", broken)
    env = reason(AGENT, ScoringContext(contact_id=3, name="A", email="a@x.example"), provider="offline", settings=settings_for())
    assert env.failed and env.proposals == () and "ZeroDivisionError" in env.error


def test_unknown_provider_is_a_config_error_which_every_user_error_handler_catches():
    with pytest.raises(ConfigError, match="provider 'gpt' is not one of") as raised:
        reason(AGENT, ScoringContext(contact_id=3, name="A", email="a@x.example"), provider="gpt", settings=settings_for())
    assert isinstance(raised.value, UserError) and isinstance(raised.value, ValueError)


def test_ollama_requested_without_a_host_falls_back_to_offline():
    env = reason(AGENT, ScoringContext(contact_id=3, name="A", email="a@x.example"), provider="ollama", settings=settings_for())
    assert env.provider == "offline" and any("CRM_OLLAMA_HOST" in n for n in env.notes)


def test_model_tiers_come_from_settings():
    s = Settings(model_small="s-model", model_mid="m-model", model_large="l-model").llm()
    assert [model_for(t, s) for t in ("small", "mid", "large")] == ["s-model", "m-model", "l-model"]
    with pytest.raises(ConfigError, match="tier 'huge'"):
        model_for("huge", s)  # type: ignore[arg-type]


# -- the local model's failure modes --------------------------------------------------------


def ctx_plain() -> ScoringContext:
    return ScoringContext(contact_id=5, name="B", email="b@x.example", page_views=9)


def test_ollama_schema_breaking_reply_fails(fake_ollama):
    fake_ollama.script(chat_json({"score": 500, "next_action": "send_quote", "confidence": 2, "reasoning": "x"}))
    env = reason(AGENT, ctx_plain(), provider="ollama", settings=settings_for(ollama_server=fake_ollama))
    assert env.failed and env.proposals == () and "ollama reply breaks the ScoringDecision schema" in env.error


def test_ollama_server_error_then_success_is_retried(fake_ollama):
    fake_ollama.script(ollama_error(503, "loading model"), chat_json(good_reply()))
    env = reason(AGENT, ctx_plain(), provider="ollama", settings=settings_for(ollama_server=fake_ollama))
    assert not env.failed, env.error
    assert len(fake_ollama.chat_requests) == 2


def test_ollama_errors_fail_after_retries(fake_ollama):
    fake_ollama.always(ollama_error(500, "out of memory"))
    env = reason(AGENT, ctx_plain(), provider="ollama", settings=settings_for(ollama_server=fake_ollama, llm_max_retries=1))
    assert env.failed and "HTTP 500" in env.error and "out of memory" in env.error
    assert len(fake_ollama.chat_requests) == 2


def test_ollama_hang_past_the_timeout_fails(fake_ollama):
    fake_ollama.always(hang(30))
    env = reason(
        AGENT, ctx_plain(), provider="ollama",
        settings=settings_for(ollama_server=fake_ollama, llm_timeout_s=0.3, llm_max_retries=0),
    )
    assert env.failed and env.proposals == () and "no reply" in env.error


def test_ollama_unreachable_fails_clearly():
    server = FakeOllamaServer()
    url = server.url
    server.stop()  # the port is closed again: nothing listens there
    env = reason(AGENT, ctx_plain(), provider="ollama", settings=settings_for(ollama_host=url, llm_max_retries=0))
    assert env.failed and "could not reach" in env.error


def test_ollama_reply_cut_off_fails(fake_ollama):
    fake_ollama.script(chat_text('{"score": 7', done_reason="length"))
    env = reason(AGENT, ctx_plain(), provider="ollama", settings=settings_for(ollama_server=fake_ollama))
    assert env.failed and "cut off" in env.error


def test_confidence_details_survive_serialising_the_envelope():
    from agents.base import DecisionEnvelope

    ctx = ScoringContext(contact_id=3, name="A", email="a@x.example", page_views=9, known_fields=2)
    env = reason(AGENT, ctx, provider="offline", settings=settings_for(), approval_stats={"create_task": (3, 4)})
    again = DecisionEnvelope.model_validate_json(env.model_dump_json())

    [p] = again.proposals
    assert p.confidence == env.proposals[0].confidence < 0.7
    assert p.decision["model_confidence"] == 0.7
    assert p.decision["confidence_factors"]["completeness"] == 0.5
    assert p.decision["confidence_factors"]["approval_action_type"] == "create_task"  # the weakest record
    assert p.decision["score"] == env.decision["score"]


def test_client_factory_supplies_the_client_but_cannot_override_privacy(fake_anthropic, fake_ollama):
    import anthropic
    import ollama

    calls = []
    clients = {
        "anthropic": anthropic.Anthropic(api_key="sk-factory", base_url=fake_anthropic.url, max_retries=0),
        "ollama": ollama.Client(host=fake_ollama.url),
    }

    def factory(name, settings):
        calls.append(name)
        return clients[name]

    fake_anthropic.script(reply_json(good_reply()))
    fake_ollama.script(chat_json(good_reply()))
    s = settings_for(fake_anthropic, fake_ollama).llm()
    providers = default_providers(s, client_factory=factory)
    public = reason(AGENT, ctx_plain(), provider="anthropic", settings=s, providers=providers)
    private = reason(AGENT, sensitive_ctx(), provider="anthropic", settings=s, providers=providers)

    assert calls == ["anthropic", "ollama"]
    assert public.provider == "anthropic" and private.provider == "ollama"
    [req] = fake_anthropic.message_requests
    assert req.headers["authorization"] == "Bearer sk-factory" and SECRET not in req.text()
    for client in clients.values():
        client.close()
