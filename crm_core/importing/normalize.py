"""Keys the store dedupes on, computed the same way everywhere (import, merge, forms).

Each function takes one value and returns the key or None. The vectorised column versions in
`parsing.py` follow the same rules; `tests/test_import_parsing.py` checks they agree.
"""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_PHONE_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
_NON_DIGIT = re.compile(r"\D")
_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def name_key(name: str | None) -> str | None:
    """Lower-cased, trimmed, inner spaces collapsed: the key accounts dedupe on without a domain."""
    if name is None:
        return None
    key = _SPACES.sub(" ", name).strip().lower()
    return key or None


def email_key(email: str | None) -> str | None:
    """lower(email): the `email_normalized` column, unique case-insensitively."""
    if email is None:
        return None
    key = email.strip().lower()
    return key or None


def email_canonical(email_normalized: str | None) -> str | None:
    """The mailbox behind an address: no +tag, no dots in the local part.

    Two different addresses with the same canonical form are likely one person
    (jane.doe+crm@x.com and janedoe@x.com); this is a hint for a human, never a merge key.
    """
    if not email_normalized or "@" not in email_normalized:
        return None
    local, _, domain = email_normalized.rpartition("@")
    local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}" if local else None


def phone_key(phone: str | None) -> str | None:
    """E.164 (+digits) where it can be read, else the bare digits; None when it is not a phone.

    Ten digits starting 2-9 are read as North American (+1): that is how US/Canadian CRM exports
    write them, and no national number elsewhere with a trunk 0 is mistaken for one.
    """
    if not phone:
        return None
    text = _PHONE_EXTENSION.sub("", phone).strip()
    international = text.startswith("+")
    digits = _NON_DIGIT.sub("", text)
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if not 7 <= len(digits) <= 15:
        return None
    if international:
        return "+" + digits
    if len(digits) == 10 and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1":
        return "+" + digits
    return digits


def domain_key(value: str | None) -> str | None:
    """A company domain from a domain, a URL or an email address: 'https://www.Acme.com/x' -> 'acme.com'."""
    if not value:
        return None
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rpartition("@")[2]
    text = _URL_SCHEME.sub("", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    if text.startswith("www."):
        text = text[4:]
    text = text.strip(".")
    if "." not in text or " " in text:
        return None
    return text


def fold(text: str) -> str:
    """Accents off, lower case, punctuation to spaces: 'José-Luis  O'Neil' -> 'jose luis o neil'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(_NON_ALNUM.sub(" ", plain).split())


def attribute_key(header: str) -> str:
    """Custom attribute name for a CSV header: 'Lead Status' -> 'lead_status'."""
    key = "_".join(fold(header).split())
    return key or "column"


def header_key(header: str) -> str:
    """Header compared to synonyms: letters and digits only, 'E-mail Address' -> 'emailaddress'."""
    return fold(header).replace(" ", "")
