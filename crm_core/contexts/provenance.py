"""Who wrote a record's value: a person or an import, or an agent.

The enrichment agent marks every field it writes in the record's `attributes["_enrichment"]`
(value, source, confidence, when). A field's current value is the agent's while it still equals
the marked value and no person has typed the field since (`manual_fields`): a person who typed
over the agent's value, or confirmed it by typing it again, made it theirs; an import or a person
that changed the value leaves a value that no longer matches the mark.

Readers that must know what people entered use this test: the country-from-account rating
(`enrichment_rules`) and the lead scorer's book (`lead_book`), which learns only from values a
person or an import entered. The agent fills only the leads it is asked about (open ones), so its
values would tell a learner which leads were still open, not which ones convert.

Keys of `attributes` that are the store's own bookkeeping, not facts about the record: the
agent's marks (any key starting with "_") and what merging duplicates writes (`MERGE_KEYS`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents.enrichment.sources.evidence import same_value

MARKS = "_enrichment"
MERGE_KEYS = frozenset({"merged_from", "other_emails"})  # written by merging duplicates (an agent proposes it)


def written_by_agent(attributes: Mapping[str, Any] | None, manual: Iterable[Any] | None, field: str, value: Any) -> bool:
    """True when `value`, the record's current value of `field`, is the one the agent wrote."""
    if value is None:
        return False
    mark = ((attributes or {}).get(MARKS) or {}).get(field)
    if not isinstance(mark, dict) or not same_value(field, mark.get("value"), value):
        return False
    return field not in {str(m) for m in manual or ()}


def is_bookkeeping(key: str) -> bool:
    """An attribute the store or an action keeps for itself (marks, merge history), not a fact."""
    return key.startswith("_") or key in MERGE_KEYS


def entered_attributes(attributes: Mapping[str, Any] | None, manual: Iterable[Any] | None) -> dict[str, Any]:
    """The record's attributes a person or an import entered: bookkeeping and the agent's values left out."""
    attributes = attributes or {}
    manual = list(manual or ())
    return {k: v for k, v in attributes.items()
            if not is_bookkeeping(k) and not written_by_agent(attributes, manual, k, v)}


__all__ = ["MARKS", "MERGE_KEYS", "entered_attributes", "is_bookkeeping", "written_by_agent"]
