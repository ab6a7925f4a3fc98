"""The policy every action type starts with: how much it may do without a human.

Low-stakes bookkeeping (scores, tasks, risk flags, briefs) runs alone when the combined
confidence is decent; anything that reaches a customer needs more; money and merges always ask.
"""
from __future__ import annotations

from typing import NamedTuple


class DefaultPolicy(NamedTuple):
    stakes: str
    threshold: float
    always_ask: bool = False


DEFAULT_POLICIES: dict[str, DefaultPolicy] = {
    "update_lead_score": DefaultPolicy("low", 0.5),  # a number on a page, kept in the score history; tasks still ask
    "create_task": DefaultPolicy("low", 0.7),
    "write_enrichment": DefaultPolicy("low", 0.65),  # reversible fills; human-set fields and guesses always ask
    "set_deal_risk": DefaultPolicy("low", 0.45),  # a flag only informs the board; tasks and escalations still ask
    "save_meeting_brief": DefaultPolicy("low", 0.6),
    "post_notification": DefaultPolicy("low", 0.7),
    "create_action_items": DefaultPolicy("medium", 0.8),
    "send_email": DefaultPolicy("medium", 0.9),
    "schedule_meeting": DefaultPolicy("medium", 0.85),
    "move_deal_stage": DefaultPolicy("high", 0.95),
    "send_quote": DefaultPolicy("critical", 1.0, always_ask=True),
    "merge_contacts": DefaultPolicy("high", 1.0, always_ask=True),
    # A data-quality fix rewrites many records at once: a person looks at the preview first.
    "normalise_values": DefaultPolicy("high", 1.0, always_ask=True),
}

STAKES_ORDER: tuple[str, ...] = ("low", "medium", "high", "critical")


def stakes_rank(stakes: str | None) -> int:
    return STAKES_ORDER.index(stakes) if stakes in STAKES_ORDER else 0
