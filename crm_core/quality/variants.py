"""Spelling variants of one value: "VP Sales" / "VP, Sales" / "vp sales", "USA" / "U.S.", typos.

Two passes. First an exact key: case, accents, punctuation and spaces set aside, common title
abbreviations spelled out and country aliases mapped, so "VP, Sales" and "Vice President Sales"
share a key. Then RapidFuzz joins keys a typo apart ("technolgy" / "technology": one slipped,
doubled, dropped or swapped letter; two in keys of ten letters or more), only when the digits
agree (model 100 is not model 200) and the rarer spelling is much rarer than the one it joins
(a typo is rarer than the word it misspells).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

from rapidfuzz import process
from rapidfuzz.distance import OSA

_ABBREVIATIONS = {
    "vp": "vice president", "svp": "senior vice president", "evp": "executive vice president",
    "avp": "assistant vice president", "sr": "senior", "snr": "senior", "jr": "junior", "mgr": "manager",
    "mngr": "manager", "dir": "director", "eng": "engineer", "engr": "engineer", "mktg": "marketing",
    "mkt": "marketing", "dept": "department", "asst": "assistant", "exec": "executive", "intl": "international",
    "natl": "national", "acct": "account", "admin": "administrator", "ops": "operations", "dev": "developer",
    "&": "and",
}
_COUNTRY_ALIASES = {
    "us": "unitedstates", "usa": "unitedstates", "unitedstatesofamerica": "unitedstates", "america": "unitedstates",
    "estadosunidos": "unitedstates", "eua": "unitedstates", "eeuu": "unitedstates",
    "uk": "unitedkingdom", "greatbritain": "unitedkingdom", "gb": "unitedkingdom", "britain": "unitedkingdom",
    "brasil": "brazil", "deutschland": "germany", "espana": "spain", "mexique": "mexico", "holland": "netherlands",
    "thenetherlands": "netherlands", "nederland": "netherlands", "uae": "unitedarabemirates", "italia": "italy",
    "suisse": "switzerland", "schweiz": "switzerland", "osterreich": "austria", "belgique": "belgium",
}
_TOKEN = re.compile(r"[a-z0-9]+|&")
_DIGITS = re.compile(r"\d+")
MIN_FUZZY_LENGTH = 6
LONG_KEY = 10  # keys this long may be two edits apart; shorter ones one
# A spelling joins a commoner one by fuzzy match only when it is at most this share of it.
TYPO_SHARE = 0.34
MAX_DISTINCT_FOR_FUZZY = 3000


def variant_key(text: str) -> str:
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()
    tokens = []
    for token in _TOKEN.findall(plain):
        tokens.extend(_ABBREVIATIONS.get(token, token).split())
    compact = "".join(t for t in tokens if t != "the") or "".join(tokens)
    return _COUNTRY_ALIASES.get(compact, compact)


def _canonical(spellings: Counter[str]) -> str:
    # The commonest spelling wins; on a tie the one with capitals and spaces (as typed by a person).
    return min(spellings, key=lambda s: (-spellings[s], -sum(c.isupper() for c in s), -s.count(" "), s))


class _Union:
    def __init__(self, items: list[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _near_pairs(keys: list[str], totals: dict[str, int]) -> list[tuple[str, str, int]]:
    """Pairs of keys at most two edits apart (optimal string alignment: a swapped pair of letters is one edit).

    Up to MAX_DISTINCT_FOR_FUZZY keys, every pair is compared at once. Beyond that (free-text
    titles on a large book) each rarer key is compared with the commonest ones only: a typo is
    rare, and what it misspells is common.
    """
    if len(keys) < 2:
        return []
    if len(keys) <= MAX_DISTINCT_FOR_FUZZY:
        return [(keys[i], keys[j], d) for i, j, d in _matrix_pairs(keys)]
    ordered = sorted(keys, key=lambda k: (-totals[k], k))
    common, rare = ordered[:MAX_DISTINCT_FOR_FUZZY], ordered[MAX_DISTINCT_FOR_FUZZY:]
    pairs = [(common[i], common[j], int(d)) for i, j, d in _matrix_pairs(common)]
    for key in rare:
        found = process.extractOne(key, common, scorer=OSA.distance, score_cutoff=2)
        if found is not None:
            pairs.append((found[0], key, int(found[1])))
    return pairs


def _matrix_pairs(keys: list[str]) -> list[tuple[int, int, int]]:
    matrix = process.cdist(keys, keys, scorer=OSA.distance, score_cutoff=2, dtype="int32")
    rows, cols = (matrix <= 2).nonzero()
    return [(i, j, int(matrix[i, j])) for i, j in zip(rows.tolist(), cols.tolist(), strict=True) if i < j]


def variant_clusters(counts: Counter[str]) -> list[tuple[str, dict[str, int]]]:
    """Groups of spellings of one value: [(canonical, {variant: count, ...})], variants exclude the canonical."""
    by_key: dict[str, Counter[str]] = {}
    for text, n in counts.items():
        key = variant_key(text)
        if key:
            by_key.setdefault(key, Counter())[text] += n
    keys = list(by_key)
    key_totals = {k: sum(by_key[k].values()) for k in keys}
    union = _Union(keys)
    long_keys = [k for k in keys if len(k) >= MIN_FUZZY_LENGTH]
    for a, b, distance in _near_pairs(long_keys, key_totals):
        allowed = 2 if min(len(a), len(b)) >= LONG_KEY else 1
        if distance > allowed or _DIGITS.findall(a) != _DIGITS.findall(b):
            continue
        rare, common = sorted((a, b), key=lambda k: key_totals[k])
        if key_totals[rare] <= TYPO_SHARE * key_totals[common]:
            union.join(common, rare)
    clusters: dict[str, Counter[str]] = {}
    for key in keys:
        clusters.setdefault(union.find(key), Counter()).update(by_key[key])
    out = []
    for spellings in clusters.values():
        if len(spellings) < 2:
            continue
        canonical = _canonical(spellings)
        out.append((canonical, {s: n for s, n in spellings.items() if s != canonical}))
    return sorted(out, key=lambda c: -sum(c[1].values()))
