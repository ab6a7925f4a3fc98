"""Everything the reasoning layer needs to know about its providers, as one frozen value.

The store reads the environment (`crm_core.settings.Settings`, CRM_* and ANTHROPIC_* variables) and
hands the reasoning its part as an `LLMSettings` (`Settings.llm()`): `reason()`, routing, pricing
and the providers take this value and never read the environment themselves. The defaults are
the safe ones: no key, no local model, so nothing leaves the machine and the offline reasoner decides.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.llm.pricing import DEFAULT_PRICES, Price

ProviderName = Literal["offline", "anthropic", "ollama"]
Tier = Literal["small", "mid", "large"]


class LLMSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # The provider asked for when a run names none (CRM_LLM_PROVIDER); unset = anthropic with a key, else offline.
    provider: ProviderName | None = None
    anthropic_api_key: str | None = Field(default=None, repr=False)  # kept out of logs and tracebacks
    anthropic_base_url: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2
    ollama_host: str | None = None  # e.g. http://127.0.0.1:11434; unset = no local model
    ollama_model: str = "llama3.1:8b"
    # Model tiers: names are configuration, never code.
    model_small: str = "claude-haiku-5-5"
    model_mid: str = "claude-sonnet-5-5"
    model_large: str = "claude-opus-5-5"
    # Circuit breaker per provider and model (agents.llm.breaker).
    breaker_failures: int = 3
    breaker_cooldown_s: float = 60.0
    # Bulk runs through the Message Batches API (agents.llm.batches).
    batch_above: int = 1000
    batch_poll_s: float = 30.0
    # USD per million tokens per model (agents.llm.pricing; CRM_LLM_PRICES extends the defaults).
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    @property
    def effective_provider(self) -> ProviderName:
        if self.provider:
            return self.provider
        return "anthropic" if self.anthropic_api_key else "offline"
