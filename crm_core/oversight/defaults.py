"""The policy every action type starts with: how much it may do without a human.

Each action spec declares its own (`crm_core.actions`: stakes, threshold, always ask), so a new
action type is written in one place; this module reads them. Low-stakes bookkeeping (scores,
tasks, risk flags, briefs) runs alone when the combined confidence is decent; anything that
reaches a customer needs more; money and merges always ask.
"""
from __future__ import annotations

from typing import NamedTuple

from crm_core.actions import REGISTRY
from crm_core.models.enums import Stakes


class DefaultPolicy(NamedTuple):
    stakes: str
    threshold: float
    always_ask: bool = False


DEFAULT_POLICIES: dict[str, DefaultPolicy] = {
    action_type: DefaultPolicy(spec.stakes.value, spec.default_threshold, spec.always_ask)
    for action_type, spec in REGISTRY.items()
}

STAKES_ORDER: tuple[str, ...] = tuple(s.value for s in Stakes)


def stakes_rank(stakes: str | None) -> int:
    return STAKES_ORDER.index(stakes) if stakes in STAKES_ORDER else 0
