"""What every run of the dashboard draws around a page: store ready, wide layout, who is signed in.

app.py calls `app_shell()` before `st.navigation(...)`. `ensure_shell()` (run by every page
header) covers the one case where app.py does not run: Streamlit still routes a `pages/`
folder the old (v1) way until a run calls st.navigation, so the first visit to /lead_scores
after a server start (and every AppTest rerun, which resets that routing) runs the page alone.
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from crm_core.services.store import prepare_store
from ui.data import store_url
from crm_core.auth import Actor
from ui.session import require_sign_in, sign_in_gate

_STARTED = "_crm_session_started"


@st.cache_resource(show_spinner="Preparing the store…")
def _prepared(url: str) -> bool:
    # Once per store URL per server process: migrations and default policies.
    prepare_store(url)
    return True


def app_shell() -> Actor | None:
    """Page config, the store ready, and who is signed in (None: nobody, and the sign-in form is drawn;
    `require_sign_in()` then stops the run)."""
    st.set_page_config(page_title="Agentic CRM", page_icon="📈", layout="wide")
    _prepared(store_url())
    st.session_state[_STARTED] = True  # this session has run through app.py: ensure_shell need not rerun it
    return sign_in_gate()


def ensure_shell() -> None:
    if PagesManager.uses_pages_directory:
        # The page runs alone. Route through app.py from now on; a session's first run has
        # no click to lose, so it simply goes again; otherwise draw the shell here.
        PagesManager.uses_pages_directory = False
        if not st.session_state.get(_STARTED):
            st.session_state[_STARTED] = True
            st.rerun()
        app_shell()
        require_sign_in()
    st.session_state[_STARTED] = True
