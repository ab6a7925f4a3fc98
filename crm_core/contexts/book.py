"""The parts of an agent's book block every agent shares: the policy, people's verdicts, the screen.

A book block (agents.base.BookBlock) is what all of an agent's decisions on one book have in
common, built once per run and sent in the cached system block. This module holds the pieces
that are the same for every agent; the agent-specific parts are in `book_lead_scoring`,
`book_follow_up`, `book_meeting`, `book_enrichment` and `book_pipeline`.

What may go in a block: figures computed from the store, and worked examples built only from
non-personal fields (a source, an industry, a seniority band, counts, an outcome, a verdict) of
records not marked sensitive. No names, addresses, titles, free text typed by a person, or record
ids. The examples are screened again against the store's sensitive records, as contexts are
(`crm_core.contexts.privacy`): an example whose text names one is left out.

A block must stay byte for byte the same while what it summarises is unchanged, or the prompt
cache is written again and every subject's fingerprint moves. So every part is anchored to a
moment that only moves when the book does: the learned model's training time, or the start of
the day for people's verdicts.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from agents.base import BookSection
from agents.llm.confidence import COMPLETENESS_FLOOR, DEFAULT_TRUST, DISAGREEMENT_FACTOR, PRIOR_WEIGHT
from crm_core.actions import REGISTRY
from crm_core.contexts.privacy import Refs, load_index
from crm_core.models import AuditEntry, Decision, Policy
from crm_core.oversight.defaults import DEFAULT_POLICIES

BOOK_VERSION = "book/1"
VERDICT_DAYS = 90
VERDICT_EXAMPLES = 12
_HUMAN = ("approved", "edited", "rejected", "executed", "failed", "reverted")

# The action types each agent proposes: the policy lines its block carries.
AGENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "lead_scoring": ("update_lead_score", "create_task"),
    "follow_up": ("send_email", "create_task"),
    "meeting": ("schedule_meeting", "save_meeting_brief", "create_action_items"),
    "enrichment": ("write_enrichment", "merge_contacts"),
    "pipeline": ("set_deal_risk", "create_task"),
}


# -- the policy -----------------------------------------------------------------------------------
def policy_rows(session: Session, action_types: Sequence[str]) -> list[tuple[str, str, float, bool]]:
    """(action type, stakes, threshold, always ask) as stored, else the defaults (nothing is written)."""
    stored = {p.action_type: p for p in session.scalars(select(Policy).where(Policy.action_type.in_(list(action_types))))}
    rows = []
    for action_type in action_types:
        p = stored.get(action_type)
        if p is not None:
            rows.append((action_type, p.stakes, float(p.threshold), bool(p.always_ask)))
        elif action_type in DEFAULT_POLICIES:
            d = DEFAULT_POLICIES[action_type]
            rows.append((action_type, d.stakes, float(d.threshold), bool(d.always_ask)))
    return rows


def policy_section(rows: Sequence[tuple[str, str, float, bool]]) -> BookSection:
    lines = []
    for action_type, stakes, threshold, always_ask in rows:
        spec = REGISTRY.get(action_type)
        undo = "; it can be undone" if spec is not None and spec.reversible else "; it cannot be undone"
        rule = ("a person always decides it" if always_ask else
                f"it runs without a person when the combined confidence is at least {threshold:.2f}, else a person decides")
        lines.append(f"- {action_type.replace('_', ' ')} ({stakes} stakes): {rule}{undo}.")
    lines += [
        "The combined confidence is your confidence multiplied by three factors in 0-1, so evidence can only "
        "lower it: how complete the context is (a bare context keeps "
        f"{COMPLETENESS_FLOOR:.0%} of your figure), whether the built-in reasoner reaches the same actions on the "
        f"same context (x{DISAGREEMENT_FACTOR:.1f} when it does not), and how often people approved this agent's "
        f"proposals of this kind (starting from {DEFAULT_TRUST:.0%} counted as {PRIOR_WEIGHT:.0f} verdicts until "
        "there is evidence).",
        "A value a person set by hand is only ever proposed for review, and a reply whose fields contradict "
        "each other is rejected: state a confidence you can defend from the evidence, not a high one.",
    ]
    return BookSection(title="How your decisions are applied", lines=tuple(lines))


# -- people's verdicts on this agent's queued proposals ---------------------------------------------
def day_start(at: datetime) -> datetime:
    return datetime.combine(at.date(), datetime.min.time())


def verdict_rows(session: Session, agent: str, *, before: datetime) -> list[tuple[Decision, bool]]:
    """(decision, edited) for the agent's queued decisions a person decided in the VERDICT_DAYS before
    `before`, newest first (the same verdicts `oversight.views.human_verdicts` counts)."""
    edited = exists(select(AuditEntry.id).where(AuditEntry.decision_id == Decision.id, AuditEntry.event == "decision.edited"))
    return list(session.execute(
        select(Decision, edited).where(
            Decision.agent == agent, Decision.policy_verdict == "queue", Decision.decided_by.is_not(None),
            Decision.decided_by != "system", Decision.status.in_(_HUMAN), Decision.decided_at < before,
            Decision.decided_at >= before - timedelta(days=VERDICT_DAYS),
        ).order_by(Decision.decided_at.desc(), Decision.id.desc())
    ).all())


def verdict_word(decision: Decision, edited: bool) -> str:
    if decision.status == "rejected":
        return "rejected"
    if decision.status == "edited" or edited:
        return "changed, then approved"
    return "approved as proposed"


def verdict_section(
    session: Session, agent: str, *, before: datetime, describe: Callable[[dict[str, Any]], str],
) -> BookSection:
    """Counts per action type and the newest examples, each in non-personal fields only (`describe`)."""
    rows = verdict_rows(session, agent, before=before)
    if not rows:
        return BookSection(title="What people decided on this agent's proposals", lines=(
            f"No one decided a proposal of this agent that waited for a person in the {VERDICT_DAYS} days before "
            f"{before:%Y-%m-%d}.",))
    counts: dict[str, Counter[str]] = {}
    for d, edited in rows:
        for action_type in sorted({a.get("type") for a in d.actions or [] if a.get("type")}):
            counts.setdefault(action_type, Counter())[verdict_word(d, edited)] += 1
    lines = [f"In the {VERDICT_DAYS} days before {before:%Y-%m-%d} people decided {len(rows)} proposals that waited "
             "for them:"]
    for action_type, c in sorted(counts.items()):
        lines.append(f"- {action_type.replace('_', ' ')}: " + ", ".join(f"{n} {w}" for w, n in c.most_common()))
    lines.append("Newest first (the proposal's own fields, then the verdict):")
    for d, edited in rows[:VERDICT_EXAMPLES]:
        fields = d.decision or {}
        confidence = f", confidence {fields['confidence']}" if fields.get("confidence") is not None else ""
        lines.append(f"- {describe(fields)}{confidence} -> {verdict_word(d, edited)}")
    return BookSection(title="What people decided on this agent's proposals", lines=tuple(lines))


# -- the privacy screen ---------------------------------------------------------------------------------
def screened(session: Session, examples: Sequence[tuple[dict[str, set[int]], str]]) -> list[str]:
    """The example lines that neither come from nor name a sensitive record.

    Each example is (the records it was built from, by kind, its text). The records never go in
    the block; they are checked here, as a context's records are, and the text is scanned for the
    names and addresses of sensitive records.
    """
    union = Refs()
    for records, _ in examples:
        for kind, ids in records.items():
            for i in ids:
                union.add(kind, i)
    index = load_index(session, union)
    if index.empty:
        return [text for _, text in examples]
    kept = []
    for records, text in examples:
        refs = Refs()
        for kind, ids in records.items():
            for i in ids:
                refs.add(kind, i)
        if not index.hits(refs) and not index.mentions(text):
            kept.append(text)
    return kept


# -- one block per book state, built once ----------------------------------------------------------------
class BlockCache:
    """Blocks by what they were built from: a scheduler worker runs one subject per job, and
    rebuilding the block for each would read the book again every time."""

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._blocks: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._blocks:
                return self._blocks[key]
        block = build()
        with self._lock:
            if len(self._blocks) >= self._keep:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[key] = block
        return block


def when_words(value: Any) -> str | None:
    """'Tue 14:00 UTC' for a time a decision stored (ISO text), None when it holds none."""
    if not isinstance(value, str):
        return None
    try:
        return f"{datetime.fromisoformat(value):%a %H:%M} UTC"
    except ValueError:
        return None


def word_count(text: Any) -> int:
    return len(str(text or "").split())


def store_key(session: Session) -> str:
    return str(session.get_bind().url)


def pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0%}"


__all__ = ["AGENT_ACTIONS", "BOOK_VERSION", "BlockCache", "day_start", "pct", "policy_rows", "policy_section",
           "screened", "store_key", "verdict_section", "when_words", "word_count"]
