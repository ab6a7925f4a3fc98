"""Features whose presence tells the outcome: filled because of it, so never known for an open lead.

The store keeps no history of a contact's fields: every snapshot reads them as they are now. A
field a rep fills when a deal is won (a contract number), one a form asks only of disqualified
leads (the reason), or one an automation fills only on leads still open (an enrichment run)
is present on one outcome and missing on the other. A model learns that presence as the label:
it validates near perfect and ranks open leads, which all look alike on that field, no better.

Whether a field is filled is compared between outcomes on each contact's first snapshot, among
the contacts whose outcome is complete (newer ones still open would dilute a field that every
disqualified contact carries). A feature is left out when its presence splits the outcomes
almost perfectly, in one of two shapes:
  - far apart: the share filled differs by at least `GAP` between converted and other contacts
    (95 % against 5 %, or 100 % against 15 %);
  - one-sided: filled on at most `NEVER` of one outcome and on at least `MOSTLY` of the other
    (75 % of converted and none of the others: what an enrichment run on open leads leaves).
A field filled at random on both outcomes, or filled somewhat more often on one (a real signal,
such as a company size given more often by serious buyers), is kept.

Features computed as of the snapshot (engagement counted up to it, its age, the stage logged by
then) are not judged: what happened before the snapshot is not a value written at the outcome.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.learning.features import ABSENT_VALUES, TIMED_FEATURES
from agents.learning.training import Snapshot

GAP = 0.8       # filled on this much more of one outcome than of the other
NEVER = 0.02    # "almost none" of one outcome: at most this share filled ...
MOSTLY = 0.5    # ... and "most" of the other: at least this share filled
MIN_EACH = 10   # contacts of each outcome needed to judge at all


def present(name: str, value: Any) -> bool:
    """Whether the store field behind feature `name` was filled (a 0 for "no phone" is not a phone)."""
    return value is not None and not (name in ABSENT_VALUES and value == ABSENT_VALUES[name])


def leaked_features(snaps: Sequence[Snapshot], among: set[int] | None = None) -> dict[str, str]:
    """feature -> why it is left out, for every feature whose presence splits the outcomes (see above)."""
    first: dict[int, Snapshot] = {}
    for s in snaps:
        if among is None or s.contact_id in among:
            first.setdefault(s.contact_id, s)
    won = [s for s in first.values() if s.label == 1]
    lost = [s for s in first.values() if s.label == 0]
    if len(won) < MIN_EACH or len(lost) < MIN_EACH:
        return {}
    names = {k for s in first.values() for k in s.features} - TIMED_FEATURES
    dropped = {}
    for name in sorted(names):
        pw = sum(present(name, s.features.get(name)) for s in won) / len(won)
        pl = sum(present(name, s.features.get(name)) for s in lost) / len(lost)
        if splits(pw, pl):
            dropped[name] = (f"filled on {pw:.0%} of converted and {pl:.0%} of other contacts: probably filled "
                             "because of the outcome, so it cannot tell open leads apart")
    return dropped


def splits(share_won: float, share_lost: float) -> bool:
    """Whether these filled shares (of converted and of other contacts) split the outcomes almost perfectly."""
    low, high = sorted((share_won, share_lost))
    return high - low >= GAP or (low <= NEVER and high >= MOSTLY)


__all__ = ["GAP", "MIN_EACH", "MOSTLY", "NEVER", "leaked_features", "present", "splits"]
