"""Who is signed in. Every run of the dashboard passes `signed_in_gate()` before a page draws.

The browser keeps a random session token in Streamlit's session state; each run resolves it
against the store (`crm_core.auth.sessions`), so expiry, sign-out elsewhere and deactivation take
effect at the next click. Without a valid session the run shows the sign-in form and stops.
Single sign-on (OpenID Connect) uses Streamlit's own `st.login` when `.streamlit/secrets.toml`
has an `[auth]` section; the provider's verified email must belong to an active user.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from crm_core.auth import Actor
from crm_core.auth.sessions import (
    SESSION_KEY,
    SignInResult,
    change_own_password,
    end_session,
    resolve_session,
    sign_in_oidc,
    sign_in_password,
)
from crm_core.db import unit_of_work
from crm_core.services.users import list_users
from ui.data import clear_cache, read, show_flash, store_url, write

ACTOR_KEY = "_crm_actor"          # the Actor resolved by this run's gate
_MUST_CHANGE = "_crm_must_change_password"
_NOTICE = "_crm_sign_in_notice"
_OIDC_REFUSED = "_crm_oidc_refused"
_WANTED = "_crm_requested_page"
PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def current_actor() -> Actor | None:
    """The signed-in user of this browser session, as services take it; None when nobody is."""
    return st.session_state.get(ACTOR_KEY)


def current_user() -> str | None:
    actor = current_actor()
    return actor.name if actor else None


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises rather than answering False
        return False


def _oidc_signed_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:
        return False


def _resolve() -> Actor | None:
    raw = st.session_state.get(SESSION_KEY)
    if not raw:
        return None
    with unit_of_work(store_url()) as session:
        actor = resolve_session(session, raw)
    if actor is None:
        st.session_state.pop(SESSION_KEY, None)
        st.session_state[_NOTICE] = "Your session has ended (signed out, expired or unused for too long). Please sign in again."
    return actor


def _accept(result: SignInResult) -> None:
    st.session_state[SESSION_KEY] = result.token
    st.session_state[_MUST_CHANGE] = result.must_change_password
    st.session_state.pop(_NOTICE, None)
    clear_cache()


def _password_form() -> None:
    with st.form("sign_in", border=True):
        login = st.text_input("Name or email", key="sign_in_login")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        result = write(sign_in_password, login, password)
        if result is not None and result.ok:
            _accept(result)
            st.rerun()
        elif result is not None:
            st.error(result.message, icon="🔒")


def _oidc_sign_in() -> None:
    """The provider signed the browser in: map its email to a user once, then use our own session."""
    if st.session_state.get(_OIDC_REFUSED):
        st.error(st.session_state[_OIDC_REFUSED], icon="🔒")
        if st.button("Sign out of single sign-on", key="oidc_sign_out"):
            st.session_state.pop(_OIDC_REFUSED, None)
            st.logout()
        return
    email = st.user.get("email")
    verified = st.user.get("email_verified", True)  # providers that do not send the claim verify by policy
    result = write(sign_in_oidc, email if verified else None, issuer=st.user.get("iss"))
    if result is not None and result.ok:
        _accept(result)
        st.rerun()
    st.session_state[_OIDC_REFUSED] = result.message if result is not None else "Single sign-on failed; try again."
    st.rerun()


def _sign_in_page() -> None:
    st.title("Sign in")
    if notice := st.session_state.get(_NOTICE):
        st.info(notice, icon="ℹ️")
    if _oidc_configured():
        if _oidc_signed_in():
            _oidc_sign_in()
            return
        st.button("Sign in with single sign-on", key="oidc_sign_in", type="primary", on_click=st.login)
        st.caption("Or with a password:")
    _password_form()
    if not read(list_users):
        st.caption("No users yet: `make run` creates the first admin and prints its one-time password.")


def _change_password_page(actor: Actor) -> None:
    st.title("Choose your password")
    st.info(f"Welcome, {actor.name}. You signed in with a one-time password; choose your own (at least 10 characters) "
            "before you continue.", icon="🔑")
    with st.form("change_password", border=True):
        current = st.text_input("One-time password", type="password", key="pw_current")
        new = st.text_input("New password", type="password", key="pw_new")
        again = st.text_input("New password again", type="password", key="pw_again")
        submitted = st.form_submit_button("Save my password", type="primary")
    if submitted:
        if new != again:
            st.error("The two new passwords differ; type the same one twice.", icon="⚠️")
        elif write(change_own_password, actor, current, new):
            st.session_state[_MUST_CHANGE] = False
            st.rerun()
        else:
            show_flash()


def sign_out() -> None:
    actor = current_actor()
    raw = st.session_state.pop(SESSION_KEY, None)
    with unit_of_work(store_url()) as session:
        end_session(session, raw, actor=actor)
    st.session_state.pop(ACTOR_KEY, None)
    st.session_state[_NOTICE] = "You are signed out."
    clear_cache()
    if _oidc_signed_in():
        st.logout()


def sign_in_gate() -> Actor | None:
    """Resolve who is signed in for this run; when nobody is (or a one-time password must be
    replaced first), draw that form and return None: the caller stops before drawing a page.

    Drawn before `st.navigation`, which is not called until someone is signed in: the form's
    widgets keep their identity across reruns. The address asked for is remembered and
    `open_requested_page` opens it after the sign-in.
    """
    actor = _resolve()
    st.session_state[ACTOR_KEY] = actor
    if actor is None:
        st.session_state.setdefault(_WANTED, _requested_page())
        _sign_in_page()
        return None
    if st.session_state.get(_MUST_CHANGE):
        _change_password_page(actor)
        return None
    with st.sidebar:
        st.caption(f"Signed in as **{actor.name}** ({actor.role})")
        st.button("Sign out", key="sign_out", on_click=sign_out)
    return actor


def require_sign_in() -> None:
    """Stop the run here unless someone is signed in and may use the dashboard."""
    if current_actor() is None or st.session_state.get(_MUST_CHANGE):
        st.stop()


def _requested_page() -> str | None:
    try:
        path = urlparse(st.context.url or "").path
    except Exception:  # no browser behind this run (AppTest): nothing to remember
        return None
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name if name and (PAGES_DIR / f"{name}.py").is_file() else None


def open_requested_page(page: StreamlitPage) -> None:
    """Once signed in, switch to the page the person first opened (e.g. a link to one queue item)."""
    wanted = st.session_state.pop(_WANTED, None)
    if wanted and wanted != page.url_path:
        st.switch_page(f"pages/{wanted}.py")
