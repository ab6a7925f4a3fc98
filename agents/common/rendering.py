"""The small pieces every agent's prompt and proposals are written with.

Kept in one place so the five agents write the same JSON and the same system-prompt ending: a
change here changes every agent's prompt text, which is why each agent's prompt version is the
check (the golden cases and the byte-identical prompts compare them).
"""
from __future__ import annotations

import json
from typing import Any

from agents.llm.fence import SYSTEM_DATA_RULE


def as_json(value: Any) -> str:
    """One line of JSON with keys sorted, so equal facts render as equal text (and cache alike)."""
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def with_data_rule(system: str) -> str:
    """An agent's instructions followed by the rule that fenced text is data, never instructions."""
    return system + "\n" + SYSTEM_DATA_RULE


def subject_label(name: str | None, noun: str, record_id: int | None) -> str:
    """The name a person sees for a proposal's subject, else "<noun> <id>", at most 80 characters."""
    return ((name or "").strip() or f"{noun} {record_id}")[:80]
