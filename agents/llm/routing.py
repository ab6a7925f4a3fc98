"""Which provider and model one decision goes to: requested provider, privacy, budget, tier.

Order of the rules, each one only ever moving a decision toward a more local provider:
1. the requested provider (argument, else `settings.effective_provider`);
2. privacy: a sensitive context never goes to a remote provider: ollama when a host is
   configured, else the offline reasoner;
3. budget: when the agent's daily budget is spent, a remote call becomes the offline reasoner
   (a local ollama call costs nothing and stays);
4. ollama without a configured host cannot run: offline, with a note.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.errors import ConfigError
from agents.llm.settings import LLMSettings, ProviderName, Tier

PROVIDERS: tuple[str, ...] = ("offline", "anthropic", "ollama")
REMOTE_PROVIDERS = frozenset({"anthropic"})


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    requested: ProviderName
    notes: tuple[str, ...] = ()


def model_for(tier: Tier, settings: LLMSettings) -> str:
    """The configured model name of a tier (names live in settings, never in code)."""
    try:
        return {"small": settings.model_small, "mid": settings.model_mid, "large": settings.model_large}[tier]
    except KeyError:
        raise ConfigError(f"agent model tier {tier!r} is not one of small, mid, large") from None


def tier_of(agent: Any, ctx: BaseModel | None = None) -> Tier:
    """The tier one decision runs on: the agent's `tier_for(ctx)` when it has one, else its class tier.

    The smallest model that does the task: most decisions are one subject's; a context that needs
    multi-step work over many records (the pipeline's whole-pipeline review) asks for more.
    """
    hook = getattr(agent, "tier_for", None)
    if ctx is not None and callable(hook):
        return hook(ctx)
    return agent.tier


def choose_route(
    *,
    requested: str | None,
    settings: LLMSettings,
    sensitive: bool,
    budget_exhausted: bool,
) -> Route:
    name = requested or settings.effective_provider
    if name not in PROVIDERS:
        raise ConfigError(f"provider {name!r} is not one of {', '.join(PROVIDERS)}")
    provider: ProviderName = name  # type: ignore[assignment]
    notes: list[str] = []
    if sensitive and provider in REMOTE_PROVIDERS:
        provider = "ollama" if settings.ollama_host else "offline"
        where = "the local model" if provider == "ollama" else "the offline reasoner (no CRM_OLLAMA_HOST)"
        notes.append(f"sensitive record: kept off {name}, reasoned by {where}")
    if budget_exhausted and provider in REMOTE_PROVIDERS:
        provider = "offline"
        notes.append("daily budget spent: offline reasoner used")
    if provider == "ollama" and not settings.ollama_host:
        provider = "offline"
        notes.append("ollama requested but CRM_OLLAMA_HOST is not set: offline reasoner used")
    return Route(provider=provider, requested=name, notes=tuple(notes))  # type: ignore[arg-type]
