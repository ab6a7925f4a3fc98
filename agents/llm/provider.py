"""One interface for whatever answers a decision behind `reason()`.

A provider is a remote model (`AnthropicProvider`), a local one (`OllamaProvider`), the agent's own
offline reasoner (`OfflineProvider`), or a test double (`agents.llm.testing`). `reason()` routes a
decision to one of them by name (`agents.llm.routing`), asks it which model will answer (for the
circuit breaker, the price and the audit), then hands it the request and gets a `ModelReply` back:
the decision as JSON (or as the agent's Decision already), the model that answered and the tokens
it used. `reason()` validates the reply against the agent's Decision itself, whoever answered.

What a provider says about itself decides the rest, not its name:
- `is_local`: nothing leaves this machine, so the decision costs nothing and the envelope says so;
- `is_model`: a model answers, so the circuit breaker and the deadline guard the call, the reply's
  fields are checked against each other and the offline reasoner is asked whether it agrees. The
  offline reasoner is the agent's own code: none of that applies to it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from agents.llm.book import book_of, render_book
from agents.llm.fence import SYSTEM_DATA_RULE
from agents.llm.reply import ModelReply
from agents.llm.routing import tier_of
from agents.llm.settings import LLMSettings, Tier

DEFAULT_MAX_TOKENS = 4096

# How a model provider gets its client: (provider name, settings) -> an `anthropic.Anthropic` or an
# `ollama.Client`. Tests, the eval runner and the batch path supply one; default: the real client.
ClientFactory = Callable[[str, LLMSettings], Any]


def system_prompt(agent: Any) -> str:
    """The agent's system prompt, always ending with the rule that fenced text is data."""
    system = agent.prompt.system.rstrip()
    return system if SYSTEM_DATA_RULE in system else f"{system}\n\n{SYSTEM_DATA_RULE}"


class CallLimits(BaseModel):
    """Timeout and retries of one model call, cut to a deadline or to a single probe attempt."""

    timeout_s: float
    max_retries: int

    @property
    def attempts(self) -> int:
        return self.max_retries + 1


@dataclass(frozen=True)
class ModelRequest:
    """One decision asked of a provider: the agent and its context, the prompt parts built on first use.

    Built lazily because the offline reasoner needs none of them: it never renders the context.
    """

    agent: Any
    ctx: BaseModel

    @cached_property
    def tier(self) -> Tier:
        return tier_of(self.agent, self.ctx)

    @cached_property
    def system(self) -> str:
        return system_prompt(self.agent)

    @cached_property
    def user(self) -> str:
        return self.agent.render(self.ctx)

    @cached_property
    def book(self) -> str | None:
        """The context's rendered book block (agents.llm.book), sent after the instructions."""
        block = book_of(self.ctx)
        return render_book(block) if block is not None else None

    @property
    def decision_model(self) -> type[BaseModel]:
        return self.agent.Decision

    @property
    def max_tokens(self) -> int:
        return int(getattr(self.agent, "max_tokens", DEFAULT_MAX_TOKENS))


@runtime_checkable
class Provider(Protocol):
    """What `reason()` needs of whatever answers a decision."""

    name: str
    is_local: bool
    is_model: bool

    def model_for(self, request: ModelRequest) -> str:
        """The model that will answer `request`: the breaker's key, the price, the audit's model."""
        ...

    def complete(self, request: ModelRequest, limits: CallLimits | None) -> ModelReply:
        """The reply to `request`; raises ProviderFailure when nothing usable came back.

        `limits`: the call's timeout and retries after the deadline and the breaker (None for a
        provider that is not a model).
        """
        ...


# The providers `reason()` routes between, by route name ("offline", "anthropic", "ollama").
Providers = Mapping[str, Provider]
