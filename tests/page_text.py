"""What a person reads on a dashboard page (AppTest), and the internal words that must never be in it.

Shared by every page test that checks plain words, so all of them hold the pages to the same rules:
no raw record id ("contact 799", "deal 12", "#12"), no internal action or agent name
("create_task", "lead_scoring") and no prompt version ("offline-v1", "pipeline/3").
"""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from agents.base import ACTION_TYPES, AGENT_NAMES

# "meeting 02 Dec" is a date, not a record id.
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"
RAW_ID = re.compile(r"\b(contact|deal|meeting|account|decision|user|task) \d+\b(?! " + _MONTH + r")|#\d+\b")
PROMPT_VERSION = re.compile(r"\b(" + "|".join(AGENT_NAMES) + r")/\d+\b|offline-v\d")
# Internal names are the snake_case ones ("pipeline" and "meeting" are also plain words).
INTERNAL = re.compile(r"\b(" + "|".join(n for n in ACTION_TYPES + AGENT_NAMES if "_" in n) + r")\b")

_VALUED = ("markdown", "text", "caption", "success", "error", "warning", "info", "title", "header", "subheader")
_OPTIONED = ("selectbox", "multiselect", "radio")


def shown_text(at: AppTest) -> list[str]:
    """Every piece of text a person reads on the page (st.json technical details and charts excepted)."""
    out = [str(e.value) for kind in _VALUED for e in getattr(at, kind)]
    for m in at.metric:
        out += [m.label, str(m.value), m.help or ""]
    out += [e.label for e in at.expander] + [t.label for t in at.tabs] + [b.label for b in at.button]
    out += [link.value for link in at.get("page_link")]
    out += [str(o) for kind in _OPTIONED for box in getattr(at, kind) for o in box.options]
    out += [str(o) for group in at.button_group for o in group.options]
    for frame in at.dataframe:
        out += [str(c) for c in frame.value.columns]
        out += [str(v) for v in frame.value.astype(str).to_numpy().ravel()]
    return out


def leaks(texts: list[str]) -> list[str]:
    """The texts that show a raw id, an internal name or a prompt version (empty when the page is clean)."""
    return [t for t in texts if RAW_ID.search(t) or PROMPT_VERSION.search(t) or INTERNAL.search(t)]
