"""Checks in code on what a reasoner proposes, before anything runs without a person.

Two kinds, used at two places:

- `reply_problems(agent, ctx, decision)` (called by `reason()` on every model reply): fields that
  contradict each other (a tier the score does not give) reject the reply; a change larger than the
  prompt allows (the lead score moving more than 15 points away from the learned estimate) is kept
  but marked for review; the same for a deal's risk flag against its loss probability (the
  pipeline prompt's cut-offs and 15 points), and for a decision of another kind than its context.
  An agent can supply its own `check_reply(ctx, decision)` returning `(contradictions,
  review_reasons)`; otherwise the built-in checks apply to the fields a decision has.
- `screen_proposal(...)` (called by oversight's intake for every proposal of every envelope,
  whoever reasoned): the free text that will be shown or sent (reasons, task titles, email subjects
  and bodies, briefs, enrichment values) is screened for instructions aimed at a model, for email
  addresses and links that appear nowhere in the context the decision was made on, and for length.
  Any finding sends the item to the approval queue with the finding as a plain sentence.

Untrusted text reaches the model fenced (agents/llm/fence.py), but a model can still be talked
into echoing it; these checks are the second wall, and they look only at the output.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from agents.base import ScoreChecks

SCORE_CHANGE_MAX = 15  # the prompts' bound on moving away from the learned estimate (score or loss probability)

# Phrases that address a language model rather than a sales rep or a buyer. Matched case-insensitively
# on text whose whitespace is collapsed, so line breaks cannot split them.
_INSTRUCTION_PATTERNS = [
    r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
    r"[^.\n]{0,20}\b(instructions?|prompts?|rules|guidelines|directions|context)\b",
    r"\bnew (system )?instructions?\b",
    r"\b(system|developer) (prompt|message|instructions?)\b",
    r"\byou are (now|no longer)\b",
    r"\bact as (an? )?(ai|assistant|system|admin|administrator|developer)\b",
    r"\b(jailbreak|prompt injection|do anything now)\b",
    r"^\s*(system|assistant|user)\s*:",
    r"</?\s*(system|instructions?|untrusted|data|fence)[^>]{0,40}>",
    r"\b(begin|end) (untrusted|data|fenced?)\b",
    r"\b(e-?mail|send|forward|export|share|upload|post)\b[^.\n]{0,40}\b(the )?(full|entire|whole|complete|all)\b"
    r"[^.\n]{0,20}\b(contact|customer|lead|client|user)s?\b[^.\n]{0,10}\b(list|database|data|records|book|base)\b",
    r"\b(api[ _-]?key|password|credentials?|secret token)s?\b[^.\n]{0,30}\b(send|reveal|share|print|email|post)\b",
    r"\b(send|reveal|share|print|email|post)\b[^.\n]{0,30}\b(api[ _-]?key|password|credentials?|secret token)s?\b",
]
INSTRUCTION_RE = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE | re.MULTILINE)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)

# Longest text a field may carry; by the name of the parameter holding it.
LENGTH_LIMITS: dict[str, int] = {
    "subject": 200, "title": 300, "label": 300, "reason": 1500, "reasoning": 2000, "escalation": 1000,
    "action": 1000, "message": 6000, "body": 6000, "text": 6000, "description": 4000, "agenda": 3000,
    "brief": 20000,
}
DEFAULT_LENGTH_LIMIT = 6000
# Parameters that are identifiers or machine values, not text a person reads or receives.
_NOT_TEXT = frozenset({"starts_at", "ends_at", "due_at", "send_at", "revisit_at", "tier", "risk", "entity", "kind",
                       "channel", "next_action", "stage", "status", "currency", "timezone", "uid", "ics"})


# -- reply checks (reason) -----------------------------------------------------------------------
def reply_problems(agent: Any, ctx: BaseModel, decision: BaseModel) -> tuple[list[str], list[str]]:
    """(contradictions: reject the reply, review reasons: keep it but a person decides)."""
    hook = getattr(agent, "check_reply", None)
    if callable(hook):
        contradictions, review = hook(ctx, decision)
        return list(contradictions), list(review)
    contradictions, review = _score_and_tier(agent, ctx, decision)
    more, more_review = _risk_and_probability(ctx, decision)
    kind_ctx, kind_reply = getattr(ctx, "kind", None), getattr(decision, "kind", None)
    if isinstance(kind_ctx, str) and isinstance(kind_reply, str) and kind_ctx != kind_reply:
        contradictions.append(f"the reply is a {kind_reply} decision for a {kind_ctx} context")
    return contradictions + more, review + more_review


def _risk_and_probability(ctx: BaseModel, decision: BaseModel) -> tuple[list[str], list[str]]:
    """A deal's flag must follow its loss probability through the learned cut-offs."""
    risk, percent = getattr(decision, "risk", None), getattr(decision, "loss_probability", None)
    estimate = getattr(ctx, "estimate", None)
    red, amber = getattr(estimate, "red_min", None), getattr(estimate, "amber_min", None)
    if not (isinstance(risk, str) and isinstance(percent, int) and isinstance(red, float) and isinstance(amber, float)):
        return [], []
    def flag(p: float) -> str:
        return "red" if p >= red else "amber" if p >= amber else "green"

    # The percent is rounded: a flag right for any probability that rounds to it is consistent.
    allowed = {flag((percent - 0.5) / 100), flag(percent / 100), flag((percent + 0.499) / 100)}
    expected = flag(percent / 100)
    contradictions, review = [], []
    if risk not in allowed:
        contradictions.append(f"the reply flags the deal {risk} with a {percent}% chance of loss, but the cut-offs "
                              f"(red from {red:.0%}, amber from {amber:.0%}) make it {expected}")
    anchor = getattr(estimate, "loss_probability", None)
    if isinstance(anchor, float) and abs(percent - anchor * 100) > SCORE_CHANGE_MAX:
        review.append(f"the loss probability {percent}% is {abs(percent - anchor * 100):.0f} points away from the "
                      f"learned estimate of {anchor:.0%}; the model may move it at most {SCORE_CHANGE_MAX}")
    return contradictions, review


def _score_and_tier(agent: Any, ctx: BaseModel, decision: BaseModel) -> tuple[list[str], list[str]]:
    score, tier = getattr(decision, "score", None), getattr(decision, "tier", None)
    if not isinstance(score, int) or not isinstance(tier, str):
        return [], []
    if not isinstance(agent, ScoreChecks):
        return [], []
    estimate = agent.score_estimate(ctx)
    contradictions, review = [], []
    expected = agent.score_tier(score, estimate)
    if expected != tier:
        contradictions.append(f"the reply gives a score of {score} with tier {tier}, but the cut-offs put {score} "
                              f"in {expected}")
    anchor = getattr(estimate, "score", None)
    if isinstance(anchor, int) and abs(score - anchor) > SCORE_CHANGE_MAX:
        review.append(f"the score {score} is {abs(score - anchor)} points away from the learned estimate of {anchor}; "
                      f"the model may move it at most {SCORE_CHANGE_MAX}")
    return contradictions, review


# -- proposal screening (intake) ------------------------------------------------------------------
def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(parameter name, text) of every string inside a JSON-like value."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, key)


def known_addresses_and_hosts(context: Any, extra: Iterable[str] = ()) -> tuple[set[str], set[str]]:
    """Every email address and link host that appears in the context: what a proposal may name."""
    addresses: set[str] = {a.lower() for a in extra if a}
    hosts: set[str] = set()
    for _key, text in _strings(context):
        addresses.update(m.group(0).lower().rstrip(".") for m in EMAIL_RE.finditer(text))
        hosts.update(h for m in URL_RE.finditer(text) if (h := _host(m.group(0))))
    hosts.update(a.rsplit("@", 1)[1] for a in addresses if "@" in a)  # a company's own site is no stranger
    return addresses, hosts


def _host(url: str) -> str:
    url = url if "://" in url else f"http://{url}"
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _where(key: str) -> str:
    return {"reason": "the reason", "reasoning": "the reasoning", "subject": "the email subject",
            "body": "the email body", "message": "the message", "title": "the title", "description": "the description",
            "brief": "the brief", "agenda": "the agenda", "escalation": "the escalation note",
            "action": "the recommended action"}.get(key, f"the {key.replace('_', ' ')}" if key else "a text")


def screen_texts(texts: Iterable[tuple[str, str]], *, addresses: set[str], hosts: set[str]) -> list[str]:
    """Plain sentences, one per finding, for the texts (name, text) a proposal would show or send."""
    findings: list[str] = []
    for key, text in texts:
        if key in _NOT_TEXT or not text:
            continue
        where = _where(key)
        flat = " ".join(text.split())
        if INSTRUCTION_RE.search(text) or INSTRUCTION_RE.search(flat):
            findings.append(f"{where} contains wording aimed at an AI model (\"{_excerpt(flat)}\"): a person checks it")
        strangers = sorted({a.lower().rstrip(".") for a in EMAIL_RE.findall(text)} - addresses)
        if strangers:
            findings.append(f"{where} names an email address that is not in the record ({', '.join(strangers[:3])})")
        foreign = sorted({h for u in URL_RE.findall(text) if (h := _host(u)) and not _known_host(h, hosts)})
        if foreign:
            findings.append(f"{where} links to a site that is not in the record ({', '.join(foreign[:3])})")
        limit = LENGTH_LIMITS.get(key, DEFAULT_LENGTH_LIMIT)
        if len(text) > limit:
            findings.append(f"{where} is {len(text)} characters long, over the {limit} allowed")
    return list(dict.fromkeys(findings))


def _known_host(host: str, hosts: set[str]) -> bool:
    return any(host == h or host.endswith(f".{h}") for h in hosts)


def _excerpt(text: str, limit: int = 80) -> str:
    m = INSTRUCTION_RE.search(text)
    start = max(0, m.start() - 10) if m else 0
    cut = text[start:start + limit]
    return ("…" if start else "") + cut + ("…" if start + limit < len(text) else "")


def screen_proposal(
    *,
    actions: Iterable[dict[str, Any]],
    reasoning: str | None,
    escalation: str | None,
    context: Any,
    extra_addresses: Iterable[str] = (),
) -> list[str]:
    """Findings for one proposal: its action parameters, reasoning and escalation, against its context."""
    addresses, hosts = known_addresses_and_hosts(context, extra_addresses)
    texts: list[tuple[str, str]] = []
    for action in actions:
        texts.extend(_strings(action.get("params") or {}))
        if action.get("reason"):
            texts.append(("reason", str(action["reason"])))
    if reasoning:
        texts.append(("reasoning", reasoning))
    if escalation:
        texts.append(("escalation", escalation))
    return screen_texts(texts, addresses=addresses, hosts=hosts)


__all__ = ["INSTRUCTION_RE", "SCORE_CHANGE_MAX", "known_addresses_and_hosts", "reply_problems", "screen_proposal",
           "screen_texts"]
