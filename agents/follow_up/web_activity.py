"""A contact's web activity in words: the page they read, the asset they downloaded, what to offer next.

Page titles and addresses are logged as the visitor's browser sent them (untrusted): a title is used
only when it is safe to quote, else the address is turned into words ("/pricing" -> "pricing page").
Kept apart from the follow-up agent so that its timing and its drafts name the same page the same way.
"""
from __future__ import annotations

import re
from datetime import datetime

from agents.common.context_records import ContentItem
from agents.common.phrasing import day_phrase
from agents.common.text_reading import one_line, quotable, rx


_GENERIC_PAGES = re.compile(r"^/?$|^/(about|careers|jobs|blog/?$|privacy|terms|login|signup|contact)\b", re.IGNORECASE)
# What a page or asset is about -> one sentence offering the next useful thing (no product claims).
CONTENT_OFFERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (rx(r"pric|plans?\b"), "If it helps, I can put the options for a team your size in writing, so you have the numbers in one place."),
    (rx(r"secur|soc ?2|trust|complian|gdpr"), "If your IT or security team has a checklist, I can send our security documentation and answer it point by point."),
    (rx(r"integrat|salesforce|hubspot|snowflake|connector|api\b|docs"), "If it helps, I can show how it connects to your own stack, with your objects and fields."),
    (rx(r"case[- ]stud|customer stor"), "Happy to share how that team set it up, or a similar story from your industry."),
    (rx(r"roi|calculator|business case"), "Happy to go through the numbers with you, with your own inputs."),
    (rx(r"benchmark|report"), "Happy to walk you through how your numbers compare with the teams in it."),
    (rx(r"forecast"), "If useful, I can show how teams like yours run their weekly forecast with it."),
    (rx(r"demo"), "I can set up a session around your own reports."),
    (rx(r"playbook|template|guide|checklist"), "If useful, I can show how other teams put it into practice."),
)
DEFAULT_OFFER = "If useful, I can show how teams like yours put this into practice."
_SECTION_NAMES = {"pricing": "pricing page", "security": "security page", "trust": "trust page", "integrations": "integrations page",
                  "product": "product page", "case-studies": "customer stories", "docs": "documentation", "demo": "demo page"}


def offer_for(*texts: str | None) -> str:
    joined = " ".join(t for t in texts if t)
    for pattern, offer in CONTENT_OFFERS:
        if pattern.search(joined):
            return offer
    return DEFAULT_OFFER


def page_name(item: ContentItem) -> str:
    """A page as a person names it: its title, else its address in words ('/pricing' -> 'pricing page')."""
    title = one_line(item.title or "", 80)
    if title and quotable(title, 80, 2):
        return title if title.lower().endswith(("page", "stories", "documentation")) else f"{title} page"
    path = one_line(item.url or "", 120).split("?")[0].strip("/")
    if not path or not quotable(path, 120, 2):
        return "website"
    parts = path.split("/")
    if len(parts) == 1 and parts[0].lower() in _SECTION_NAMES:
        return _SECTION_NAMES[parts[0].lower()]
    words = " ".join(parts[-1].replace("-", " ").replace("_", " ").split())
    if parts[0].lower() == "case-studies":
        return f"customer story \u201c{words[:1].upper() + words[1:]}\u201d"
    if parts[0].lower() == "blog":
        return f"article \u201c{words[:1].upper() + words[1:]}\u201d"
    return f"{words} page" if words else "website"


def asset_name(item: ContentItem) -> str | None:
    name = one_line(item.title or item.url or "", 100)
    return name if quotable(name, 100, 2) else None


def content_words(item: ContentItem, now: datetime) -> str:
    when = day_phrase(item.at, now)
    if item.kind == "content_download":
        return f"downloaded the {asset_name(item) or 'a resource'} {when}"
    if item.kind == "form_submit":
        return f"filled in a form {when}"
    return f"read the {page_name(item)} {when}"


def specific_pages(items: list[ContentItem]) -> list[ContentItem]:
    """Pages worth mentioning: not the home page or careers; each page once, newest first."""
    seen, out = set(), []
    for p in items:
        if p.kind != "page_view":
            continue
        name = page_name(p)
        key = name.lower()
        if key in seen or name == "website" or (p.url and _GENERIC_PAGES.match(p.url)):
            continue
        seen.add(key)
        out.append(p)
    return out


def of_kind(items: list[ContentItem], kind: str) -> list[ContentItem]:
    return [i for i in items if i.kind == kind]
