"""Enrichment's book block: the rules the CRM holds a fill to, what each source's evidence is worth,
the store's copy rules as this book rates them, the policy, and people's verdicts on past fills.

All of it is the same for every contact of a run (the builder rates the copy rules once per run,
`crm_core.contexts.enrichment.prepare`): here it travels once, in the cached system block, instead
of in every user message. What people decided is counted per field and source only: no value,
name, address or record id (see crm_core.contexts.book for what a block may hold). It is read as
of the start of the day, so the block stays the same all day while the book does.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from agents.base import BookBlock, BookSection
from agents.enrichment import LOW_EVIDENCE, OVERWRITE_MIN, WRITABLE
from agents.enrichment.sources import HttpSourceConfig, RuleRating
from agents.enrichment.sources import store as rules
from agents.enrichment.sources.evidence import CORROBORATED_MAX, DISAGREEMENT_PENALTY, RIVAL_MIN
from agents.enrichment.sources.http_api import COMPANY_TARGETS, PERSON_TARGETS
from crm_core.contexts.book import (
    AGENT_ACTIONS,
    BOOK_VERSION,
    VERDICT_DAYS,
    day_start,
    policy_rows,
    policy_section,
    verdict_rows,
    verdict_section,
    verdict_word,
)

AGENT = "enrichment"

INTRO = (
    "About how this team's records are enriched. Everything below was computed by the CRM from the team's own "
    "records and rules. It is the same for every contact: use it to judge the one contact (and its account) in "
    "the user message. It holds no names, contact details or record ids."
)
# The store's copy rules in words, by the name `RuleRating.rule` carries.
RULE_WORDS = {rules.CONTACT_COUNTRY_FROM_ACCOUNT: "a contact's empty country copied from its account's country"}


def enrichment_block(session: Session, prepared: Any, *, as_of: datetime) -> BookBlock:
    """The block for a run with `prepared` (crm_core.contexts.enrichment.PreparedEnrichment)."""
    before = day_start(as_of)
    ratings = sorted(prepared.ratings.values(), key=lambda r: r.rule)
    outside = HttpSourceConfig() if prepared.outside else None  # the service the run path will ask
    sections = (
        _rules_section(),
        _weighing_section(),
        _sources_section(ratings, outside),
        _ratings_section(ratings),
        _fills_decided_section(session, before),
        policy_section(policy_rows(session, AGENT_ACTIONS[AGENT])),
        verdict_section(session, AGENT, before=before, describe=_describe_verdict),
    )
    return BookBlock.make(agent=AGENT, version=f"{AGENT}/{BOOK_VERSION}", intro=INTRO, sections=sections)


def _rules_section() -> BookSection:
    return BookSection(title="The rules the CRM holds every fill to", lines=(
        "- Fields enrichment writes: contact " + ", ".join(sorted(WRITABLE["contact"])) + "; account "
        + ", ".join(sorted(WRITABLE["account"])) + ". A fill of any other field is dropped.",
        "- A fill keeps only a value a source in the user message reported, under that source's name; its "
        "confidence is lowered to what the evidence supports. A value no source reported is dropped.",
        f"- An empty field is filled on evidence of {LOW_EVIDENCE} or more; weaker or disputed evidence makes the "
        "fill a guess, which waits for a person before it is written.",
        "- An imported value may be re-written in standard form (the same value, tidier), unless a person wrote it so.",
        f"- A field holding another value, or one a person set or emptied (manual fields), is proposed for change "
        f"only on evidence of {OVERWRITE_MIN} or more, and the change always waits for a person.",
        "- A value a person rejected or reverted is never proposed again; a field with a decision waiting for "
        "review is skipped.",
        "- An account is enriched through one of its contacts per run (the first, preferring one not marked "
        "sensitive); for its other contacts the account is context only.",
        "- A likely duplicate is proposed as a merge that a person always confirms; the older record is kept.",
        "- Notes on a contact are read, never used as evidence for a value.",
    ))


def _weighing_section() -> BookSection:
    return BookSection(title="How the CRM weighs the facts about one field", lines=(
        "- Values are compared in standard form: case, spacing, country spellings, web address prefixes.",
        f"- Facts reporting the same value add up: support = 1 - (1 - c1) x (1 - c2) x ..., at most "
        f"{CORROBORATED_MAX}; the same piece of evidence reported twice counts once.",
        f"- When another value keeps a support of {RIVAL_MIN} or more, the sources disagree: each such value loses "
        f"{DISAGREEMENT_PENALTY} and is a guess for a person to check.",
        "- Per field the best supported value is the candidate; one below the thresholds above is not proposed.",
    ))


def _sources_section(ratings: list[RuleRating], outside: HttpSourceConfig | None) -> BookSection:
    rated = next((r for r in ratings if r.rule == rules.CONTACT_COUNTRY_FROM_ACCOUNT), None)
    copied = (f"{rated.rating} as rated on this book (below)" if rated is not None
              else f"{rules.COUNTRY_FROM_ACCOUNT} (the prior)")
    lines = [
        "The store (the CRM's own records) is always consulted. Its evidence and the confidence each kind carries:",
        f"- contact account: the account whose domain is the contact's email domain, when exactly one has it "
        f"{rules.ACCOUNT_BY_DOMAIN}",
        f"- contact company: the name the email domain spells when no account has that domain {rules.COMPANY_FROM_DOMAIN} "
        "(a guess); never from a free-mail or reserved domain",
        f"- contact country: an international phone number's calling code {rules.COUNTRY_FROM_PHONE}; a national "
        f"number read as North American {rules.COUNTRY_FROM_READ_PHONE}; the email domain's country code (never a "
        f"generic ending such as .io) {rules.COUNTRY_FROM_TLD}; the account's country, into an empty field only, "
        f"{copied}; a country written another way, put in standard form {rules.COUNTRY_TIDY}",
        f"- contact title in standard form (case, spacing, abbreviations) {rules.TITLE_TIDY}; seniority the title "
        f"names {rules.SENIORITY_FROM_TITLE} (an individual role it names {rules.SENIORITY_FROM_TITLE - 0.05:.2f}, "
        f"no level named: individual contributor {rules.SENIORITY_BY_DEFAULT}); department the title names "
        f"{rules.DEPARTMENT_FROM_TITLE}",
        f"- contact first and last name from a first.last address {rules.NAME_FROM_EMAIL} (a guess)",
        f"- account website: the domain at least two thirds of its contacts write from {rules.WEBSITE_FROM_COLLEAGUES}",
        f"- account country: its company domain's country code {rules.ACCOUNT_COUNTRY_FROM_TLD}; at least two thirds "
        f"of two or more of its contacts' phone numbers {rules.COUNTRY_FROM_COLLEAGUES}; a country written another "
        f"way, put in standard form {rules.COUNTRY_TIDY}",
    ]
    if outside is None:
        lines.append("No outside enrichment service is configured: the store is the only source.")
    else:
        lines += [
            f"The outside enrichment service is recorded as the source {outside.name!r}. It is asked only about "
            "records not marked sensitive that have a gap it could fill: contact " + ", ".join(sorted(PERSON_TARGETS))
            + "; account " + ", ".join(sorted(COMPANY_TARGETS)) + ".",
            f"Each value carries the confidence the service gave, else {outside.default_confidence}, never more than "
            f"{outside.max_confidence}; a value that fails the CRM's checks is left out with a note. When it could "
            "not answer, the user message lists it among the sources that failed: the picture is incomplete.",
        ]
    return BookSection(title="The sources and what their evidence is worth", lines=tuple(lines))


def _ratings_section(ratings: list[RuleRating]) -> BookSection:
    lines = []
    for r in ratings:
        how = "measured on this book" if r.measured else "the prior, not measured on this book"
        lines.append(f"- {RULE_WORDS.get(r.rule, r.rule.replace('_', ' '))}: rated {r.rating} ({how}; prior "
                     f"{r.prior}): {r.sentence or 'no sentence recorded'}.")
    return BookSection(title="The store's copy rules as this book rates them", lines=tuple(lines) or ("(none)",))


def _fills_decided_section(session: Session, before: datetime) -> BookSection:
    """People's verdicts per field and source (the fields of each proposal they decided, no values)."""
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    for decision, edited in verdict_rows(session, AGENT, before=before):
        word = verdict_word(decision, edited)
        for fill in (decision.decision or {}).get("fills") or []:
            if isinstance(fill, dict) and fill.get("field"):
                key = (str(fill.get("record_type") or ""), str(fill["field"]), str(fill.get("source") or "unknown"))
                counts.setdefault(key, Counter())[word] += 1
    title = "How people decided the fields proposed to them, by field and source"
    if not counts:
        return BookSection(title=title, lines=(f"No field proposed by this agent was decided by a person in the "
                                               f"{VERDICT_DAYS} days before {before:%Y-%m-%d}.",))
    lines = [f"In the {VERDICT_DAYS} days before {before:%Y-%m-%d}:"]
    for (record_type, field, source), c in sorted(counts.items()):
        lines.append(f"- {record_type} {field} from {source}: " + ", ".join(f"{n} {w}" for w, n in c.most_common()))
    return BookSection(title=title, lines=tuple(lines))


def _describe_verdict(decision: dict[str, Any]) -> str:
    kind = decision.get("kind")
    if kind == "duplicate":
        signals = ", ".join(str(s).replace("_", " ") for s in decision.get("signals") or []) or "no signal recorded"
        return f"merge of a likely duplicate ({signals})"
    fills = [f for f in decision.get("fills") or [] if isinstance(f, dict)]
    if not fills:
        return "nothing to fill"
    what = {"fill": "fill", "guess": "guess", "review": "change of a filled field"}.get(str(kind), "fill")
    fields = ", ".join(f"{f.get('record_type')} {f.get('field')} at {f.get('confidence')}" for f in fills[:8])
    return f"{what}: {fields}"


__all__ = ["enrichment_block"]
