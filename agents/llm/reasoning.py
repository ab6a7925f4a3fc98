"""reason(): the one door every agent decision goes through, whatever reasons behind it.

Steps, in order (see agents/llm/__init__.py for the contract):
1. route: requested provider -> privacy (sensitive never leaves) -> daily budget -> availability;
2. decide: the offline reasoner, or the model with the agent's prompt and its Decision schema
   enforced, the reply validated again against the pydantic model (unknown keys rejected);
3. propose: `agent.proposals(ctx, decision)`: actions come from agent code, never from the reply;
4. assess: each proposal's confidence combined with evidence (agents.llm.confidence).
Any failure on the way returns a failed envelope with no proposals: nothing half-made ever
reaches oversight as executable.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.base import DecisionEnvelope, Proposal, Usage, context_hash
from agents.llm import anthropic_provider, offline_provider, ollama_provider
from agents.llm.confidence import AssessedProposal, combine_confidence, weakest_approval_rate
from agents.llm.fence import SYSTEM_DATA_RULE
from agents.llm.offline_provider import OFFLINE_MODEL
from agents.llm.pricing import cost_usd
from agents.llm.reply import ModelReply, ProviderFailure
from agents.llm.routing import Route, choose_route, model_for
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
    approval_stats: dict[str, tuple[int, int]] | None,
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


def _call_model(
    route: Route, agent: Any, ctx: BaseModel, settings: Settings, client_factory: ClientFactory | None
) -> ModelReply:
    system = system_prompt(agent)
    user = agent.render(ctx)
    max_tokens = int(getattr(agent, "max_tokens", anthropic_provider.DEFAULT_MAX_TOKENS))
    if route.provider == "anthropic":
        model = model_for(agent.tier, settings)
        client = client_factory("anthropic", settings) if client_factory else anthropic_provider.build_client(settings)
        return anthropic_provider.call(
            client, model=model, system=system, user=user, decision_model=agent.Decision, max_tokens=max_tokens
        )
    if route.provider == "ollama":
        client = client_factory("ollama", settings) if client_factory else ollama_provider.build_client(settings)
        try:
            return ollama_provider.call(
                client,
                model=settings.ollama_model,
                system=system,
                user=user,
                decision_model=agent.Decision,
                max_retries=settings.llm_max_retries,
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


def reason(
    agent: Any,
    ctx: BaseModel,
    *,
    provider: str | None = None,
    settings: Settings | None = None,
    approval_stats: dict[str, tuple[int, int]] | None = None,
    budget_exhausted: bool = False,
    client_factory: ClientFactory | None = None,
) -> DecisionEnvelope:
    """One decision for one context; never raises for a provider, model or agent failure.

    Raises UserError only for a caller mistake (an unknown provider name).
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    notes: list[str] = []
    try:
        sensitive = bool(agent.is_sensitive(ctx))
    except Exception as exc:  # if we cannot tell, the record stays on this machine
        sensitive = True
        notes.append(f"could not tell whether the record is sensitive ({type(exc).__name__}): treated as sensitive")
    route = choose_route(requested=provider, settings=settings, sensitive=sensitive, budget_exhausted=budget_exhausted)
    notes.extend(route.notes)

    base: dict[str, Any] = {
        "agent": agent.name,
        "prompt_version": agent.prompt.version,
        "provider": route.provider,
        "is_local": route.provider != "anthropic",
        "context_snapshot": ctx.model_dump(mode="json"),
        "context_hash": context_hash(ctx),
    }
    model = requested_model = OFFLINE_MODEL if route.provider == "offline" else (
        model_for(agent.tier, settings) if route.provider == "anthropic" else settings.ollama_model
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

    try:
        if route.provider == "offline":
            decision = offline_provider.decide(agent, ctx)
        else:
            reply = _call_model(route, agent, ctx, settings, client_factory)
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
