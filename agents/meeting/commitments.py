"""Commitments people made in a meeting, read from its transcript by rule and worded as tasks.

"I'll send the quote by Friday", "we will loop in legal", "let me check with finance": a sentence a
person said that commits them to something after the meeting, with the deadline they named. Lines
not said by a person, sentences written at an AI and commitments naming an address or link the CRM
does not know are left out, and a transcript that tries to steer the CRM is reported. This is the
meeting agent's built-in reading of a transcript, kept apart because it is a grammar of its own.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from agents.common.text_reading import MACHINE_AIMED, one_line, outside_references, printable
from agents.meeting.due_dates import parse_due
from agents.meeting.transcripts import fold_name, is_person, match_participant, parse_transcript, speaker_label

if TYPE_CHECKING:  # annotations only: this reading needs nothing of the agent at run time
    from agents.meeting.models import Participant

# How a task's text is turned from what the speaker said into what reads right in someone's list.
Reword = Callable[[str, "Participant | None"], str]

_COMMIT = re.compile(
    r"\b(?P<who>I|we)\s*(?P<modal>'ll|\u2019ll|\swill|\sam going to|'m going to|\u2019m going to|\sare going to|'re going to|"
    r"\u2019re going to|\sshall|\scan)\s+(?P<rest>(?:[^.!?;]|[.](?=\S))+)", re.IGNORECASE)
_LET_ME = re.compile(r"\blet me\s+(?P<rest>(?:[^.!?;]|[.](?=\S))+)", re.IGNORECASE)
# "I'll send the quote, and I'll call legal": two commitments, one clause each.
_CLAUSES = re.compile(r";\s*|,?\s+(?:and|then|but|also)\s+(?=(?:I|we)\b)|,\s*(?=(?:I|we)\b)")
# Said about the meeting itself ("Today I'll show..."): not something to do afterwards.
_IN_MEETING = re.compile(r"^(show|walk (you|everyone|the team) through|start|begin|explain|demo|present|share my screen|go through|"
                         r"cover|talk|recap|introduce myself|run through)\b", re.IGNORECASE)
_VAGUE = re.compile(r"^\w+ (it|that|this)\b", re.IGNORECASE)
_NOT_AN_ACTION = re.compile(r"^(be|see|admit|say|probably|not|never|need to think|think about it|have to see|take a look at that later)\b",
                            re.IGNORECASE)
_DELIVER_VERBS = ("send", "share", "get", "set", "book", "introduce", "confirm", "ask", "prepare", "schedule", "put", "walk",
                  "pull", "follow", "check", "loop", "arrange", "draft", "provide", "forward", "review", "update", "sign",
                  "take", "call", "email", "invite", "circulate", "write")
_CUT = re.compile(r",?\s+(?:so that|so|because|since|if|once|as soon as|unless|and then we can)\b.*$", re.IGNORECASE)
_CONDITION = re.compile(r"^(?:and\s+)?(?P<cond>(?:once|when|after|as soon as)\s[^,]{3,80}),?\s*$", re.IGNORECASE)


@dataclass
class Commitment:
    speaker: str
    participant: Participant | None
    text: str
    due: date | None
    due_said: str | None
    quote: str


def _clause_commitments(clause: str, whole: str, speaker: str, who: Participant | None, meeting_day: date,
                        reword: Reword) -> list[Commitment]:
    """Commitments in one clause ("I'll send the quote by Friday"), worded as tasks."""
    out = []
    for rx in (_COMMIT, _LET_ME):
        for m in rx.finditer(clause):
            rest = m.group("rest").strip()
            if rx is _COMMIT and m.group("modal").strip().lower() == "can" and not rest.lower().startswith(_DELIVER_VERBS):
                continue  # "we can do semi-annual billing" offers; it does not commit
            if _NOT_AN_ACTION.match(rest):
                continue
            # The date may sit in the clause, or elsewhere in the sentence ("I'll sign; let's target Friday").
            due = parse_due(rest, meeting_day) or parse_due(clause, meeting_day) or parse_due(whole, meeting_day)
            if _IN_MEETING.match(rest) and (due is None or due.day <= meeting_day):
                continue
            task = rest.replace(due.said, " ") if due is not None and due.said in rest else rest
            task = _CUT.sub("", task)
            task = re.sub(r"\s+", " ", task).strip(" ,;:-")
            task = re.sub(r"^(?:then|also|just|definitely|quickly)\s+", "", task, flags=re.IGNORECASE)
            if len(task) < 3 or (_VAGUE.match(task) and len(task.split()) <= 4):
                continue  # "put it in writing": what "it" is lives elsewhere in the transcript
            cond = _CONDITION.match(clause[:m.start()].strip())
            text = reword(task, who)
            text = text[0].upper() + text[1:]
            if cond:
                text += f" ({cond.group('cond').strip().lower()})"
            out.append(Commitment(speaker, who, text[:300], due.day if due else None, due.said if due else None,
                                  one_line(whole, 500)))
    return out


def extract_commitments(transcript: str, participants: Sequence[Participant], known: Sequence[str], meeting_day: date,
                        reword: Reword) -> tuple[list[Commitment], list[str]]:
    """Commitments people made in the transcript, and notes on what was left out and why.

    Left out: lines not spoken by a person ("assistant: ..."), sentences written at a machine
    ("ignore previous instructions..."), and commitments naming an address or link the CRM does
    not know for this meeting (an injected "I'll email the contract to x@y.com"). `known` are the
    addresses the CRM has for the meeting; `reword` turns "I"/"you" in a task into names.
    """
    notes: list[str] = []
    found: list[Commitment] = []
    ignored: set[str] = set()
    outside = aimed = 0
    for turn in parse_transcript(transcript):
        if not is_person(turn.speaker):
            ignored.add(speaker_label(turn.speaker))
            continue
        who = match_participant(turn.speaker, participants)
        for whole in re.split(r"(?<=[.!?])\s+", turn.text):
            if whole.rstrip().endswith("?"):
                continue  # "Will you send...?" asks, it does not commit
            if MACHINE_AIMED.search(whole):
                aimed += 1
                continue
            for clause in _CLAUSES.split(whole):
                for c in _clause_commitments(clause, whole, turn.speaker, who, meeting_day, reword):
                    if outside_references(f"{c.text} {whole}", known):
                        outside += 1
                        continue
                    found.append(c)
    if ignored:
        notes.append(f"lines by {', '.join(sorted(ignored))} are not a person in the meeting: ignored")
    if aimed:
        notes.append(f"{aimed} sentence{'s' if aimed != 1 else ''} written at an AI rather than said in the meeting: ignored")
    if outside:
        notes.append(f"{outside} commitment{'s' if outside != 1 else ''} naming an address or link the CRM does "
                     "not know for this meeting: not turned into an item")
    return _dedupe(found), notes


def transcript_warnings(transcript: str, known: Sequence[str]) -> list[str]:
    """What in the transcript looks like an attempt to steer the CRM; a human should see it.

    Computed from the transcript alone, so the same warning stands whatever reasoner decided.
    """
    warnings: list[str] = []
    for turn in parse_transcript(transcript):
        speaker = speaker_label(turn.speaker)
        refs = sorted(set(outside_references(turn.text, known)))
        if not is_person(turn.speaker):
            if refs or MACHINE_AIMED.search(turn.text) or _COMMIT.search(turn.text) or re.search(
                    r"\b(email|send|forward|share|upload|post)\b", turn.text, re.IGNORECASE):
                warnings.append(f"a line by \u201c{speaker}\u201d gives instructions" + (f" naming {', '.join(refs[:2])}" if refs else ""))
        elif MACHINE_AIMED.search(turn.text):
            warnings.append(f"{speaker} has text written at an AI" + (f" naming {', '.join(refs[:2])}" if refs else ""))
        elif refs and re.search(r"\b(email|send|forward|share|upload|post)\w*\b", turn.text, re.IGNORECASE):
            warnings.append(f"{speaker} asks for something to go to {', '.join(refs[:2])}, which the CRM does not know")
    return list(dict.fromkeys(warnings))[:5]


_STOP = {"the", "a", "an", "and", "to", "of", "for", "with", "by", "on", "in", "it", "them", "their", "our", "your", "this", "that"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


def _dedupe(items: list[Commitment]) -> list[Commitment]:
    """The same promise said twice ("I can send the report" ... "I'll send the report by Friday"):
    keep the later one, which usually carries the date."""
    kept: list[Commitment] = []
    for item in items:
        words = _words(item.text)
        same = [k for k in kept if k.speaker == item.speaker and words and
                len(words & _words(k.text)) / max(1, min(len(words), len(_words(k.text)))) >= 0.6]
        for k in same:
            kept.remove(k)
        if same and item.due is None:
            item.due, item.due_said = next(((k.due, k.due_said) for k in same if k.due), (None, None))
        kept.append(item)
    return kept


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text if first.isupper() and len(first) > 1 else text[:1].lower() + text[1:]


def task_title(text: str, owner_name: str, who: Participant | None) -> str:
    """A task title that reads right in the rep's list: their side's commitments name who made them."""
    text = one_line(text, 400).rstrip(".")
    if who is not None and who.side == "rep":
        return text[:1].upper() + text[1:]
    name = printable(owner_name, 60, "They")
    if fold_name(text).startswith(fold_name(name.split(" ")[0])):
        return text[:1].upper() + text[1:]
    return f"{name} to {_lower_first(text)}"[:500]


def similar_titles(a: str, b: str) -> bool:
    wa, wb = _words(a), _words(b)
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= 0.8
