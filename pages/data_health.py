"""Data health: the book's score, the worst fields, the fixes waiting for approval, the trend."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.services import data_health
from ui import format as fmt
from ui.data import flash, read, write
from ui.layout import empty_state, need_actor, page_header

page_header("Data health", "How far the agents can trust the book: placeholders, spellings, outliers, impossible "
            "dates and duplicates, field by field. Fixes wait in the approval queue and can be undone.")


def run_audit(propose: bool) -> None:
    actor = need_actor()
    if actor is None:
        return
    result = write(data_health.audit_now, actor, propose=propose)
    if result is None:
        return
    report, ids = result
    message = f"Audit done: the book scores {report.book_score:.0f} out of 100."
    if propose:
        message += f" {len(ids)} fix(es) now wait in the approval queue." if ids else " No new fix to propose."
    flash("success", message)


health = read(data_health.data_health)
b1, b2, _ = st.columns([1, 1, 3])
b1.button("Audit now", key="health_audit", on_click=run_audit, args=(False,),
          help="Looks at every contact, account and deal field again and keeps the score.")
b2.button("Audit and propose fixes", key="health_propose", on_click=run_audit, args=(True,), type="primary",
          help="Queues one fix per problem the audit can correct; nothing changes until someone approves it.")

report = health.audit
if report is None:
    empty_state("The book has not been audited yet.",
                "Click **Audit now**, or import a file: the scheduler audits after every import and once a day.")
    st.stop()

previous = health.trend[-2].book_score if len(health.trend) >= 2 else None
m1, m2, m3, m4 = st.columns(4)
m1.metric("Book score", f"{report.book_score:.0f} / 100",
          delta=f"{report.book_score - previous:+.1f}" if previous is not None else None)
m2.metric("Records audited", fmt.integer(report.records))
m3.metric("Problems found", fmt.integer(sum(1 for _ in report.findings())))
m4.metric("Likely duplicate groups", fmt.integer(len(report.duplicates)))
st.caption(f"Last audit {fmt.when(report.ran_at)} ({report.trigger}"
           + (f": {report.import_ref}" if report.import_ref else "") + ").")

left, right = st.columns([3, 2])
with left:
    st.subheader("Fields that need attention")
    if not health.worst_fields:
        st.write("Every field is clean.")
    else:
        st.dataframe(pd.DataFrame([{
            "Field": f.label, "Score": round(f.score), "Filled": fmt.percent(f.fill_rate),
            "Distinct values": f.distinct_values,
            "What is wrong": " ".join(x.message for x in f.findings[:3]) or "mostly empty",
        } for f in health.worst_fields]), hide_index=True, width="stretch")

with right:
    st.subheader("Score over time")
    if len(health.trend) < 2:
        st.caption("The trend appears after the second audit.")
    else:
        fig = go.Figure(go.Scatter(x=[p.ran_at for p in health.trend], y=[p.book_score for p in health.trend],
                                   mode="lines+markers", name="Book score",
                                   hovertemplate="%{x|%d %b %H:%M}: %{y:.0f}<extra></extra>"))
        fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[0, 100], title="score"))
        st.plotly_chart(fig, key="health_trend")

st.subheader(f"Fixes waiting for approval ({health.waiting_total})")
if not health.waiting_fixes:
    st.caption("None waiting. **Audit and propose fixes** queues one per problem the audit can correct.")
else:
    st.dataframe(pd.DataFrame([{
        "Field": w.field, "Records": w.records, "Why": w.summary, "Proposed": fmt.when(w.created_at),
    } for w in health.waiting_fixes]), hide_index=True, width="stretch")
    st.page_link("pages/approval_queue.py", label="Review them in the approval queue", icon="✅")

with st.expander("Every field"):
    st.dataframe(pd.DataFrame([{
        "Field": f.label, "Score": round(f.score), "Filled": fmt.percent(f.fill_rate), "Distinct values": f.distinct_values,
        "Top values": ", ".join(f"{t.value} ({t.count})" for t in f.top_values[:3]),
        "Placeholders": ", ".join(f.placeholders),
    } for f in report.fields if f.filled]), hide_index=True, width="stretch")

if report.duplicates:
    with st.expander(f"Likely duplicates ({len(report.duplicates)} groups)"):
        st.dataframe(pd.DataFrame([{
            "Records": " / ".join(g.labels[:4]) + (" …" if len(g.labels) > 4 else ""),
            "Kind": {"contacts.email": "same email", "contacts.name_company": "same name at the same company",
                     "accounts.name": "same company name"}.get(g.field_key, g.field_key),
        } for g in report.duplicates[:200]]), hide_index=True, width="stretch")
