"""Weighing facts about one field: agreeing evidence adds up, disagreeing evidence counts against.

Per distinct value (compared in normal form: 'UK' and 'United Kingdom' are one country), the
support is 1 - prod(1 - c) over the facts reporting it (independent pieces of evidence, such as
the phone's calling code and the account's country), capped at CORROBORATED_MAX: two sources
agreeing never make a value certain. When another value keeps a support of RIVAL_MIN or more,
each of them loses DISAGREEMENT_PENALTY: the sources disagree, so a person should rather look.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.enrichment.sources import places
from agents.enrichment.sources.base import Fact, FactValue
from agents.enrichment.sources.domains import host_of

CORROBORATED_MAX = 0.95
RIVAL_MIN = 0.5
DISAGREEMENT_PENALTY = 0.2


def normalised(field: str, value: Any) -> str:
    """The form two values of `field` are compared in: case, spacing, country spellings, web prefixes."""
    if value is None:
        return ""
    if field == "country":
        known = places.country(str(value))
        return known.name.lower() if known else " ".join(str(value).lower().split())
    if field == "website":
        return host_of(str(value)) or ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = " ".join(str(value).split()).lower()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        number = float(text)
        return str(int(number)) if number.is_integer() else str(number)
    return text


def same_value(field: str, a: Any, b: Any) -> bool:
    return normalised(field, a) == normalised(field, b)


@dataclass(frozen=True)
class Weighed:
    """One candidate value of a field: its support and the facts behind it, most confident first."""

    value: FactValue
    confidence: float
    facts: tuple[Fact, ...]
    disputed_by: tuple[FactValue, ...] = ()

    @property
    def source(self) -> str:
        return self.facts[0].source

    def evidence(self) -> str:
        parts = [f"{f.source}: {f.evidence}" if f.evidence else f.source for f in self.facts]
        return "; ".join(dict.fromkeys(parts))


def _support(confidences: Iterable[float]) -> float:
    values = list(confidences)
    missing = 1.0
    for c in values:
        missing *= 1.0 - c
    return max(max(values), min(CORROBORATED_MAX, 1.0 - missing))


def weigh(field: str, facts: Iterable[Fact]) -> list[Weighed]:
    """Every distinct value reported for `field`, strongest first; each disputed one loses the penalty."""
    groups: dict[str, list[Fact]] = {}
    for fact in facts:
        groups.setdefault(normalised(field, fact.value), []).append(fact)
    raw = []
    for group in groups.values():
        group.sort(key=lambda f: (-f.confidence, f.source, f.evidence))
        # The same piece of evidence reported twice is still one piece.
        distinct = {(f.source, f.evidence): f.confidence for f in group}
        raw.append((_support(distinct.values()), group))
    raw.sort(key=lambda sg: (-sg[0], -len(sg[1]), str(sg[1][0].value)))
    weighed = []
    for i, (support, group) in enumerate(raw):
        rivals = tuple(g[0].value for j, (s, g) in enumerate(raw) if j != i and s >= RIVAL_MIN)
        confidence = max(0.0, support - DISAGREEMENT_PENALTY) if rivals else support
        weighed.append(Weighed(value=group[0].value, confidence=round(confidence, 3), facts=tuple(group), disputed_by=rivals))
    return weighed


def support_for(field: str, facts: Iterable[Fact], value: Any) -> Weighed | None:
    """The weighed candidate equal to `value` (after any dispute penalty), None when no fact reports it."""
    for w in weigh(field, facts):
        if same_value(field, w.value, value):
            return w
    return None
