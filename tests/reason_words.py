"""Which way a lead-score reason reads, judged from its text alone as a rep would read it.

Kept apart from `agents.learning.explain` on purpose: a test that asked the explainer which way its
own words point could not catch it writing the wrong words.
"""
from __future__ import annotations

import re

# A comparison with the typical lead decides: it is what the points measure.
_VERSUS_TYPICAL = re.compile(r", (more recently|longer ago|more|fewer|less) than (?:for )?a typical lead here$")
_UP = [re.compile(p) for p in (
    r"^read the pricing page \d+ times?\b", r"^viewed \d+ pages?\b", r"^downloaded \d+ ", r"^opened \d+ emails?\b",
    r"^clicked \d+ email links?\b", r"^replied \d+ times?\b", r"^had \d+ (meetings?|calls?)\b", r"^has \d+ meetings? booked",
    r"^submitted \d+ forms?\b", r"^asked for a demo \d+ times?\b", r"^exchanged \d+ LinkedIn", r"^\d+ actions? logged",
    r"^recent ", r"^was active \d+ hours? ago", r"^has a phone number", r"^uses a company email",
    r"converted \d+(\.\d+)?x as often as",
)]
_DOWN = [re.compile(p) for p in (
    r"^has not ", r"^no (page views|downloads|LinkedIn|actions|recent|activity for|phone number)\b", r"^opened no ",
    r"^clicked no ", r"^had no ", r"^has no ", r"^submitted no ", r"^has never been active", r"^uses a free email",
    r"converted \d+(\.\d+)?x less often than",
)]


def direction(reason: str) -> int:
    """+1 when the words read as good news for converting, -1 as bad news, 0 as neither."""
    versus = _VERSUS_TYPICAL.search(reason)
    if versus:
        return 1 if versus.group(1) in ("more", "more recently") else -1
    if any(p.search(reason) for p in _UP):
        return 1
    if any(p.search(reason) for p in _DOWN):
        return -1
    return 0


_SIDE = re.compile(r"(Raised|Lowered) by: (.*?)\.(?= Lowered by: | Up from | Down from | Next: |$)")
_REASON = re.compile(r"(.*?) \(([+-]\d+)\)(?:; |$)")


def sides(reasoning: str) -> dict[int, list[tuple[str, int]]]:
    """{+1: [(words, points)] listed under "Raised by", -1: those under "Lowered by"}."""
    out: dict[int, list[tuple[str, int]]] = {1: [], -1: []}
    for side, listed in _SIDE.findall(reasoning):
        out[1 if side == "Raised" else -1] = [(w, int(p)) for w, p in _REASON.findall(listed)]
    return out
