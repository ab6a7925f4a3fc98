"""Follow-up's book block: the team's learned response rates, the rules the CRM holds a plan to, the
resources a follow-up may share, the policy, and people's verdicts on past follow-up plans.

The playbook and the resources are what every contact of a run shares (the builder puts the same
ones in each context); here they travel once, in the cached system block, instead of in every
user message. See crm_core.contexts.book for what a block may hold.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from agents.base import BookBlock, BookSection
from agents.follow_up import (
    BETTER_BY,
    BETTER_BY_POINTS,
    EMAIL_LEAD_MINUTES,
    HARD_MAX_ATTEMPTS,
    LATE_STAGE_QUIET_DAYS,
    SEND_HORIZON_DAYS,
    UNANSWERED_SWITCH,
    WAIT_MAX_DAYS,
)
from agents.follow_up.response_playbook import FOLLOW_UP_MIN_GAP, MAX_ATTEMPTS, MIN_EVIDENCE, PRIOR_WEIGHT, playbook_summary
from crm_core.contexts.book import (
    AGENT_ACTIONS,
    BOOK_VERSION,
    day_start,
    policy_rows,
    policy_section,
    verdict_section,
    when_words,
    word_count,
)

AGENT = "follow_up"

INTRO = (
    "About this team's follow-ups. Everything below was computed by the CRM from the team's own records and "
    "rules. It is the same for every contact: use it to plan the follow-up for the one contact in the user "
    "message. It holds no names, contact details or record ids."
)


def follow_up_block(session: Session, prepared: Any, *, as_of: datetime) -> BookBlock:
    """The block for a run with `prepared` (crm_core.contexts.follow_up.PreparedFollowUp)."""
    sections = (
        BookSection(title="The team's follow-up history (response within 7 days)",
                    lines=tuple(f"- {line}" for line in playbook_summary(prepared.playbook)) + (
                        f"Rates are shrunk toward the team's overall rate by {PRIOR_WEIGHT} touches; a rate on fewer "
                        f"than {MIN_EVIDENCE} touches does not steer a plan. Only follow-ups count: touches after "
                        f"at least {FOLLOW_UP_MIN_GAP} quiet days, or the first one.",)),
        _rules_section(),
        _resources_section(prepared.resources),
        policy_section(policy_rows(session, AGENT_ACTIONS[AGENT])),
        verdict_section(session, AGENT, before=day_start(as_of), describe=_describe_verdict),
    )
    return BookBlock.make(agent=AGENT, version=f"{AGENT}/{BOOK_VERSION}", intro=INTRO, sections=sections)


def _rules_section() -> BookSection:
    return BookSection(title="The rules the CRM holds every plan to", lines=(
        f"- A later follow-up or another channel is preferred only when history says it is answered at least "
        f"{BETTER_BY:.2f} times as often and {BETTER_BY_POINTS * 100:.0f} points more.",
        f"- After {UNANSWERED_SWITCH} unanswered, unopened emails in a row, switch channel (a call when a phone "
        "number is known, else LinkedIn).",
        f"- From the {MAX_ATTEMPTS}th unanswered touch on, stop unless history says more touches still get "
        f"answers; never more than {HARD_MAX_ATTEMPTS} in a row.",
        f"- A deal in a late stage quiet for {LATE_STAGE_QUIET_DAYS}+ days gets a call task for its owner.",
        f"- A wait looks again within {WAIT_MAX_DAYS} days at most.",
        f"- Sends are scheduled at least {EMAIL_LEAD_MINUTES} minutes after the run, inside the owner's working "
        f"hours on a weekday, within {SEND_HORIZON_DAYS} days.",
        "- A stop condition or a follow-up already on its way overrides any plan: the CRM replaces such a plan "
        "with its own.",
    ))


def _resources_section(resources: list[Any]) -> BookSection:
    lines = [f"[{i}] {r.title} ({r.kind}{', ' + r.url if r.url else ''}; used by {r.uses})"
             for i, r in enumerate(resources)]
    return BookSection(title="Resources you may share (send_resource takes the index, titles as imported)",
                       lines=tuple(lines) or ("(none)",), imported=True)


def _describe_verdict(decision: dict[str, Any]) -> str:
    parts = [f"plan {decision.get('plan')}"]
    if decision.get("channel") not in (None, "none"):
        parts.append(f"channel {decision['channel'].replace('_', ' ')}")
    if decision.get("stop_reason"):
        parts.append(f"stop reason {decision['stop_reason'].replace('_', ' ')}")
    if when := when_words(decision.get("send_at")):
        parts.append(f"send {when}")
    if decision.get("message"):
        parts.append(f"message of {word_count(decision['message'])} words")
    return ", ".join(parts)


__all__ = ["follow_up_block"]
