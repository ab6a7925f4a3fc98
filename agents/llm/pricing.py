"""What a model call cost in USD, from a per-model price table.

Prices are USD per million tokens, for plain input, output, cache reads and cache writes
(5-minute ephemeral cache). The defaults below are configuration, not measurements: they follow
the list prices of the previous model generation (Haiku 1/5, Sonnet 3/15, Opus 5/25; cache reads
0.1x and cache writes 1.25x the input price). Override or extend them without touching code:

    CRM_LLM_PRICES='{"claude-sonnet-5-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}'

The variable is read by the store's settings (`crm_core.settings.Settings.llm()`, through
`parse_price_table`); the table reaches `cost_usd` as a value, in `LLMSettings.prices`.
A model missing from the table is charged at the most expensive known price, so a daily budget
errs toward stopping early instead of silently spending without limit; `reason()` notes it.
Local models (ollama, offline) cost nothing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from agents.base import Usage
from agents.errors import ConfigError

PRICES_ENV = "CRM_LLM_PRICES"


class Price(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float
    output: float
    cache_read: float
    cache_write: float


DEFAULT_PRICES: dict[str, Price] = {
    "claude-haiku-5-5": Price(input=1.0, output=5.0, cache_read=0.10, cache_write=1.25),
    "claude-sonnet-5-5": Price(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75),
    "claude-opus-5-5": Price(input=5.0, output=25.0, cache_read=0.50, cache_write=6.25),
}


def parse_price_table(raw: str | None) -> dict[str, Price]:
    """The defaults merged with the overrides in `raw` (the JSON of CRM_LLM_PRICES; empty = none)."""
    table = dict(DEFAULT_PRICES)
    if not raw:
        return table
    try:
        overrides = json.loads(raw)
        if not isinstance(overrides, dict):
            raise ValueError("expected a JSON object of model -> prices")
        for model, price in overrides.items():
            table[str(model)] = Price.model_validate(price)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"{PRICES_ENV}: not a valid price table ({exc})") from exc
    return table


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of `model`, or None when the table does not know it."""
    return prices.get(model)


def cost_usd(model: str, usage: Usage, prices: Mapping[str, Price]) -> tuple[float, bool]:
    """(cost in USD, whether the model had a known price) for one call's usage."""
    price = prices.get(model)
    known = price is not None
    if price is None:
        price = max(prices.values(), key=lambda p: (p.output, p.input))
    cost = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    ) / 1_000_000
    return round(cost, 6), known
