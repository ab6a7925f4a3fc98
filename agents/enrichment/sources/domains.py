"""What an email domain says: whether it is a company's, and the company name it spells."""
from __future__ import annotations

import re

from agents.enrichment.sources.places import SECOND_LEVEL
from agents.learning.features import FREE_MAIL

# Reserved names (RFC 2606) that no company owns: addresses there are personal or test ones.
RESERVED = frozenset({"example.com", "example.net", "example.org"})
_ROLE_LOCAL = re.compile(r"^(info|sales|hello|contact|admin|support|office|team|marketing|billing|hr|jobs|noreply|no-reply|accounts?)$",
                         re.IGNORECASE)
_NAME_PART = re.compile(r"^[a-z][a-z'\-]{1,30}$")
_LEGAL = {"inc", "llc", "ltd", "gmbh", "plc", "corp", "co", "ag", "sa", "bv", "ab"}


def domain_of(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain or None


def host_of(address: str | None) -> str | None:
    """'https://www.Acme.co.uk/about' -> 'acme.co.uk': the host a web address or bare domain names."""
    if not address or not address.strip():
        return None
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", address.strip().lower())
    host = re.split(r"[/?#]", text, maxsplit=1)[0].rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    host = host.removeprefix("www.")
    return host or None


def is_company_domain(domain: str | None) -> bool:
    return bool(domain) and "." in domain and domain not in RESERVED and not FREE_MAIL.search(domain)


def registrable_label(domain: str) -> str | None:
    """'mail.acme-corp.co.uk' -> 'acme-corp': the label a company chose."""
    labels = [part for part in domain.lower().strip(".").split(".") if part]
    if labels and labels[0] == "www":
        labels = labels[1:]
    if len(labels) < 2:
        return None
    if len(labels) >= 3 and ".".join(labels[-2:]) in SECOND_LEVEL:
        return labels[-3]
    return labels[-2]


def company_name_from_domain(domain: str | None) -> str | None:
    """'acme-corp.example' -> 'Acme Corp'. Only word breaks the domain itself shows are used."""
    if not is_company_domain(domain):
        return None
    label = registrable_label(domain)  # type: ignore[arg-type]
    if not label or label.isdigit() or len(label) < 2:
        return None
    words = [w for w in re.split(r"[-_]+", label) if w]
    pretty = []
    for w in words:
        if w in _LEGAL:
            pretty.append(w.upper() if len(w) <= 3 and w not in ("inc", "ltd", "corp") else w.capitalize())
        else:
            pretty.append(w.capitalize())
    return " ".join(pretty) or None


def names_from_email(email: str | None) -> tuple[str, str] | None:
    """('Ann', 'Buyer') from 'ann.buyer@...' or 'ann_buyer@...'; None for 'info@' or 'abuyer@'."""
    if not email or "@" not in email:
        return None
    local = email.split("@", 1)[0].split("+", 1)[0].lower()
    if _ROLE_LOCAL.match(local):
        return None
    parts = re.split(r"[._]", local)
    if len(parts) != 2 or not all(_NAME_PART.match(p) for p in parts):
        return None
    return tuple(_capitalise(p) for p in parts)  # type: ignore[return-value]


def _capitalise(part: str) -> str:
    """'o'brien' -> "O'Brien", 'smith-jones' -> 'Smith-Jones'."""
    return re.sub(r"(^|['\-])([a-z])", lambda m: m.group(1) + m.group(2).upper(), part)
