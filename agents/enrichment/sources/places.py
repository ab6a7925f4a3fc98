"""Countries as a phone number or a web address reveals them.

A small table, not a full numbering plan: the calling code and the country-code top-level
domains of the markets a B2B book usually holds; a number or domain from elsewhere simply yields
no fact (nothing is guessed). Phone numbers themselves are normalised on import
(`crm_core.importing.normalize.phone_key`); enrichment only reads the country off them.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Country(NamedTuple):
    name: str
    iso2: str
    calling_code: str
    trunk: str            # what a national number starts with ("0" in the UK), "" if nothing
    tlds: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country("United States", "US", "1", "", ("us",)),
    Country("Canada", "CA", "1", "", ("ca",)),
    Country("United Kingdom", "GB", "44", "0", ("uk",)),
    Country("Ireland", "IE", "353", "0", ("ie",)),
    Country("Germany", "DE", "49", "0", ("de",)),
    Country("France", "FR", "33", "0", ("fr",)),
    Country("Netherlands", "NL", "31", "0", ("nl",)),
    Country("Belgium", "BE", "32", "0", ("be",)),
    Country("Luxembourg", "LU", "352", "", ("lu",)),
    Country("Switzerland", "CH", "41", "0", ("ch",)),
    Country("Austria", "AT", "43", "0", ("at",)),
    Country("Italy", "IT", "39", "", ("it",)),
    Country("Spain", "ES", "34", "", ("es",)),
    Country("Portugal", "PT", "351", "", ("pt",)),
    Country("Sweden", "SE", "46", "0", ("se",)),
    Country("Norway", "NO", "47", "", ("no",)),
    Country("Denmark", "DK", "45", "", ("dk",)),
    Country("Finland", "FI", "358", "0", ("fi",)),
    Country("Poland", "PL", "48", "", ("pl",)),
    Country("Czech Republic", "CZ", "420", "", ("cz",)),
    Country("Israel", "IL", "972", "0", ("il",)),
    Country("United Arab Emirates", "AE", "971", "0", ("ae",)),
    Country("South Africa", "ZA", "27", "0", ("za",)),
    Country("India", "IN", "91", "0", ("in",)),
    Country("Singapore", "SG", "65", "", ("sg",)),
    Country("Japan", "JP", "81", "0", ("jp",)),
    Country("South Korea", "KR", "82", "0", ("kr",)),
    Country("China", "CN", "86", "0", ("cn",)),
    Country("Hong Kong", "HK", "852", "", ("hk",)),
    Country("Australia", "AU", "61", "0", ("au",)),
    Country("New Zealand", "NZ", "64", "0", ("nz",)),
    Country("Brazil", "BR", "55", "0", ("br",)),
    Country("Mexico", "MX", "52", "", ("mx",)),
    Country("Argentina", "AR", "54", "0", ("ar",)),
    Country("Chile", "CL", "56", "", ("cl",)),
)

_BY_NAME = {c.name.lower(): c for c in COUNTRIES}
_BY_ISO = {c.iso2.lower(): c for c in COUNTRIES}
_ALIASES = {"usa": "United States", "united states of america": "United States", "u.s.": "United States",
            "u.s.a.": "United States", "uk": "United Kingdom", "great britain": "United Kingdom",
            "england": "United Kingdom", "scotland": "United Kingdom", "wales": "United Kingdom",
            "deutschland": "Germany", "holland": "Netherlands", "the netherlands": "Netherlands",
            "uae": "United Arab Emirates", "czechia": "Czech Republic", "korea": "South Korea"}
_BY_TLD = {tld: c for c in COUNTRIES for tld in c.tlds}
# Codes sorted longest first, so "+353" is read as Ireland before "+35" could match anything.
_CODES = sorted({c.calling_code for c in COUNTRIES}, key=len, reverse=True)
# +1 is shared by the US, Canada and the Caribbean; Canada's area codes tell it apart.
CANADA_AREA_CODES = frozenset(
    "204 226 236 249 250 257 263 289 306 343 354 365 367 368 382 403 416 418 428 431 437 438 450 460 468 474 506 "
    "514 519 548 579 581 584 587 604 613 639 647 672 683 705 709 742 753 778 780 782 807 819 825 867 873 879 902 905".split()
)
# Area codes of +1 outside the US and Canada (the Caribbean, Bermuda, the Pacific territories):
# such a number says nothing this table can name.
OTHER_NANP_AREA_CODES = frozenset(
    "242 246 264 268 284 340 345 441 473 649 658 664 670 671 684 721 758 767 784 787 809 829 849 868 869 876 939".split()
)
_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
_NON_DIGIT = re.compile(r"\D")
# ccTLDs sold worldwide as brand names say nothing about where a company is.
GENERIC_CCTLDS = frozenset({"io", "co", "ai", "tv", "me", "ly", "fm", "gg", "sh", "to", "cc", "ws", "app", "dev", "so", "vc", "xyz"})
SECOND_LEVEL = frozenset({"co.uk", "org.uk", "ac.uk", "com.au", "net.au", "org.au", "co.nz", "com.br", "com.mx", "co.jp",
                          "co.in", "com.sg", "com.hk", "co.za", "com.ar", "co.il", "com.cn", "co.kr"})


def country(value: str | None) -> Country | None:
    """The country a stored value names: 'United Kingdom', 'UK', 'GB', 'gb' all read as one."""
    if not value:
        return None
    key = " ".join(value.strip().lower().split())
    if key in _ALIASES:
        key = _ALIASES[key].lower()
    return _BY_NAME.get(key) or _BY_ISO.get(key)


def country_of_domain(domain: str | None) -> Country | None:
    if not domain or "." not in domain:
        return None
    tld = domain.strip().lower().rstrip(".").rsplit(".", 1)[1]
    if tld in GENERIC_CCTLDS:
        return None
    return _BY_TLD.get(tld)


def _international_digits(phone: str) -> str | None:
    text = _EXTENSION.sub("", phone).strip()
    digits = _NON_DIGIT.sub("", text)
    if text.startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("011") and len(digits) > 11:  # dialled from North America
        return digits[3:]
    return None


def country_of_phone(phone: str | None) -> Country | None:
    """The country an international number (+44..., 0044...) belongs to; None for a local number."""
    if not phone:
        return None
    digits = _international_digits(phone)
    if not digits:
        return None
    for code in _CODES:
        if digits.startswith(code):
            if code == "1":
                area = digits[1:4]
                if area in OTHER_NANP_AREA_CODES:
                    return None
                return _BY_ISO["ca"] if area in CANADA_AREA_CODES else _BY_ISO["us"]
            return next(c for c in COUNTRIES if c.calling_code == code)
    return None
