"""Job titles: whether a value reads as one, its tidy form, and the seniority and department it names.

Seniority and department use the lead-scoring vocabulary (`agents.learning.features`), so a
contact enriched here is scored with the same words. A title that does not read as a job title
(a sentence, markup, an address, a request to an AI) is left alone: nothing is derived from it,
which is also what keeps an instruction typed into a CSV title cell from steering enrichment.
"""
from __future__ import annotations

import re

from agents.learning.features import job_function
from agents.learning.features import seniority as seniority_of

MAX_CHARS = 100
MAX_WORDS = 8

_STRANGE = re.compile(r"[!?;:<>{}\[\]\"`=|\\*#\n\r\t]|--|https?://|www\.|@")
_INSTRUCTION = re.compile(r"\b(ignore|disregard|instructions?|override|jailbreak)\b", re.IGNORECASE)
_INITIALS = re.compile(r"^([a-z]\.)+$")
_DOTTED_OK = frozenset({"sr.", "jr.", "snr.", "dir.", "mgr.", "vp.", "assoc.", "asst.", "exec.", "dept.", "intl.", "st.",
                        "co.", "inc.", "ltd.", "mktg.", "acct.", "coord."})
# Abbreviations expanded in the tidy form; ambiguous ones ("eng": engineer or engineering) are left as written.
_EXPAND = {"sr": "Senior", "snr": "Senior", "jr": "Junior", "mgr": "Manager", "dir": "Director", "mktg": "Marketing",
           "acct": "Account", "exec": "Executive", "assoc": "Associate", "asst": "Assistant", "coord": "Coordinator",
           "dept": "Department", "intl": "International", "v.p": "VP", "vp": "VP"}
_ACRONYMS = {a.lower(): a for a in (
    "VP", "SVP", "EVP", "AVP", "CEO", "CFO", "CTO", "COO", "CMO", "CIO", "CRO", "CPO", "CSO", "CISO", "CDO", "HR", "BI",
    "FP&A", "SDR", "BDR", "EMEA", "APAC", "AMER", "LATAM", "ML", "QA", "UX", "CRM", "ERP", "SEO", "B2B", "R&D", "SaaS",
    "DevOps", "GTM")}
# Words that are acronyms in a title written all in one case, but ordinary words in prose.
_CASE_ONLY_ACRONYMS = {"it": "IT", "pr": "PR", "ai": "AI", "ui": "UI", "gm": "GM"}
_SMALL = frozenset({"of", "and", "the", "for", "in", "to", "at", "on", "&"})
_TOKEN = re.compile(r"(\s+|/|,|\s-\s|\(|\))")


def not_a_title(text: str | None) -> str | None:
    """Why `text` does not read as a job title, or None when it does."""
    if text is None or not text.strip():
        return "it is empty"
    value = text.strip()
    if len(value) > MAX_CHARS:
        return f"it is longer than {MAX_CHARS} characters"
    if _STRANGE.search(value):
        return "it holds characters, markup or an address no job title has"
    if _INSTRUCTION.search(value):
        return "it reads as an instruction, not a job title"
    words = value.split()
    if len(words) > MAX_WORDS:
        return f"it has more than {MAX_WORDS} words"
    for word in words:
        w = word.lower().rstrip(",")
        if "." in w and w not in _DOTTED_OK and not _INITIALS.match(w):
            return "it reads as a sentence"
    if not re.search(r"[^\W\d_]", value):
        return "it has no letters"
    return None


def tidy(title: str) -> str | None:
    """The title in standard form ('sr. mktg mgr' -> 'Senior Marketing Manager'), or None if it is already."""
    if not_a_title(title):
        return None
    text = " ".join(title.split())
    letters = [ch for ch in text if ch.isalpha()]
    one_case = bool(letters) and (all(ch.islower() for ch in letters) or all(ch.isupper() for ch in letters))
    parts = _TOKEN.split(text)
    out: list[str] = []
    first_word = True
    for part in parts:
        if not part or _TOKEN.fullmatch(part):
            out.append(part)
            continue
        out.append(_word(part, one_case=one_case, first=first_word))
        first_word = False
    result = "".join(out)
    return result if result != text or text != title else None


def _word(word: str, *, one_case: bool, first: bool) -> str:
    key = word.lower()
    bare = key.rstrip(".")
    if bare in _EXPAND:
        return _EXPAND[bare]
    if key in _ACRONYMS:
        return _ACRONYMS[key]
    if one_case:
        if key in _CASE_ONLY_ACRONYMS:
            return _CASE_ONLY_ACRONYMS[key]
        if key in _SMALL and not first:
            return key
        return "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))
    return word


# "Vice President" holds "president", which the shared rules read as C-level: say VP before asking them.
_VICE_PRESIDENT = re.compile(r"\bvice[- ]president\b", re.IGNORECASE)
# Functions the shared rules call "other" but a sales team routes by.
_MORE_FUNCTIONS = (
    ("finance", re.compile(r"\b(fp&a|financial planning)\b", re.IGNORECASE)),
    ("customer_success", re.compile(r"\bcustomer success\b", re.IGNORECASE)),
    ("data", re.compile(r"\b(data|analytics|business intelligence|bi)\b", re.IGNORECASE)),
    ("product", re.compile(r"\bproduct\b", re.IGNORECASE)),
)


def _plain(title: str) -> str:
    return _VICE_PRESIDENT.sub("VP", tidy(title) or title)


# Titles that name an individual contributor outright (the shared rules only default to "individual").
_INDIVIDUAL = re.compile(r"\b(analyst|engineer|developer|specialist|representative|rep|associate|account executive|"
                         r"consultant|designer|accountant|scientist|architect|administrator|assistant|intern|student|"
                         r"trainee|advisor|agent|officer)\b", re.IGNORECASE)


def seniority(title: str | None) -> str | None:
    """c_level, vp, director, manager or individual; None for a value that is not a title."""
    if title is None or not_a_title(title):
        return None
    return seniority_of(_plain(title))


def names_individual(title: str) -> bool:
    """True when the title itself says individual contributor (Analyst, Engineer ...), not just by default."""
    return bool(_INDIVIDUAL.search(_plain(title)))


def department(title: str | None) -> str | None:
    """The function a title names (sales, marketing, engineering, data, ...); None when it names none."""
    if title is None or not_a_title(title):
        return None
    plain = _plain(title)
    name = job_function(plain)
    if name in (None, "other"):
        name = next((n for n, pattern in _MORE_FUNCTIONS if pattern.search(plain)), None)
    return name
