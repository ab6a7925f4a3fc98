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
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.base import DecisionEnvelope, Proposal, Usage
from agents.llm import anthropic_provider, offline_provider, ollama_provider
from agents.llm.book import book_of, context_snapshot, render_book
from agents.llm.breaker import BREAKERS, breaker_key
from agents.llm.confidence import ApprovalStats, AssessedProposal, combine_confidence, weakest_approval_rate
from agents.llm.fence import SYSTEM_DATA_RULE
from agents.llm.fingerprint import fingerprint
from agents.llm.offline_provider import OFFLINE_MODEL
from agents.llm.output_checks import reply_problems
from agents.llm.pricing import cost_usd
from agents.llm.privacy import PrivacyScreen
from agents.llm.reply import ModelReply, ProviderFailure
from agents.llm.routing import Route, choose_route, model_for, tier_of
from crm_core.settings import Settings, get_settings

ClientFactory = Callable[[str, Settings], Any]

__all__ = ["OFFLINE_MODEL", "reason", "system_prompt", "validate_decision"]


def system_prompt(agent: Any) -> str:
    """The agent's system prompt, always ending with the rule that fenced text is data."""
    system = agent.prompt.system.rstrip()
    return system if SYSTEM_DATA_RULE in system else f"{system}\n\n{SYSTEM_DATA_RULE}"


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
    agent: Any, ctx: BaseModel, decision: BaseModel, proposals: list[Proposal], notes: list[str]
) -> list[bool | None]:
    """Per proposal: does the offline reasoner, on the same context, reach the same actions?"""
    try:
        offline_decision = offline_provider.decide(agent, ctx)
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


class CallLimits(BaseModel):
    """Timeout and retries of one model call, cut to a deadline or to a single probe attempt."""

    timeout_s: float
    max_retries: int

    @property
    def attempts(self) -> int:
        return self.max_retries + 1


def call_limits(settings: Settings, *, deadline: float | None, probe: bool) -> CallLimits | None:
    """None when the deadline leaves no time for a call at all."""
    timeout, retries = settings.llm_timeout_s, 0 if probe else settings.llm_max_retries
    if deadline is None:
        return CallLimits(timeout_s=timeout, max_retries=retries)
    left = deadline - time.monotonic()
    if left < 1.0:
        return None
    timeout = min(timeout, left)
    retries = min(retries, max(0, math.floor(left / timeout) - 1))
    return CallLimits(timeout_s=timeout, max_retries=retries)


def _call_model(
    route: Route, agent: Any, ctx: BaseModel, settings: Settings, client_factory: ClientFactory | None,
    limits: CallLimits,
) -> ModelReply:
    system = system_prompt(agent)
    user = agent.render(ctx)
    block = book_of(ctx)
    book = render_book(block) if block is not None else None
    max_tokens = int(getattr(agent, "max_tokens", anthropic_provider.DEFAULT_MAX_TOKENS))
    if route.provider == "anthropic":
        model = model_for(tier_of(agent, ctx), settings)
        client = client_factory("anthropic", settings) if client_factory else anthropic_provider.build_client(settings)
        if (limits.timeout_s, limits.max_retries) != (settings.llm_timeout_s, settings.llm_max_retries):
            client = client.with_options(timeout=limits.timeout_s, max_retries=limits.max_retries)
        return anthropic_provider.call(
            client, model=model, system=system, user=user, decision_model=agent.Decision, max_tokens=max_tokens,
            book=book,
        )
    if route.provider == "ollama":
        client = client_factory("ollama", settings) if client_factory else ollama_provider.build_client(settings)
        try:
            return ollama_provider.call(
                client,
                model=settings.ollama_model,
                system=f"{system}\n\n{book}" if book else system,
                user=user,
                decision_model=agent.Decision,
                max_retries=limits.max_retries,
                host=settings.ollama_host or "?",
                timeout_s=settings.llm_timeout_s,
            )
        finally:
            if client_factory is None:  # ours to close; a supplied client belongs to the caller
                client.close()
    raise AssertionError(f"no model call for provider {route.provider}")


def _priced(provider: str, model: str, requested_model: str, usage: Usage, notes: list[str]) -> Usage:
    """Usage with its cost. The API may answer with a dated model id: then the configured name prices it."""
    if provider != "anthropic":
        return usage  # local models cost nothing
    cost, known = cost_usd(model, usage)
    if not known:
        cost, known = cost_usd(requested_model, usage)
    if not known:
        notes.append(f"no price configured for {model} (CRM_LLM_PRICES): charged at the highest known price")
    return usage.model_copy(update={"cost_usd": cost})


def _guard(
    route: Route, agent: Any, ctx: BaseModel, settings: Settings, deadline: float | None, notes: list[str]
) -> tuple[Route, CallLimits | None, bool]:
    """The route after the breaker and the deadline, with the limits of the call it allows."""
    if route.provider == "offline":
        return route, None, False
    model = model_for(tier_of(agent, ctx), settings) if route.provider == "anthropic" else settings.ollama_model
    admission = BREAKERS.admit(breaker_key(route.provider, model), threshold=settings.llm_breaker_failures,
                               cooldown_s=settings.llm_breaker_cooldown_s)
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
    settings: Settings | None = None,
    approval_stats: ApprovalStats | None = None,
    budget_exhausted: bool = False,
    client_factory: ClientFactory | None = None,
    privacy: PrivacyScreen | None = None,
    deadline: float | None = None,
) -> DecisionEnvelope:
    """One decision for one context; never raises for a provider, model or agent failure.

    Raises UserError only for a caller mistake (an unknown provider name).
    `privacy`: the store-side screen of this context (crm_core/contexts/privacy.py).
    `deadline`: a `time.monotonic()` value after which no model call starts.
    """
    settings = settings or get_settings()
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
    route, limits, probe = _guard(route, agent, ctx, settings, deadline, notes)

    base: dict[str, Any] = {
        "agent": agent.name,
        "prompt_version": agent.prompt.version,
        "provider": route.provider,
        "is_local": route.provider != "anthropic",
        "context_snapshot": context_snapshot(ctx),  # the book block by version and digest
        "context_hash": fingerprint(agent.name, ctx),  # what the decision depends on (agents.llm.fingerprint)
    }
    model = requested_model = OFFLINE_MODEL if route.provider == "offline" else (
        model_for(tier_of(agent, ctx), settings) if route.provider == "anthropic" else settings.ollama_model
    )
    usage = Usage()

    def failed(message: str) -> DecisionEnvelope:
        return DecisionEnvelope(
            **base,
            proposals=(),
            model=model,
            usage=_priced(route.provider, model, requested_model, usage, notes),
            latency_ms=int((time.perf_counter() - started) * 1000),
            failed=True,
            error=message,
            notes=tuple(notes),
        )

    key = breaker_key(route.provider, requested_model)
    try:
        if route.provider == "offline":
            decision = offline_provider.decide(agent, ctx)
        else:
            assert limits is not None
            try:
                reply = _call_model(route, agent, ctx, settings, client_factory, limits)
            except ProviderFailure as exc:
                if exc.outage:
                    opened = BREAKERS.record_failure(
                        key, attempts=exc.attempts or limits.attempts, error=exc.message,
                        threshold=settings.llm_breaker_failures, cooldown_s=settings.llm_breaker_cooldown_s, probe=probe)
                    if opened:
                        notes.append(f"{route.provider} model {requested_model} stopped answering: the next "
                                     f"{settings.llm_breaker_cooldown_s:.0f}s of decisions go to the offline reasoner")
                else:
                    BREAKERS.record_success(key)  # it answered, however badly: the endpoint is up
                raise
            BREAKERS.record_success(key)
            model, usage = reply.model, reply.usage
            decision = validate_decision(agent.Decision, reply.payload)
    except ProviderFailure as exc:
        model, usage = exc.model or model, exc.usage
        return failed(exc.message)
    except ValidationError as exc:
        source = "offline reasoner" if route.provider == "offline" else f"{route.provider} reply"
        return failed(f"{source} breaks the {agent.Decision.__name__} schema: {_summarise(exc)}")
    except Exception as exc:  # an agent bug in render/offline_decide must not take the run down
        return failed(f"{route.provider}: {type(exc).__name__} while deciding: {exc}")

    review_reasons: list[str] = []
    if route.provider != "offline":
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
        [None] * len(proposals) if route.provider == "offline" else _offline_agreement(agent, ctx, decision, proposals, notes)
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
        usage=_priced(route.provider, model, requested_model, usage, notes),
        latency_ms=int((time.perf_counter() - started) * 1000),
        notes=tuple(notes),
    )
