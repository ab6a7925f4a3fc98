"""Reading untrusted text (email bodies, transcripts, imported names and titles) without obeying it.

Agents quote what people wrote and check what a model wrote. Both need the same care: a sentence is
quoted back only when it is short and carries no address, link, markup or text aimed at a machine;
a name is used only when it looks like a name; links and addresses the CRM did not provide are
found so that a human can see them. Kept apart so every agent applies one set of rules.
"""
from __future__ import annotations

import re
from collections.abc import Iterable


def rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


# What a quoted sentence must not carry: addresses, links, markup, text aimed at a machine.
_UNQUOTABLE = rx(r"@|https?://|www\.|<|>|\bignore\b|instruction|assistant|\bsystem\b|prompt|\bAI\b|price list|customer contacts")
_GREETING = rx(r"^(hi|hello|hey|dear|good (morning|afternoon))\b.{0,40},?$")
_SIGNOFF = rx(r"^(thanks|thank you|best|regards|kind regards|cheers|sincerely)\b.{0,20},?$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NAME_OK = re.compile(r"^[^\W\d_][\w .'\-]{0,39}$")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_LINK = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
# Text written at a machine rather than said to people in a meeting.
MACHINE_AIMED = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules?|above|previous|prior)\b|\bsystem prompt\b|"
    r"\b(new|these|following) instructions\b|\bas an ai\b|\byou are (now )?(an? )?(ai|assistant|language model)\b|"
    r"\b(assistant|system|ai)\s*:|<\s*/?\s*(system|instructions?|data)\b",
    re.IGNORECASE)


def body_sentences(body: str | None) -> list[str]:
    """The sentences someone wrote: greeting, sign-off, signature and quoted replies left out."""
    if not body:
        return []
    # An HTML comment is invisible to the person reading the email: whatever it says is not theirs.
    body = _HTML_COMMENT.sub("\n", body)
    lines = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line or line.startswith(">"):
            continue
        if _SIGNOFF.match(line):
            break  # everything after "Thanks," is the signature
        if _GREETING.match(line):
            continue
        lines.append(line)
    text = " ".join(lines)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def quotable(sentence: str, limit: int = 200, minimum: int = 8) -> str | None:
    """The sentence if it is safe to quote back (short, no address, link or machine-aimed text)."""
    s = " ".join(sentence.split())
    if not minimum <= len(s) <= limit or _UNQUOTABLE.search(s):
        return None
    return s


def first_name_of(name: str | None) -> str | None:
    if not name:
        return None
    clean = " ".join(name.split())
    return clean if _NAME_OK.match(clean) else None


def one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def outside_references(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """Email addresses and links in text that the context did not provide."""
    known = {a.lower() for a in allowed if a}
    found = [m.group(0) for m in _ADDRESS.finditer(text)] + [m.group(0).rstrip(".,)") for m in _LINK.finditer(text)]
    return [f for f in found if f.lower() not in known]


def printable(text: str | None, limit: int = 80, default: str = "") -> str:
    """Imported text fit to print in a title or brief: one line, short, nothing machine-aimed."""
    if not text:
        return default
    line = one_line(text, limit)
    return line if quotable(line, limit) or (len(line) < 8 and line.replace(" ", "").isalnum()) else default
