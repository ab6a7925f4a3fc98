"""Golden scenarios: a context plus what a sound decision must contain, run against a provider.

Each case is `tests/evals/<agent>/<name>.json`:
    {"name": "...", "context": {<the agent's Context as JSON>},
     "expect": {"actions_include": [...], "actions_exclude": [...], "escalation": true|false,
                "params_exclude": ["text no proposed action's params may contain"],
                "decision": {"dotted.path": {"eq": v} | {"in": [...]} | {"min": a, "max": b}
                                             | {"contains": "text"} | {"contains_all": ["text", ...]}}}}
A path walks dicts by key and lists by index; `*` over a list means "any element".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agents.base import DecisionEnvelope
from agents.llm.provider import Providers
from agents.llm.reasoning import reason
from agents.llm.settings import LLMSettings
from agents.registry import get_agent

EVALS_DIR = Path(__file__).resolve().parent.parent / "tests" / "evals"
_MISSING = object()


class CaseResult(BaseModel):
    agent: str
    name: str
    passed: bool
    failures: list[str] = []
    provider: str | None = None


def _values_at(data: Any, path: list[str]) -> list[Any]:
    if not path:
        return [data]
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(data, list):
        return [v for item in data for v in _values_at(item, rest)]
    if isinstance(data, dict) and head in data:
        return _values_at(data[head], rest)
    if isinstance(data, list) and head.lstrip("-").isdigit() and -len(data) <= int(head) < len(data):
        return _values_at(data[int(head)], rest)
    return [_MISSING]


def _matches(value: Any, rule: dict[str, Any]) -> bool:
    if value is _MISSING:
        return False
    if "eq" in rule and value != rule["eq"]:
        return False
    if "in" in rule and value not in rule["in"]:
        return False
    if "min" in rule and not (isinstance(value, (int, float)) and value >= rule["min"]):
        return False
    if "max" in rule and not (isinstance(value, (int, float)) and value <= rule["max"]):
        return False
    text = json.dumps(value, ensure_ascii=False).lower()
    if "contains" in rule and str(rule["contains"]).lower() not in text:
        return False
    if "contains_all" in rule and any(str(t).lower() not in text for t in rule["contains_all"]):
        return False
    return True


def check(envelope: DecisionEnvelope, expect: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    if envelope.failed:
        return [f"decision failed: {envelope.error}"]
    action_types = {a.type for p in envelope.proposals for a in p.actions}
    for t in expect.get("actions_include", []):
        if t not in action_types:
            failures.append(f"expected action {t!r}, got {sorted(action_types)}")
    for t in expect.get("actions_exclude", []):
        if t in action_types:
            failures.append(f"action {t!r} must not be proposed")
    for text in expect.get("params_exclude", []):
        if any(str(text).lower() in json.dumps(a.params, default=str).lower() for p in envelope.proposals for a in p.actions):
            failures.append(f"an action's params contain {text!r}")
    if "escalation" in expect:
        escalated = any(p.escalation for p in envelope.proposals)
        if escalated != bool(expect["escalation"]):
            failures.append(f"escalation expected {expect['escalation']}, got {escalated}")
    for path, rule in expect.get("decision", {}).items():
        values = _values_at(envelope.decision, path.split("."))
        if not any(_matches(v, rule) for v in values):
            shown = [v for v in values if v is not _MISSING][:3]
            failures.append(f"decision.{path}: {rule} not met (found {shown or 'nothing'})")
    return failures


def load_cases(agent_name: str) -> list[dict[str, Any]]:
    folder = EVALS_DIR / agent_name
    cases = []
    for path in sorted(folder.glob("*.json")):
        case = json.loads(path.read_text())
        case.setdefault("name", path.stem)
        cases.append(case)
    return cases


def run_evals(
    agent_names: list[str],
    *,
    provider: str | None = "offline",
    settings: LLMSettings | None = None,
    providers: Providers | None = None,
) -> list[CaseResult]:
    """Every golden case of `agent_names`, decided through `reason()`.

    `settings` and `providers` go to `reason()` as they are; without settings (no key, no local
    model) only the offline reasoner can answer.
    """
    results: list[CaseResult] = []
    for name in agent_names:
        agent = get_agent(name)
        for case in load_cases(name):
            ctx = agent.Context.model_validate(case["context"])
            envelope = reason(agent, ctx, provider=provider, settings=settings, providers=providers)
            failures = check(envelope, case.get("expect", {}))
            results.append(CaseResult(agent=name, name=case["name"], passed=not failures, failures=failures, provider=envelope.provider))
    return results


def pass_rates(results: list[CaseResult]) -> dict[str, tuple[int, int]]:
    rates: dict[str, tuple[int, int]] = {}
    for r in results:
        passed, total = rates.get(r.agent, (0, 0))
        rates[r.agent] = (passed + r.passed, total + 1)
    return rates
