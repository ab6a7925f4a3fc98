"""Meetings: upcoming ones with their briefs, past ones with the action items they produced."""
from __future__ import annotations

import streamlit as st

from crm_core.services import meetings
from crm_core.services.owners import owner_choices
from ui import format as fmt
from ui.data import read
from ui.layout import empty_state, page_header, page_offset, pager
from ui.session import current_actor

UPCOMING = 20
PAST_PAGE = 20

page_header("Meetings", "Briefs before a meeting, action items after it: both written by the meeting agent.")

viewer = current_actor()  # a rep sees their own meetings; managers the whole team's
if viewer is None:
    st.stop()
choices = read(owner_choices, actor=viewer)
owner_names = dict(choices.owners)
owner_id = st.selectbox("Owner", [None, *owner_names] if choices.everyone else list(owner_names), key="meetings_owner",
                        format_func=lambda v: "Everyone" if v is None else owner_names[v])
past_offset = page_offset("meetings_past_page", PAST_PAGE, filters=owner_id)
overview = read(meetings.meetings_overview, actor=viewer, owner_id=owner_id, upcoming_limit=UPCOMING, past_limit=PAST_PAGE, past_offset=past_offset)

m1, m2, m3 = st.columns(3)
m1.metric("Upcoming", fmt.integer(overview.upcoming_total))
m2.metric("Briefs ready", fmt.integer(overview.upcoming_with_brief))
m3.metric("Past meetings", fmt.integer(overview.past_total))


def links(m: meetings.MeetingView) -> None:
    cols = st.columns([1, 2])
    if m.contact_id:
        cols[0].page_link("pages/record_detail.py", label=m.contact or "contact", icon="👤", query_params={"contact": str(m.contact_id)})
    if m.deal_id:
        cols[1].page_link("pages/record_detail.py", label=m.deal or "deal", icon="💼", query_params={"deal": str(m.deal_id)})


upcoming_tab, past_tab = st.tabs([f"Upcoming ({overview.upcoming_total})", f"Past ({overview.past_total})"])
with upcoming_tab:
    if not overview.upcoming:
        empty_state("No upcoming meetings.", "Meetings come from imports, the demo book, or the meeting invites the "
                    "follow-up agent proposes, once approved.")
    for m in overview.upcoming:
        with st.container(border=True, key=f"meeting_{m.id}"):
            st.markdown(f"**{fmt.when(m.starts_at)}–{m.ends_at:%H:%M} UTC · {m.title}**")
            st.caption(" · ".join(p for p in (m.owner or "", ", ".join(m.attendees)) if p))
            links(m)
            if m.brief:
                st.caption(f"Brief ready {fmt.when(m.brief_ready_at)}")
                st.text(m.brief)
            else:
                st.info("No brief yet: the meeting agent writes one the day before.", icon="🕒")
            if m.agenda:
                with st.expander("Agenda"):
                    st.text(m.agenda)
    if overview.upcoming_total > len(overview.upcoming):
        st.caption(f"The next {len(overview.upcoming)} of {overview.upcoming_total}.")

with past_tab:
    if not overview.past:
        empty_state("No past meetings.", "Held meetings appear here with their action items.")
    for m in overview.past:
        with st.container(border=True, key=f"meeting_{m.id}"):
            st.markdown(f"**{fmt.when(m.starts_at)} · {m.title}** · {m.status}")
            st.caption(" · ".join(p for p in (m.owner or "", "transcript on file" if m.has_transcript else "no transcript") if p))
            links(m)
            if m.action_items:
                for item in m.action_items:
                    done = "☑" if item.status == "done" else "☐"
                    due = f", due {fmt.when(item.due_at, with_time=False)}" if item.due_at else ""
                    st.text(f"{done} {item.title} ({item.owner or 'no owner'}{due}; {item.status})")
            elif m.has_transcript:
                st.info("No action items yet: the meeting agent extracts them from the transcript.", icon="🕒")
            else:
                st.caption("No action items.")
    pager(overview.past_total, PAST_PAGE, "meetings_past_page")
