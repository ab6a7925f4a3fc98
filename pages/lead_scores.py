"""Lead scores: who to call first, how their score moved, and why."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.services import leads
from crm_core.services.owners import owner_choices
from ui import format as fmt
from ui.data import read
from ui.layout import empty_state, page_header, page_offset, pager
from ui.session import current_actor

PAGE_SIZE = 50
TIERS = ("hot", "warm", "cold")
TIER_COLOURS = {"hot": "#d64545", "warm": "#e8a317", "cold": "#4c7bd9", "none": "#b8bcc4"}

page_header("Lead scores", "Every open contact by score: the calibrated chance, in percent, that they become a customer.")

viewer = current_actor()  # a rep sees their own contacts; managers the whole team's
if viewer is None:
    st.stop()
options = read(leads.lead_filter_options)
owner_names = dict(read(owner_choices, actor=viewer).owners)
f1, f2, f3 = st.columns(3)
tiers = f1.multiselect("Tier", TIERS, format_func=fmt.tier_badge, key="leads_tiers", placeholder="All tiers")
owner_ids = f2.multiselect("Owner", list(owner_names), format_func=owner_names.__getitem__, key="leads_owners", placeholder="Everyone")
sources = f3.multiselect("Source", options.sources, key="leads_sources", placeholder="All sources")
f4, f5, f6 = st.columns([2, 2, 1])
score_min, score_max = f4.slider("Score", 0, 100, (0, 100), key="leads_score")
search = f5.text_input("Search", placeholder="name, email or company", key="leads_search")
include_closed = f6.checkbox("Customers too", key="leads_closed", help="Include customers and disqualified contacts.")

filters = leads.LeadFilters(tiers=tuple(tiers), owner_ids=tuple(owner_ids), sources=tuple(sources), score_min=score_min,
                            score_max=score_max, search=search or None, include_closed=include_closed)
offset = page_offset("leads_page", PAGE_SIZE, filters=filters)
page = read(leads.lead_table, filters, PAGE_SIZE, offset, actor=viewer)
distribution = read(leads.score_distribution, filters, actor=viewer)
model = read(leads.scoring_model_status)
if model is not None and model.learned:
    interval = f" (90 % interval {model.auc_low:.2f}–{model.auc_high:.2f})" if model.auc_low is not None else ""
    st.caption(f"Scores come from {model.words or 'a model'} learned on {fmt.integer(model.outcomes)} past outcomes of this "
               f"book, {fmt.when(model.trained_at)}. Tested on {model.periods} later periods it ranked leads with AUC "
               f"{model.validated_auc:.2f}{interval}: 0.5 is a coin toss, 1.0 perfect.")
    if model.note:
        st.caption(model.note[:1].upper() + model.note[1:] + ".")
elif model is not None:
    st.warning("No learned model scores these leads yet: " + (model.reason or "too little history") + ". "
               "Scores come from a transparent prior and wait in the approval queue.", icon="⚠️")

if page.total == 0:
    if filters == leads.LeadFilters():
        empty_state("No contacts yet.", "Import contacts on the **Import** page, or load the demo book with "
                    "`python -m crm_core seed-demo`.")
    else:
        empty_state("No contact matches these filters.", "Widen the score range or clear a filter.")
    st.stop()

scored = sum(b.contacts for b in distribution.buckets)
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Contacts", fmt.integer(page.total))
m2.metric("🔥 Hot", fmt.integer(distribution.by_tier.get("hot", 0)))
m3.metric("☀️ Warm", fmt.integer(distribution.by_tier.get("warm", 0)))
m4.metric("❄️ Cold", fmt.integer(distribution.by_tier.get("cold", 0)))
m5.metric("Not scored yet", fmt.integer(distribution.unscored),
          help="The lead-scoring agent scores new and changed contacts on its next run.")

frame = pd.DataFrame([{
    "Name": r.name, "Company": r.account or "—", "Score": r.score, "Tier": fmt.tier_badge(r.tier),
    "Proposed": (f"{r.proposed_score} {fmt.tier_badge(r.proposed_tier)} · not yet applied"
                 if r.proposed_score is not None else ""),
    "Since last week": fmt.trend(r.change_7d) if r.score is not None else "—", "Owner": r.owner or "—", "Source": r.source or "—",
    "Last activity": fmt.when(r.last_activity_at), "Next action": (r.next_action or "").replace("_", " "),
    "Detail": f"record_detail?contact={r.id}",
} for r in page.rows])
st.dataframe(frame, hide_index=True, key="leads_table", column_config={
    "Score": st.column_config.ProgressColumn("Score", min_value=0, max_value=100, format="%d"),
    "Proposed": st.column_config.TextColumn(help="A new score waiting in the approval queue: approve it there to apply it"),
    "Since last week": st.column_config.TextColumn(help="▲ up, ▼ down: the change against the score a week ago"),
    "Detail": st.column_config.LinkColumn("Detail", display_text="Open ↗"),
})
pager(page.total, PAGE_SIZE, "leads_page")

left, right = st.columns(2)
with left:
    st.subheader("Distribution")
    if scored:
        chart = go.Figure([
            go.Bar(name=fmt.tier_badge(tier), x=[f"{b.low}–{b.high}" for b in distribution.buckets],
                   y=[b.by_tier.get(tier, 0) for b in distribution.buckets], marker_color=TIER_COLOURS[tier],
                   hovertemplate="score %{x}: %{y} contacts<extra>" + tier + "</extra>")
            for tier in (*TIERS, "none") if distribution.by_tier.get(tier)
        ])
        chart.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                            xaxis_title="score", yaxis_title="contacts", legend={"orientation": "h", "y": -0.25})
        st.plotly_chart(chart, key="leads_distribution")
    else:
        st.info("No scores yet: the lead-scoring agent scores contacts on its next run (`python -m orchestration.scheduler`).", icon="🕒")

with right:
    st.subheader("Score history")
    choices = {r.id: r for r in page.rows}
    contact_id = st.selectbox("Contact", options=list(choices), key="leads_history_contact",
                              format_func=lambda cid: f"{choices[cid].name} · {choices[cid].score if choices[cid].score is not None else 'unscored'}")
    history = read(leads.score_history, contact_id, actor=viewer) if contact_id is not None else None
    if history is not None and not history.points:
        st.info(f"{history.name} has not been scored yet.", icon="🕒")
    elif history is not None:
        points = history.points
        line = go.Figure(go.Scatter(
            x=[p.scored_at for p in points], y=[p.score for p in points], mode="lines+markers",
            marker={"size": 10, "color": [TIER_COLOURS.get(p.tier, "#b8bcc4") for p in points]}, line={"color": "#3b5bdb"},
            text=[(p.reason or "")[:120] for p in points], hovertemplate="%{x|%Y-%m-%d}: %{y}<br>%{text}<extra></extra>",
        ))
        first, last = points[0].scored_at, points[-1].scored_at
        pad = max(timedelta(days=2), (last - first) * 0.05)
        line.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis={"range": [0, 100], "title": "score"},
                           xaxis={"range": [first - pad, last + pad]})
        st.plotly_chart(line, key="leads_history_chart")

if history is not None and history.points:
    st.markdown(f"**What moved {history.name}'s score**")
    st.dataframe(pd.DataFrame([{
        "When": fmt.when(p.scored_at), "Score": p.score, "Tier": fmt.tier_badge(p.tier),
        "Change": fmt.trend(p.change) if p.change is not None else "first score",
        "What moved it": fmt.plain(p.reason), "By": f"{fmt.agent_label(p.agent)} agent" if p.agent else "",
    } for p in reversed(history.points)]), hide_index=True, key="leads_history_table",
        column_config={"What moved it": st.column_config.TextColumn(width="large")})
