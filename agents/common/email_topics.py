"""What a contact raises in an email: objections, questions and requests, and a request to stop.

Each topic is a rule (a pattern over the sentences someone wrote) with the words a follow-up answers
it with, the resources that speak to it and the talking point for a call. The follow-up agent
answers them and the meeting agent lists the open ones of an email thread in briefs and agendas,
so the rules live here once. Email bodies are untrusted: a sentence written at a machine is not read for topics at all.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

from agents.common.context_records import EmailItem
from agents.common.text_reading import body_sentences, quotable, rx


class Topic(NamedTuple):
    key: str
    kind: Literal["objection", "question", "request"]
    label: str                    # "budget and price"
    pattern: re.Pattern[str]
    answer: str                   # how a follow-up responds; states no product fact it cannot know
    resource_words: tuple[str, ...]
    talking_point: str            # for a call


TOPICS: tuple[Topic, ...] = (
    Topic("price", "objection", "budget and price",
          rx(r"\b(budget(ed)?|too expensive|expensive|cheaper|discount|flexibility|above what we|over our|price is|cost too)\b"),
          "I hear you on budget. Two options that usually help: a smaller starting scope that grows with you, or a "
          "different term and billing schedule. I can put both side by side so you can take them to finance.",
          ("roi", "business case", "calculator"),
          "Budget: offer a smaller starting scope or a different term; ask what number finance can approve."),
    Topic("pricing", "question", "pricing",
          rx(r"\b(pricing|price|plans?|tiers?|billing|cost|seat minimums?|how much)\b"),
          "On pricing: it depends on the scope and team size you described, so I will put the options for your "
          "team in writing rather than guess here.",
          ("pricing", "plans"),
          "Pricing: confirm team size and scope, then send the options in writing."),
    Topic("competitor", "objection", "the other vendors you are comparing",
          rx(r"\b(also evaluating|evaluating|comparing|competitor|incumbent|already pay for|went with|other vendors?)\b"),
          "Comparing options is the right call. I can share how teams who made the same comparison decided, and "
          "walk through the differences that mattered to them.",
          ("buyer's guide", "comparison", "case stud", "customer stor"),
          "Competition: ask what matters most in the comparison; offer references from teams who compared the same."),
    Topic("security", "question", "security and compliance",
          rx(r"\b(soc ?2|security (review|questionnaire|team|report)|penetration test|pen test|saml|sso|single sign-on|okta|iso ?27001)\b"),
          "I will send over our security documentation, including the SOC 2 report, and can set up 30 minutes with "
          "our security team for your IT lead.",
          ("security", "soc 2", "trust", "compliance", "whitepaper"),
          "Security: confirm which documents IT needs (SOC 2 report, questionnaire, SSO setup) and offer a session with our security team."),
    Topic("data_residency", "question", "data residency",
          rx(r"\b(gdpr|data residency|hosted in the eu|eu hosting|eu region|frankfurt|where (our|the) data is stored|dpa)\b"),
          "On where your data lives: I will send the hosting and data-processing details in writing, so your legal "
          "team can check them against your requirements.",
          ("security", "gdpr", "data processing", "whitepaper", "compliance"),
          "Data residency: confirm the region they need and send the hosting and DPA details."),
    Topic("integration", "question", "integrations",
          rx(r"\b(integrat\w*|connector|netsuite|hubspot|salesforce|snowflake|bigquery|warehouse|api)\b"),
          "On the integration question: I can show exactly how it connects to your stack with your own objects, "
          "or send the integration guide first if that is easier to share internally.",
          ("integration", "salesforce", "hubspot", "snowflake", "connector", "api"),
          "Integrations: ask which systems must connect and offer a technical walkthrough."),
    Topic("timing", "objection", "timing",
          rx(r"\b(hiring freeze|next quarter|revisit|not a priority|in a few months|later this year|q[1-4]|timing)\b"),
          "Understood on timing. If it helps, I can put together a short plan you can keep ready for when budget "
          "opens, so nothing has to start from scratch.",
          ("playbook", "template", "benchmark"),
          "Timing: ask when the budget cycle opens and who decides; agree on a date to reconnect."),
    Topic("legal", "objection", "contract terms",
          rx(r"\b(legal|auto-?renewal|liability cap|redlines?|contract terms|msa|order form)\b"),
          "On the contract points: I have asked our legal team for the options on those clauses and will come back "
          "with them in writing.",
          (),
          "Contract: list the open clauses and agree who from each legal team joins."),
    Topic("build_vs_buy", "objection", "building it in-house",
          rx(r"\b(build (this|it) (ourselves|in-house|in our)|bi tool|in-house)\b"),
          "On building it in-house: I can share a short comparison of what it takes to build and run versus buy, "
          "which you could pass on to your CFO.",
          ("roi", "buyer's guide", "business case", "calculator"),
          "Build vs buy: ask what the in-house estimate includes; offer the cost comparison for the CFO."),
    Topic("onboarding", "question", "onboarding",
          rx(r"\b(onboarding|implementation|roll-?out|how long does .{0,40}take|go live)\b"),
          "On onboarding: I can walk you through a typical rollout plan for a team your size, step by step.",
          ("getting started", "playbook", "onboarding", "template"),
          "Onboarding: ask about team size and target go-live date; outline the rollout plan."),
    Topic("trial", "question", "a trial",
          rx(r"\b(free trial|trial|sandbox|pilot|test it)\b"),
          "On trying it first: I can set up a sandbox with data shaped like yours so your team can test it properly.",
          ("getting started", "docs"),
          "Trial: agree on success criteria and who tests; offer a sandbox."),
    Topic("meeting_request", "request", "a call",
          rx(r"\b(set up a call|schedule a (call|meeting)|book a (call|meeting|demo)|call next week|send (me |us )?an invite|works for us)\b"),
          "Happy to set that up.",
          (),
          "They asked for a call: book it while you have them."),
)

OPT_OUT = rx(r"\b(remove me|unsubscribe|stop (emailing|contacting|sending)|do not (contact|email)|don't (contact|email)|"
              r"not interested|take me off)\b")
WRONG_PERSON = rx(r"\b(not the right person|wrong person|talk to our \w+ team|you may want to talk to)\b")


class TopicHit(NamedTuple):
    topic: Topic
    sentence: str | None   # the sentence it was found in, when it is safe to quote


_MACHINE_AIMED = rx(r"\bignore\b|instruction|assistant|\bsystem\s*:|prompt|<!--|-->")
_KIND_ORDER = {"objection": 0, "question": 1, "request": 2}


def detect_topics(text: str | None) -> list[TopicHit]:
    """Objections, then questions, then requests in a message, each topic once, in order of appearance.

    A sentence written at a machine ("ignore previous instructions...") is not read for topics at all.
    """
    hits: dict[str, tuple[int, TopicHit]] = {}
    for position, sentence in enumerate(body_sentences(text)):
        if _MACHINE_AIMED.search(sentence):
            continue
        for topic in TOPICS:
            if not topic.pattern.search(sentence):
                continue
            if topic.key == "pricing" and "price" in hits:
                continue  # the budget objection already covers it
            quoted = quotable(sentence)
            if topic.key in hits:
                # The question itself says more than the sentence that set it up: quote that one.
                first, hit = hits[topic.key]
                if quoted and quoted.endswith("?") and not (hit.sentence or "").endswith("?"):
                    hits[topic.key] = (first, TopicHit(topic, quoted))
                continue
            hits[topic.key] = (position, TopicHit(topic, quoted))
    ordered = sorted(hits.values(), key=lambda ph: (_KIND_ORDER[ph[1].topic.kind], ph[0]))
    return [hit for _, hit in ordered]


def opted_out(text: str | None) -> str | None:
    for sentence in body_sentences(text):
        if OPT_OUT.search(sentence):
            return quotable(sentence) or "asked us to stop"
    return None


def open_points(emails: Sequence[EmailItem]) -> list[str]:
    """Questions and objections from the contact's emails, newest first, each topic once."""
    out: list[str] = []
    seen: set[str] = set()
    inbound = sorted((e for e in emails if e.direction == "inbound"), key=lambda e: e.sent_at, reverse=True)
    outbound = [e for e in emails if e.direction == "outbound"]
    for e in inbound:
        answered = any(o.sent_at > e.sent_at for o in outbound)
        for hit in detect_topics(e.body):
            if hit.topic.key in seen or hit.topic.kind == "request":
                continue
            seen.add(hit.topic.key)
            said = f": \u201c{hit.sentence}\u201d" if hit.sentence else ""
            state = "we replied since" if answered else "not answered yet"
            out.append(f"{hit.topic.kind.capitalize()} on {hit.topic.label} ({e.sent_at:%d %b}, {state}){said}")
    return out[:6]


def open_talking_points(emails: Sequence[EmailItem]) -> list[str]:
    """Up to three talking points for a call: one per question or objection in the contact's emails, unanswered first."""
    inbound = sorted((e for e in emails if e.direction == "inbound"), key=lambda e: e.sent_at, reverse=True)
    outbound = [e for e in emails if e.direction == "outbound"]
    open_first: list[tuple[bool, str]] = []
    seen: set[str] = set()
    for e in inbound:
        answered = any(o.sent_at > e.sent_at for o in outbound)
        for hit in detect_topics(e.body):
            if hit.topic.kind == "request" or hit.topic.key in seen:
                continue
            seen.add(hit.topic.key)
            open_first.append((answered, hit.topic.talking_point))
    return [p for _, p in sorted(open_first, key=lambda ap: ap[0])][:3]
