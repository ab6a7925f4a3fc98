"""Who is clicking. Until sign-in exists, the user picks their name from the users table."""
from __future__ import annotations

import streamlit as st

from crm_core.services.users import list_users
from ui.data import read

USER_KEY = "crm_user"


def user_picker() -> str | None:
    """The sidebar picker; approvals, snoozes and settings changes record this name."""
    users = read(list_users)
    with st.sidebar:
        if not users:
            st.warning("No users yet. Load the demo book with `python -m crm_core seed-demo`, "
                       "or import deals with an owner column: owners become users.")
            return None
        labels = {u.name: f"{u.name} ({u.role})" for u in users}
        if st.session_state.get(USER_KEY) not in labels:
            st.session_state[USER_KEY] = users[0].name
        st.selectbox("You are", options=list(labels), format_func=labels.__getitem__, key=USER_KEY,
                     help="Your name is recorded with every approval, rejection, snooze and settings change.")
    return st.session_state.get(USER_KEY)


def current_user() -> str | None:
    return st.session_state.get(USER_KEY)
