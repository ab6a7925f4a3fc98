"""Reading a meeting transcript: who said what, and whether a speaker is a person in the meeting.

Transcripts are untrusted text, pasted or imported, and may hold lines by "assistant", "SYSTEM" or a
note-taking bot that were never said by anyone in the room. This module splits a transcript into
speaker turns, tells people from such speakers, and matches a speaker to the meeting's participants.
It exists apart from the meeting agent so that reading commitments and checking a reasoner's items
use the same reading.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from agents.common.text_reading import one_line

if TYPE_CHECKING:  # annotations only: this reading needs nothing of the agent at run time
    from agents.meeting.models import Participant

TRANSCRIPT_LIMIT = 60_000


class Utterance(NamedTuple):
    speaker: str
    text: str


_LINE = re.compile(r"^\s*(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*[-\u2013]?\s*)?(?P<speaker>[^\W\d_][\w .'\-]{0,59}?)\s*:\s+(?P<text>\S.*)$")
# A speaker line by one of these is not a person in the meeting: text aimed at an AI, or notes.
_NOT_A_PERSON_WORDS = frozenset({
    "system", "assistant", "bot", "chatbot", "gpt", "chatgpt", "claude", "copilot", "llm", "model", "prompt",
    "instruction", "instructions", "developer", "admin", "administrator", "note", "notes", "transcript",
    "summary", "agenda", "warning", "important", "user", "tool", "function",
})
_AI = re.compile(r"^(ai|a\.i\.)$|\bAI\b")


def speaker_label(speaker: str) -> str:
    """A speaker name fit to print in a note: name characters only, short."""
    return one_line(re.sub(r"[^\w .'\-]", "", speaker), 40) or "an unnamed speaker"


def is_person(speaker: str) -> bool:
    """False for 'assistant', 'SYSTEM', 'AI Notes', 'Meeting bot' and the like."""
    words = set(fold_name(speaker).split())
    return bool(words) and not (words & _NOT_A_PERSON_WORDS) and not _AI.search(speaker.strip())


def parse_transcript(text: str) -> list[Utterance]:
    """Speaker turns; a line without 'Name:' continues the turn before it."""
    turns: list[Utterance] = []
    for raw in text[:TRANSCRIPT_LIMIT].splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m and len(m.group("speaker").split()) <= 4:
            turns.append(Utterance(" ".join(m.group("speaker").split()), m.group("text").strip()))
        elif turns:
            turns[-1] = Utterance(turns[-1].speaker, turns[-1].text + " " + line)
    return turns


def fold_name(name: str) -> str:
    return " ".join(re.sub(r"[^\w ]", " ", name.lower()).split())


def match_participant(speaker: str, participants: Sequence[Participant]) -> Participant | None:
    s = fold_name(speaker)
    if not s:
        return None
    exact = [p for p in participants if fold_name(p.name) == s]
    if exact:
        return exact[0]
    tokens = set(s.split())
    # "Nina" for "Nina Patel", or "Ms Patel": one participant sharing a name part, and only one.
    partial = [p for p in participants if tokens & set(fold_name(p.name).split())]
    return partial[0] if len(partial) == 1 else None
