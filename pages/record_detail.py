"""Contact and deal detail: one record's header and its timeline of everything that happened."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.services import pipeline, records
from ui import format as fmt
from ui.data import read, read_or_error
from ui.layout import empty_state, page_header
from ui.risk import risk_explanation
from ui.session import current_actor

KIND_ICONS = {"activity": "👣", "email": "✉️", "meeting": "📅", "task": "☑️", "score": "🎯", "stage": "➡️", "decision": "🤖"}
STEP = 100

page_header("Contact and deal detail", "Find a contact or a deal; its timeline shows activities, emails, meetings, tasks, "
            "scores, stage changes and agent decisions.")
viewer = current_actor()  # a rep finds and opens only their own records
if viewer is None:
    st.stop()


def _param(name: str) -> int | None:
    value = st.query_params.get(name)
    return int(value) if value and str(value).isdigit() else None


def open_record(kind: str, record_id: int) -> None:
    st.query_params.clear()
    st.query_params[kind] = str(record_id)


query = st.text_input("Find", placeholder="name, email, company, deal name or id", key="detail_search")
if query:
    hits = read(records.search_records, query, actor=viewer)
    if not hits:
        st.info(f"Nothing matches “{query}”.", icon="🔎")
    for hit in hits:
        c1, c2 = st.columns([5, 1])
        c1.markdown(f"{'👤' if hit.kind == 'contact' else '💼'} **{hit.label}** · {hit.detail}")
        c2.button("Open", key=f"detail_open_{hit.kind}_{hit.id}", on_click=open_record, args=(hit.kind, hit.id))
    st.divider()

contact_id, deal_id = _param("contact"), _param("deal")
if contact_id is None and deal_id is None:
    empty_state("No record chosen.", "Search above, or follow an “Open” link from Pipeline health, Lead scores or Meetings.")
    st.stop()


def timeline(events: list[records.TimelineEvent], key: str) -> None:
    kinds = sorted({e.kind for e in events})
    shown = st.multiselect("Show", kinds, default=kinds, key=f"{key}_kinds", format_func=lambda k: f"{KIND_ICONS[k]} {k}")
    rows = [e for e in events if e.kind in shown]
    if not rows:
        st.info("Nothing on the timeline yet.", icon="🕒")
        return
    st.dataframe(pd.DataFrame([{
        "When": fmt.when(e.at), "": KIND_ICONS[e.kind], "What": e.title, "Detail": e.detail,
    } for e in rows]), hide_index=True, key=f"{key}_table", column_config={"Detail": st.column_config.TextColumn(width="large")})


limit = int(st.session_state.get("detail_limit", STEP))

if deal_id is not None:
    deal = read_or_error(records.deal_detail, deal_id, actor=viewer)
    if deal is None:
        st.stop()
    st.header(f"💼 {deal.name}")
    badge = (fmt.risk_markdown(deal.risk, snoozed=deal.snoozed) if deal.status == "open"
             else ":green-badge[won]" if deal.status == "won" else ":gray-badge[lost]")
    st.markdown(f"{badge} · {deal.stage} · owner **{deal.owner or 'nobody'}**")
    c1, c2, c3 = st.columns(3)
    c1.metric("Amount", fmt.money(deal.amount, deal.currency))
    c2.metric("In stage since", fmt.when(deal.stage_entered_at, with_time=False))
    c3.metric("Closed" if deal.closed_at else "Expected close", fmt.when(deal.closed_at, with_time=False) if deal.closed_at else fmt.when(deal.expected_close))
    st.caption(" · ".join(p for p in (deal.account or "", deal.product or "", f"opened {fmt.when(deal.opened_at, with_time=False)}") if p))
    if deal.status == "open" and deal.risk in ("amber", "red"):
        with st.container(border=True, key="detail_risk"):
            risk_explanation(read(pipeline.deal_card, deal_id, actor=viewer))
    if deal.snoozed:
        st.caption(f"💤 flag snoozed until {fmt.when(deal.risk_snoozed_until)}: {deal.risk_snooze_reason or ''}")
    if deal.primary_contact_id:
        st.button(f"👤 {deal.primary_contact}", key="detail_to_contact", on_click=open_record, args=("contact", deal.primary_contact_id))
    st.subheader("Timeline")
    timeline(read(records.deal_timeline, deal_id, actor=viewer, limit=limit), "detail_deal")
else:
    contact = read_or_error(records.contact_detail, contact_id, actor=viewer)
    if contact is None:
        st.stop()
    st.header(f"👤 {contact.name}")
    st.caption(" · ".join(p for p in (contact.title or "", contact.account or "", contact.email or "", contact.phone or "") if p))
    st.markdown(f"{fmt.tier_badge(contact.tier) if contact.tier else 'not scored'} · {contact.lifecycle_stage} · "
                f"owner **{contact.owner or 'nobody'}**")
    c1, c2 = st.columns(2)
    c1.metric("Score", contact.score if contact.score is not None else "—")
    c2.metric("Last activity", fmt.when(contact.last_activity_at, with_time=False))
    st.caption(f"Source {contact.source or '—'} · next action "
               f"{contact.next_action or '—'}" + (" · 🔒 sensitive: never sent to a remote model" if contact.sensitive else ""))
    if contact.deals:
        st.markdown("**Deals**")
        for d in contact.deals:
            st.button(f"{fmt.risk_badge(d.risk) if d.status == 'open' else d.status} · {d.name} · {d.stage} · {fmt.money(d.amount, d.currency)}",
                      key=f"detail_to_deal_{d.id}", on_click=open_record, args=("deal", d.id))
    st.subheader("Timeline")
    timeline(read(records.contact_timeline, contact_id, actor=viewer, limit=limit), "detail_contact")

if st.button("Show older events", key="detail_more"):
    st.session_state["detail_limit"] = limit + STEP
    st.rerun()
