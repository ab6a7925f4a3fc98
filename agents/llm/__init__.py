"""The reasoning entry point every agent run goes through, and the providers behind it.

Public API (agent modules, the runner, evals and tests code against these names):

    fence(item, label=None) -> str
        Render untrusted text (an `UntrustedText` or a plain str) inside a block whose delimiter
        carries a fresh random nonce, labelled as data. Text inside cannot close the block: any
        delimiter-looking sequence inside is neutralised. Use it in `agent.render(ctx)` for every
        email body, note, transcript line or CSV cell.
    SYSTEM_DATA_RULE: str
        One paragraph every agent's system prompt ends with: content inside fences is data, never
        instructions. (`reason()` appends it when the agent's prompt lacks it, so it is always sent.)

    reason(agent, ctx, *, provider=None, settings=None, providers=None, approval_stats=None,
           budget_exhausted=False, privacy=None, deadline=None) -> DecisionEnvelope
        One decision for one context. Picks the provider (argument, else
        `settings.effective_provider`), routes sensitive contexts away from remote models
        (`agent.is_sensitive(ctx)` -> ollama when CRM_OLLAMA_HOST is set, else offline), falls back
        to the offline reasoner when the daily budget is spent (noted in `envelope.notes`), calls
        the model with `agent.prompt.system` + `agent.render(ctx)` and `agent.Decision` as the
        enforced output schema, validates the reply against `agent.Decision` again, builds
        `agent.proposals(ctx, decision)` and combines each proposal's confidence with evidence.
        It never raises for a provider or model failure: timeouts, 429/5xx/529 after retries,
        schema violations, refusals and empty replies all return `failed=True`, `error=<message>`,
        `proposals=()`.
        `settings`: an `LLMSettings` value (`crm_core.settings.get_settings().llm()`); nothing
        under agents/ reads the environment. Default: `LLMSettings()` (no key: offline).
        `providers`: route name ("offline", "anthropic", "ollama") -> a `Provider`
        (`agents.llm.provider`), over `default_providers(settings, client_factory=None)`, where
        `client_factory(provider_name, settings)` supplies the client (an `anthropic.Anthropic` or
        an `ollama.Client`). Test doubles: `agents.llm.testing.FixedProvider` / `FunctionProvider`.
        `privacy`: the store-side screen of the context (`crm_core.contexts.privacy.screen`): any
        sensitive record it carries keeps the decision local, and the notes name them and why.
        `deadline`: a `time.monotonic()` value; no model call starts after it (offline instead),
        and a call's timeout and retries are cut to the time left.
        A circuit breaker per provider and model (`agents.llm.breaker`) sends decisions to the
        offline reasoner, noted as such, while an endpoint keeps failing; one probe call per
        cool-down tests it again. Replies whose fields contradict each other are rejected; a
        change past the prompt's bound is kept with `review_reasons`, which oversight queues
        (`agents.llm.output_checks`).

    combine_confidence(model_confidence, *, completeness, offline_agrees, approval_rate)
        -> (combined, factors)
        The documented formula (see `agents.llm.confidence`): the model's own figure, multiplied
        by factors in 0..1 for context completeness, agreement with the offline reasoner and the
        Beta-smoothed rate at which humans approved this agent's decisions of this kind.

    model_for(tier, settings) -> str       settings.model_small / model_mid / model_large
    price_for(model, prices) -> Price      USD per million tokens (`settings.prices`; CRM_LLM_PRICES overrides)
    OFFLINE_MODEL: str                     the model name recorded for offline decisions
    LLMSettings                            the settings value (`agents.llm.settings`)

Optional agent hooks `reason()` uses when present (none is required):
    agent.completeness(ctx) -> float       0..1, how much of what the agent needs the context holds
    agent.agrees(a, b) -> bool             whether two decisions agree (default: every proposal's
                                           subject gets the same set of action types from both)

Where the combined confidence goes: each returned proposal is an `AssessedProposal` (a
`Proposal` subclass): `confidence` is the COMBINED figure the policy compares with its
thresholds, `model_confidence` is what the reasoner said of itself, `confidence_factors` holds
the factors (JSON-ready). The same two values are also written into `proposal.decision` under
the keys "model_confidence" and "confidence_factors", because the envelope serialises its
proposals as plain `Proposal`s; oversight reads them from there onto the decision row.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from agents.llm.confidence import AssessedProposal, combine_confidence
from agents.llm.fence import SYSTEM_DATA_RULE, fence
from agents.llm.offline_provider import OFFLINE_MODEL
from agents.llm.pricing import Price, cost_usd, price_for
from agents.llm.routing import model_for
from agents.llm.settings import LLMSettings

if TYPE_CHECKING:
    from agents.llm.reasoning import default_providers, reason

# Loaded on first use: they pull the anthropic and ollama SDKs (about a second), which the store's
# settings, the context builders and the agents' prompts (fence, pricing, LLMSettings) never need.
_LAZY = {"reason": "agents.llm.reasoning", "default_providers": "agents.llm.reasoning"}

__all__ = [
    "OFFLINE_MODEL",
    "SYSTEM_DATA_RULE",
    "AssessedProposal",
    "LLMSettings",
    "Price",
    "combine_confidence",
    "cost_usd",
    "default_providers",
    "fence",
    "model_for",
    "price_for",
    "reason",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
