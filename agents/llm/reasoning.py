"""reason(): the one door every agent decision goes through, whatever reasons behind it.

Steps, in order (see agents/llm/__init__.py for the contract):
1. route: requested provider -> privacy (sensitive never leaves) -> daily budget -> availability;
2. decide: the offline reasoner, or the model with the agent's prompt and its Decision schema
   enforced, the reply validated again against the pydantic model (unknown keys rejected). The
   model is the tier's the context needs (`routing.tier_of`: the agent's `tier_for(ctx)`, else its
   class tier); the context's book block, when it has one (agents.llm.book), goes after the
   instructions in the cached system block, the context itself in the user message;
3. propose: `agent.proposals(ctx, decision)`: actions come from agent code, never from the reply;
4. assess: each proposal's confidence combined with evidence (agents.llm.confidence).
Any failure on the way returns a failed envelope with no proposals: nothing half-made ever
reaches oversight as executable.

Whatever answers is a provider (agents/llm/provider.py): `providers=` maps the route names to
them, the defaults built from `settings` (an `LLMSettings` value; nothing here reads the
environment). What a provider says of itself (`is_local`, `is_model`) decides the price and the
guards below, not its name.

Guards around the model call (agents/llm/breaker.py, agents/llm/output_checks.py):
- privacy: the store-side screen's verdict (`privacy=`) keeps a context that carries any
  sensitive record off remote models, and its notes name the records and why;
- a circuit breaker per provider and model: while it is open the decision is made by the offline
  reasoner and says so; after the cool-down one probe attempt (no retries) tests the endpoint;
- a deadline (`deadline=`, a `time.monotonic()` value): no call starts after it, and a call's
  timeout and retries are cut to what is left;
- a reply whose fields contradict each other is rejected; one that moves further than the prompt
  allows is kept with `review_reasons` in each proposal's decision, which oversight queues.
"""
from __future__ import annotations

import math
import time
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from agents.base import DecisionEnvelope, Proposal, Usage
from agents.llm.anthropic_provider import AnthropicProvider
from agents.llm.book import context_snapshot
from agents.llm.breaker import BREAKERS, breaker_key
from agents.llm.confidence import ApprovalStats, AssessedProposal, combine_confidence, weakest_approval_rate
from agents.llm.fingerprint import fingerprint
from agents.llm.offline_provider import OFFLINE_MODEL, OfflineProvider
from agents.llm.ollama_provider import OllamaProvider
from agents.llm.output_checks import reply_problems
from agents.llm.pricing import cost_usd
from agents.llm.privacy import PrivacyScreen
from agents.llm.provider import CallLimits, ClientFactory, ModelRequest, Provider, Providers, system_prompt
from agents.llm.reply import ProviderFailure
from agents.llm.routing import Route, choose_route
from agents.llm.settings import LLMSettings

__all__ = ["OFFLINE_MODEL", "CallLimits", "call_limits", "default_providers", "reason", "system_prompt",
           "validate_decision"]


class SupportsLLMSettings(Protocol):
    """Anything that can give the reasoning its settings: the store's `Settings` does, with `.llm()`."""

    def llm(self) -> LLMSettings: ...


def default_providers(settings: LLMSettings, client_factory: ClientFactory | None = None) -> dict[str, Provider]:
    """The three real providers by route name; `client_factory` supplies the model providers' clients."""
    return {
        "offline": OfflineProvider(),
        "anthropic": AnthropicProvider(settings, client_factory),
        "ollama": OllamaProvider(settings, client_factory),
    }


def _summarise(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate_decision(decision_model: type[BaseModel], payload: Any) -> BaseModel:
    """The reply as the agent's Decision; keys the schema does not name are rejected, not ignored."""
    return decision_model.model_validate(payload, extra="forbid")


def _offline_agreement(
    offline: Provider, request: ModelRequest, decision: BaseModel, proposals: list[Proposal], notes: list[str]
) -> list[bool | None]:
    """Per proposal: does the offline reasoner, on the same context, reach the same actions?"""
    agent, ctx = request.agent, request.ctx
    try:
        offline_decision = validate_decision(agent.Decision, offline.complete(request, None).payload)
    except Exception as exc:  # an offline reasoner that cannot decide is no evidence either way
        notes.append(f"offline reasoner could not decide for comparison: {type(exc).__name__}: {exc}")
        return [None] * len(proposals)
    agrees = getattr(agent, "agrees", None)
    if callable(agrees):
        verdict = bool(agrees(decision, offline_decision))
        return [verdict] * len(proposals)
    try:
        offline_props = agent.proposals(ctx, offline_decision)
    except Exception as exc:
        notes.append(f"offline proposals failed for comparison: {type(exc).__name__}: {exc}")
        return [None] * len(proposals)
    by_subject: dict[tuple[str, int | None], set[str]] = {}
    for p in offline_props:
        by_subject.setdefault((p.subject_type, p.subject_id), set()).update(a.type for a in p.actions)
    return [
        by_subject.get((p.subject_type, p.subject_id)) == {a.type for a in p.actions} for p in proposals
    ]


def _completeness(agent: Any, ctx: BaseModel, notes: list[str]) -> float:
    hook = getattr(agent, "completeness", None)
    if not callable(hook):
        return 1.0
    try:
        return float(hook(ctx))
    except Exception as exc:
        notes.append(f"completeness unknown ({type(exc).__name__}: {exc}): counted as 0.5")
        return 0.5


def _assess(
    proposals: list[Proposal],
    *,
    whole_decision: dict[str, Any],
    agreements: list[bool | None],
    completeness: float,
    approval_stats: ApprovalStats | None,
) -> tuple[AssessedProposal, ...]:
    """Each proposal with its combined confidence.

    The model's figure and the factors are kept twice: as typed fields of AssessedProposal, and
    as `model_confidence` / `confidence_factors` keys of `proposal.decision`, because a plain
    `Proposal` (the envelope's declared type) serialises without the subclass fields and
    oversight reads them from there. A proposal without its own decision slice gets the whole one.
    """
    assessed = []
    for proposal, agrees in zip(proposals, agreements, strict=True):
        kind, rate = weakest_approval_rate([a.type for a in proposal.actions], approval_stats)
        combined, factors = combine_confidence(
            proposal.confidence, completeness=completeness, offline_agrees=agrees, approval_rate=rate
        )
        factors["approval_action_type"] = kind
        fields = {name: getattr(proposal, name) for name in Proposal.model_fields}
        decision_json = {**(proposal.decision or whole_decision), "model_confidence": proposal.confidence,
                         "confidence_factors": factors}
        fields.update(
            confidence=combined, model_confidence=proposal.confidence, confidence_factors=factors, decision=decision_json
        )
        assessed.append(AssessedProposal(**fields))
    return tuple(assessed)


def call_limits(settings: LLMSettings, *, deadline: float | None, probe: bool) -> CallLimits | None:
    """None when the deadline leaves no time for a call at all."""
    timeout, retries = settings.timeout_s, 0 if probe else settings.max_retries
    if deadline is None:
        return CallLimits(timeout_s=timeout, max_retries=retries)
    left = deadline - time.monotonic()
    if left < 1.0:
        return None
    timeout = min(timeout, left)
    retries = min(retries, max(0, math.floor(left / timeout) - 1))
    return CallLimits(timeout_s=timeout, max_retries=retries)


def _priced(
    provider: Provider, model: str, requested_model: str, usage: Usage, notes: list[str], settings: LLMSettings
) -> Usage:
    """Usage with its cost. The API may answer with a dated model id: then the configured name prices it."""
    if provider.is_local:
        return usage  # local models cost nothing
    cost, known = cost_usd(model, usage, settings.prices)
    if not known:
        cost, known = cost_usd(requested_model, usage, settings.prices)
    if not known:
        notes.append(f"no price configured for {model} (CRM_LLM_PRICES): charged at the highest known price")
    return usage.model_copy(update={"cost_usd": cost})


def _guard(
    route: Route, provider: Provider, request: ModelRequest, settings: LLMSettings, deadline: float | None,
    notes: list[str],
) -> tuple[Route, CallLimits | None, bool]:
    """The route after the breaker and the deadline, with the limits of the call it allows.

    Only a model is guarded: the offline reasoner is the agent's own code, always there.
    """
    if not provider.is_model:
        return route, None, False
    model = provider.model_for(request)
    admission = BREAKERS.admit(breaker_key(route.provider, model), threshold=settings.breaker_failures,
                               cooldown_s=settings.breaker_cooldown_s)
    offline = route.model_copy(update={"provider": "offline"})
    if admission.gate == "open":
        notes.append(admission.note)
        return offline, None, False
    probe = admission.gate == "probe"
    limits = call_limits(settings, deadline=deadline, probe=probe)
    if limits is None:
        if probe:
            BREAKERS.cancel_probe(admission.key)  # not spent: the next caller may probe
        notes.append("the run's deadline has passed: offline reasoner used instead of the model")
        return offline, None, False
    if probe:
        notes.append(admission.note)
    return route, limits, probe


def _with_review_reasons(proposal: Proposal, reasons: list[str], whole: dict[str, Any]) -> Proposal:
    """The proposal marked for a person: oversight queues any proposal whose decision has review_reasons."""
    decision = dict(proposal.decision or whole)
    decision["review_reasons"] = [*decision.get("review_reasons", []), *reasons]
    return proposal.model_copy(update={"decision": decision})


def reason(
    agent: Any,
    ctx: BaseModel,
    *,
    provider: str | None = None,
    settings: LLMSettings | SupportsLLMSettings | None = None,
    providers: Providers | None = None,
    approval_stats: ApprovalStats | None = None,
    budget_exhausted: bool = False,
    privacy: PrivacyScreen | None = None,
    deadline: float | None = None,
) -> DecisionEnvelope:
    """One decision for one context; never raises for a provider, model or agent failure.

    Raises ConfigError only for a caller mistake (an unknown provider name).
    `settings`: the LLM settings as a value (`get_settings().llm()`; the store's Settings is taken
    too); default: `LLMSettings()`, no key and no local model, so the offline reasoner decides.
    `providers`: route name -> provider, over the defaults (`default_providers(settings)`).
    `privacy`: the store-side screen of this context (crm_core/contexts/privacy.py).
    `deadline`: a `time.monotonic()` value after which no model call starts.
    """
    if settings is None:
        settings = LLMSettings()
    elif not isinstance(settings, LLMSettings):
        settings = settings.llm()
    available = {**default_providers(settings), **(providers or {})}
    started = time.perf_counter()
    notes: list[str] = []
    try:
        sensitive = bool(agent.is_sensitive(ctx))
    except Exception as exc:  # if we cannot tell, the record stays on this machine
        sensitive = True
        notes.append(f"could not tell whether the record is sensitive ({type(exc).__name__}): treated as sensitive")
    if privacy is not None and privacy.keep_local:
        sensitive = True
    route = choose_route(requested=provider, settings=settings, sensitive=sensitive, budget_exhausted=budget_exhausted)
    notes.extend(route.notes)
    if privacy is not None:
        notes.extend(privacy.notes(remote=route.requested == "anthropic"))
    request = ModelRequest(agent=agent, ctx=ctx)
    route, limits, probe = _guard(route, available[route.provider], request, settings, deadline, notes)
    chosen = available[route.provider]

    base: dict[str, Any] = {
        "agent": agent.name,
        "prompt_version": agent.prompt.version,
        "provider": route.provider,
        "is_local": chosen.is_local,
        "context_snapshot": context_snapshot(ctx),  # the book block by version and digest
        "context_hash": fingerprint(agent.name, ctx),  # what the decision depends on (agents.llm.fingerprint)
    }
    model = requested_model = chosen.model_for(request)
    usage = Usage()

    def failed(message: str) -> DecisionEnvelope:
        return DecisionEnvelope(
            **base,
            proposals=(),
            model=model,
            usage=_priced(chosen, model, requested_model, usage, notes, settings),
            latency_ms=int((time.perf_counter() - started) * 1000),
            failed=True,
            error=message,
            notes=tuple(notes),
        )

    key = breaker_key(route.provider, requested_model)
    try:
        try:
            reply = chosen.complete(request, limits)
        except ProviderFailure as exc:
            if chosen.is_model and exc.outage:
                assert limits is not None
                opened = BREAKERS.record_failure(
                    key, attempts=exc.attempts or limits.attempts, error=exc.message,
                    threshold=settings.breaker_failures, cooldown_s=settings.breaker_cooldown_s, probe=probe)
                if opened:
                    notes.append(f"{route.provider} model {requested_model} stopped answering: the next "
                                 f"{settings.breaker_cooldown_s:.0f}s of decisions go to the offline reasoner")
            elif chosen.is_model:
                BREAKERS.record_success(key)  # it answered, however badly: the endpoint is up
            raise
        if chosen.is_model:
            BREAKERS.record_success(key)
        model, usage = reply.model, reply.usage
        decision = validate_decision(agent.Decision, reply.payload)
    except ProviderFailure as exc:
        model, usage = exc.model or model, exc.usage
        return failed(exc.message)
    except ValidationError as exc:
        source = f"{route.provider} reply" if chosen.is_model else "offline reasoner"
        return failed(f"{source} breaks the {agent.Decision.__name__} schema: {_summarise(exc)}")
    except Exception as exc:  # an agent bug in render/offline_decide must not take the run down
        return failed(f"{route.provider}: {type(exc).__name__} while deciding: {exc}")

    review_reasons: list[str] = []
    if chosen.is_model:  # the offline reasoner is the agent's own code: its decision needs no checking
        try:
            contradictions, review_reasons = reply_problems(agent, ctx, decision)
        except Exception as exc:  # a check that cannot run is no evidence the reply is sound
            contradictions, review_reasons = [], [f"the reply could not be checked ({type(exc).__name__}): a person decides"]
        if contradictions:
            return failed(f"{route.provider} reply rejected: " + "; ".join(contradictions))

    try:
        proposals = list(agent.proposals(ctx, decision))
    except ValidationError as exc:
        return failed(f"proposals from the {route.provider} decision are invalid: {_summarise(exc)}")
    except Exception as exc:
        return failed(f"proposals from the {route.provider} decision failed: {type(exc).__name__}: {exc}")

    agreements: list[bool | None] = (
        _offline_agreement(available["offline"], request, decision, proposals, notes) if chosen.is_model
        else [None] * len(proposals)  # the offline reasoner agreeing with itself is no evidence
    )
    decision_json = decision.model_dump(mode="json")
    if review_reasons:
        proposals = [_with_review_reasons(p, review_reasons, decision_json) for p in proposals]
    assessed = _assess(
        proposals,
        whole_decision=decision_json,
        agreements=agreements,
        completeness=_completeness(agent, ctx, notes),
        approval_stats=approval_stats,
    )
    return DecisionEnvelope(
        **base,
        proposals=assessed,
        decision=decision_json,
        model=model,
        usage=_priced(chosen, model, requested_model, usage, notes, settings),
        latency_ms=int((time.perf_counter() - started) * 1000),
        notes=tuple(notes),
    )
