"""Activity and audit: every decision and action, who did it, a revert button, and the outbox."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from crm_core.services import activity_log, approvals, integrations
from ui import format as fmt
from ui.data import flash, read, write
from ui.layout import empty_state, need_actor, open_page_offset, open_pager, page_header

PAGE_SIZE = 100

page_header("Activity and audit", "Everything the agents and people did, newest first. Executed actions can be reverted.")

f1, f2, f3, f4, f5, f6 = st.columns([2, 2, 1, 2, 2, 2])
agent = f1.selectbox("Agent", [None, *approvals.AGENTS], key="audit_agent",
                     format_func=lambda a: "All agents" if a is None else a.replace("_", " "))
subject_type = f2.selectbox("Record", [None, *activity_log.SUBJECT_TYPES], key="audit_subject_type",
                            format_func=lambda s: "Any record" if s is None else f"a {s}")
subject_id = f3.number_input("Id", min_value=1, value=None, step=1, key="audit_subject_id", disabled=subject_type is None)
actor = f4.selectbox("Who", [None, *read(activity_log.actor_names)], key="audit_actor",
                     format_func=lambda a: "Anyone" if a is None else activity_log.who(a))
since = f5.date_input("From", value=None, key="audit_since")
until = f6.date_input("To (inclusive)", value=None, key="audit_until")
filters = activity_log.AuditFilters(
    agent=agent, subject_type=subject_type, subject_id=int(subject_id) if subject_type and subject_id else None, actor=actor,
    since=datetime.combine(since, time.min) if since else None,
    until=datetime.combine(until, time.min) + timedelta(days=1) if until else None,
)

audit_tab, decisions_tab, revert_tab, outbox_tab, webhooks_tab = st.tabs(
    ["Audit log", "Decisions", "Revert", "Outbox", "Webhooks"])

with audit_tab:
    offset = open_page_offset("audit_offset", PAGE_SIZE, filters=filters)
    log = read(activity_log.readable_audit, filters, limit=PAGE_SIZE, offset=offset)
    if not log.rows:
        empty_state("No audit entries match.", "Widen the dates or clear a filter. Every decision, approval, revert, "
                    "import and settings change is written here.")
    else:
        st.dataframe(pd.DataFrame([{
            "When": fmt.when(e.at), "Who": e.who, "Event": e.what, "Record": e.record, "Details": " · ".join(e.details),
        } for e in log.rows]), hide_index=True, key="audit_table", height=600,
            column_config={"Details": st.column_config.TextColumn(width="large")})
    open_pager(log.has_more, "audit_offset")

with decisions_tab:
    offset = open_page_offset("audit_decisions_offset", PAGE_SIZE, filters=filters)
    decisions = read(activity_log.decision_log, filters, limit=PAGE_SIZE, offset=offset)
    if not decisions.rows:
        empty_state("No decisions match.", "Agents write a decision each time they reason about a record; "
                    "start the scheduler with `python -m orchestration.scheduler`.")
    else:
        st.dataframe(pd.DataFrame([{
            "When": fmt.when(d.created_at), "Agent": d.agent, "Record": d.subject, "Status": fmt.status_badge(d.status),
            "Actions": d.actions, "Confidence": fmt.confidence(d.confidence), "Stakes": d.stakes or "",
            "Decided by": d.decided_by or "", "Provider": d.provider or "", "Cost": fmt.usd_cost(d.cost_usd),
            "Why": d.policy or "",
        } for d in decisions.rows]), hide_index=True, key="audit_decisions", height=600)
    open_pager(decisions.has_more, "audit_decisions_offset")


def revert(decision_id: int) -> None:
    actor = need_actor()
    if actor:
        outcome = write(approvals.revert_item, decision_id, actor=actor,
                        note=st.session_state.get(f"revert_note_{decision_id}") or None)
        if outcome is not None:
            flash("success" if outcome.ok else "error", outcome.message)


with revert_tab:
    executed = read(activity_log.revertable, agent=agent, limit=20)
    if not executed:
        empty_state("No executed decision to revert.", "Decisions that ran (by policy or by approval) show here, newest first.")
    for d in executed:
        with st.container(border=True, key=f"revert_item_{d.id}"):
            st.markdown(f"**{d.agent_label} agent** for **{d.subject_name}** · "
                        f"ran {fmt.when(d.executed_at)} · decided by {d.decided_by or 'policy'}")
            for action in d.actions:
                st.text(f"• {action.headline}")
                st.caption(("↩️ " if action.reversible else "⚠️ ") + fmt.plain(action.undo_note))
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.text_input("Why revert (optional)", key=f"revert_note_{d.id}")
            c2.button("Revert", key=f"revert_{d.id}", on_click=revert, args=(d.id,))

with outbox_tab:
    o1, o2, _ = st.columns([1, 1, 2])
    status = o1.selectbox("Status", [None, "held", "pending", "sent", "cancelled", "failed"], key="outbox_status",
                          format_func=lambda s: "Any status" if s is None else s)
    kind = o2.selectbox("Kind", [None, "email", "notification"], key="outbox_kind",
                        format_func=lambda k: "Emails and notifications" if k is None else k)
    messages = read(activity_log.outbox, status=status, kind=kind, limit=100)
    if not messages:
        empty_state("The outbox is empty.", "Emails and notifications the agents send land here; with no SMTP server or "
                    "webhook configured they are held here and never leave the machine.")
    else:
        st.dataframe(pd.DataFrame([{
            "Created": fmt.when(m.created_at), "Kind": m.kind, "To": m.recipient or "team", "Subject": m.subject or "",
            "Status": m.status, "Sink": m.sink or "", "Send after": fmt.when(m.send_after), "Sent": fmt.when(m.sent_at),
            "Attachments": ", ".join(m.attachment_names), "Error": m.error or "",
        } for m in messages]), hide_index=True, key="outbox_table")
        with st.expander("Read a message"):
            chosen = st.selectbox("Message", messages, format_func=lambda m: f"{fmt.when(m.created_at)} {m.kind} to {m.recipient or 'team'}: {m.subject or ''}",
                                  key="outbox_pick")
            st.text(chosen.body or "")

with webhooks_tab:
    counts = read(integrations.webhook_delivery_counts)
    w1, w2 = st.columns([1, 3], vertical_alignment="bottom")
    delivery_status = w1.selectbox("Status", [None, "pending", "delivered", "failed"], key="webhook_status",
                                   format_func=lambda s: "Any status" if s is None else f"{s} ({counts.get(s, 0):,})")
    w2.caption("What the CRM told other systems: each decision queued, executed or reverted and each change of a "
               "deal's risk, signed and posted once to every subscribed address, retried with growing pauses.")
    deliveries = read(integrations.webhook_deliveries, status=delivery_status, limit=100)
    if not deliveries:
        empty_state("No webhook deliveries yet.", "An admin subscribes an address with "
                    "`python -m crm_core webhooks subscribe URL --events decision.queued,...`; deliveries appear here.")
    else:
        st.dataframe(pd.DataFrame([{
            "Created": fmt.when(d.created_at), "Event": d.summary, "To": d.url, "Status": d.status,
            "Attempts": d.attempts, "Answer": d.response_status or "", "Delivered": fmt.when(d.delivered_at),
            "Next try": fmt.when(d.next_attempt_at) if d.status == "pending" else "", "Error": d.last_error or "",
        } for d in deliveries]), hide_index=True, key="webhook_table")
