"""A context's book block as the text the provider sends in the cached system block.

The block (agents.base.BookBlock) is the same for every subject of a run, and the prompt cache
reads a prefix only when it is byte for byte the one written before. Its imported parts are
fenced like any untrusted text, and a fence draws a random delimiter, so the text is rendered
once per block digest in this process and reused: every subject of a run, and the next runs of
this process within the cache's lifetime, send the same prefix. A new block (another digest), or
another process, draws a new delimiter; the per-subject part is fenced afresh on every call.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from pydantic import BaseModel

from agents.base import BookBlock
from agents.llm.fence import fence

_KEEP = 64  # blocks remembered (a few agents, each with its current and maybe its previous block)
_RENDERED: OrderedDict[str, str] = OrderedDict()
_LOCK = threading.Lock()


def book_of(ctx: BaseModel) -> BookBlock | None:
    """The context's book block, when its builder attached one."""
    block = getattr(ctx, "book", None)
    return block if isinstance(block, BookBlock) else None


def _render(block: BookBlock) -> str:
    parts = [block.intro.strip()]
    for section in block.sections:
        body = "\n".join(section.lines) or "(none)"
        parts.append(f"## {section.title}")
        parts.append(fence(body, section.title) if section.imported else body)
    return "\n\n".join(parts)


def render_book(block: BookBlock) -> str:
    """The block's text, the same string for the same digest in this process."""
    key = block.digest or BookBlock.make(agent=block.agent, version=block.version, intro=block.intro,
                                         sections=block.sections).digest
    with _LOCK:
        text = _RENDERED.get(key)
        if text is not None:
            _RENDERED.move_to_end(key)
            return text
    text = _render(block)
    with _LOCK:
        text = _RENDERED.setdefault(key, text)  # a concurrent render of the same block: keep the first
        while len(_RENDERED) > _KEEP:
            _RENDERED.popitem(last=False)
    return text


def context_snapshot(ctx: BaseModel) -> dict:
    """The context as a decision stores it: the book block by its version and digest, not its text
    (the same block rides along with every subject of a run)."""
    block = book_of(ctx)
    if block is None:
        return ctx.model_dump(mode="json")
    data = ctx.model_dump(mode="json", exclude={"book"})
    data["book"] = block.stamp
    return data
