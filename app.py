"""The dashboard: `streamlit run app.py`. Sign-in, navigation, nothing else.

Each page lives in pages/ and only lays out what `crm_core.services` returns.
"""
from __future__ import annotations

import streamlit as st

from ui.session import open_requested_page, require_sign_in
from ui.shell import app_shell

app_shell()  # store migrated once per URL, wide layout, who is signed in (or the sign-in form)
require_sign_in()  # nobody signed in: the run stops here, before any page

page = st.navigation({
    "Sell": [
        st.Page("pages/pipeline_health.py", title="Pipeline health", icon="📊", default=True),
        st.Page("pages/lead_scores.py", title="Lead scores", icon="🎯"),
        st.Page("pages/meetings.py", title="Meetings", icon="📅"),
        st.Page("pages/record_detail.py", title="Contact and deal detail", icon="🔎"),
    ],
    "Oversee": [
        st.Page("pages/approval_queue.py", title="Approval queue", icon="✅"),
        st.Page("pages/activity_audit.py", title="Activity and audit", icon="📜"),
        st.Page("pages/agents_settings.py", title="Agents and settings", icon="⚙️"),
    ],
    "Data": [
        st.Page("pages/import_data.py", title="Import", icon="📥"),
        st.Page("pages/data_health.py", title="Data health", icon="🩺"),
    ],
})
open_requested_page(page)  # after signing in: the page whose address they opened, not the default one
page.run()
