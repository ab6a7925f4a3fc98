"""Small layout pieces every page uses: header, empty states, pagers."""
from __future__ import annotations

import math

import streamlit as st

from crm_core.auth import Actor
from ui.data import flash, show_flash
from ui.session import current_actor
from ui.shell import ensure_shell


def page_header(title: str, caption: str) -> None:
    ensure_shell()
    st.title(title)
    st.caption(caption)
    show_flash()


def empty_state(message: str, what_to_do: str) -> None:
    """Never a blank page: say what is missing and what to do about it."""
    st.info(f"**{message}**  \n{what_to_do}", icon="💡")


def need_actor() -> Actor | None:
    """The signed-in user as the services take it (they check the rights); None, with a warning, when nobody is."""
    actor = current_actor()
    if actor is None:
        flash("warning", "Sign in first: every change records who made it.")
    return actor


def _reset_on_change(key: str, filters: object, first: int) -> None:
    signature_key = f"{key}__filters"
    signature = repr(filters)
    if st.session_state.get(signature_key) != signature:
        st.session_state[signature_key] = signature
        st.session_state[key] = first


def page_offset(key: str, page_size: int, *, filters: object = None) -> int:
    """The offset of the page chosen in `pager(key)`, read before fetching; new filters restart at page 1.

    The pager widget is drawn under the table, after the fetch, because it needs the total;
    its value from the last interaction is already in the session state.
    """
    _reset_on_change(key, filters, 1)
    return (max(1, int(st.session_state.get(key, 1))) - 1) * page_size


def pager(total: int, page_size: int, key: str) -> None:
    """A page picker under a counted table."""
    pages = max(1, math.ceil(total / page_size))
    if int(st.session_state.get(key, 1)) > pages:
        st.session_state[key] = pages
    offset = (int(st.session_state.get(key, 1)) - 1) * page_size
    if pages == 1:
        st.caption(f"{total:,} row{'s' if total != 1 else ''}")
        return
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key)
    right.caption(f"rows {offset + 1:,}–{min(offset + page_size, total):,} of {total:,}")


def open_page_offset(key: str, page_size: int, *, filters: object = None) -> int:
    """Like `page_offset`, for `open_pager` (tables too big to count)."""
    _reset_on_change(key, filters, 0)
    return max(0, int(st.session_state.get(key, 0))) * page_size


def open_pager(has_more: bool, key: str) -> None:
    """Newer / older buttons under a table too big to count."""
    page = int(st.session_state.get(key, 0))

    def move(step: int) -> None:
        st.session_state[key] = max(0, page + step)

    left, mid, right = st.columns([1, 2, 1])
    left.button("← Newer", key=f"{key}_prev", disabled=page == 0, on_click=move, args=(-1,))
    mid.caption(f"page {page + 1}")
    right.button("Older →", key=f"{key}_next", disabled=not has_more, on_click=move, args=(1,))
