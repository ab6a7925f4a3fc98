"""Approval queue: what the agents want to do and could not do alone. One click approves or rejects."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.oversight import QueueItem
from crm_core.services import approvals
from ui import format as fmt
from ui.data import flash, read, write
from ui.layout import empty_state, need_actor, page_header, page_offset, pager

PAGE_SIZE = 20

page_header("Approval queue", "Decisions the agents may not take alone. Your name is recorded with every click.")

f1, f2, _ = st.columns([1, 1, 2])
agent = f1.selectbox("Agent", [None, *approvals.AGENTS], key="queue_agent",
                     format_func=lambda a: "All agents" if a is None else a.replace("_", " "))
stakes = f2.selectbox("Stakes", [None, *approvals.STAKES], key="queue_stakes",
                      format_func=lambda s: "Any stakes" if s is None else s)
offset = page_offset("queue_page", PAGE_SIZE, filters=(agent, stakes))
page = read(approvals.approval_queue, agent=agent, stakes=stakes, limit=PAGE_SIZE, offset=offset)


# ---- clicks: callbacks run before the page is drawn again, so a decided item is gone at once ----------
def _report(outcome: approvals.Outcome | None) -> None:
    if outcome is not None:
        flash("success" if outcome.ok else "error", outcome.message)


def approve(item_id: int) -> None:
    user = need_actor()
    if user:
        _report(write(approvals.approve_item, item_id, actor=user, note=st.session_state.get(f"queue_note_{item_id}") or None))


def reject(item_id: int) -> None:
    user = need_actor()
    if user:
        _report(write(approvals.reject_item, item_id, actor=user, note=st.session_state.get(f"queue_note_{item_id}") or None))


def approve_edited(item: QueueItem) -> None:
    user = need_actor()
    if not user:
        return
    edits = {a.position: {f: st.session_state.get(f"queue_edit_{item.id}_{a.position}_{f}")
                          for f, _ in approvals.editable_fields(a.type)} for a in item.actions}
    edited = approvals.edited_actions(item, edits)
    note = st.session_state.get(f"queue_note_{item.id}") or None
    _report(write(approvals.approve_item, item.id, actor=user, note=note, edited=edited))


def approve_selected(ids: list[int]) -> None:
    user = need_actor()
    chosen = [i for i in ids if st.session_state.get(f"queue_select_{i}")]
    if not user:
        return
    if not chosen:
        flash("warning", "Tick the items to approve first.")
        return
    results = write(approvals.bulk_approve_items, chosen, actor=user) or []
    done = [r.id for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    if done:
        flash("success", f"Approved and executed {len(done)} decision(s) as {user}: {', '.join(map(str, done))}.")
    for r in failed:
        flash("error", f"Decision {r.id}: {r.error or r.status}")


# ---- the queue -----------------------------------------------------------------------------------------
waiting, decided_tab = st.tabs([f"Waiting ({page.total})", "Decided"])
with waiting:
    if page.total == 0:
        if agent or stakes:
            empty_state("Nothing waits under these filters.", "Clear the agent or stakes filter to see the whole queue.")
        else:
            empty_state("The queue is empty: nothing waits for a human.",
                        "Agents queue what they may not do alone (low confidence, high stakes, always-ask actions). "
                        "Thresholds are on **Agents and settings**.")
    else:
        ids = [item.id for item in page.items]
        st.button("Approve selected", key="queue_bulk_approve", on_click=approve_selected, args=(ids,), type="primary",
                  help="Approves every ticked item on this page, each on its own: one that fails does not stop the others.")
        for item in page.items:
            with st.container(border=True, key=f"queue_item_{item.id}"):
                head, pick = st.columns([5, 1])
                subject = item.subject_label or f"{item.subject_type} {item.subject_id or ''}".strip()
                head.markdown(f"**#{item.id} · {item.agent.replace('_', ' ')} agent** for **{subject}**")
                pick.checkbox("select", key=f"queue_select_{item.id}", help="Tick several, then “Approve selected”.")
                undo = ":green-badge[can be undone]" if item.reversible else ":orange-badge[cannot be fully undone]"
                st.markdown(f":blue-badge[confidence {fmt.confidence(item.confidence)}] :gray-badge[{item.stakes or '?'} stakes] "
                            f"{undo} :gray-badge[expires {fmt.when(item.expires_at)}]")
                st.markdown("**Wants to**")
                for action in item.actions:
                    mark = "↩️" if action.reversible else "⚠️"
                    st.text(f"• {action.summary}")
                    st.caption(f"{mark} {action.undo_note}" + (f" — {action.reason}" if action.reason else ""))
                if not item.actions:
                    st.caption("No action proposed: the agent asks a human to look.")
                if item.escalation:
                    st.warning(item.escalation, icon="🚩")
                st.markdown("**Reasoning**")
                st.text(item.reasoning or "(none given)")
                st.caption(f"Why it waits: {item.policy_reason or 'policy'} · {item.provider or '?'} / {item.model or '?'}"
                           + ("" if item.is_local else " · context sent to a remote model"))
                with st.expander("Context the agent saw"):
                    st.json(item.context_snapshot, expanded=False)
                editable = [(a, approvals.editable_fields(a.type)) for a in item.actions if approvals.editable_fields(a.type)]
                if editable:
                    with st.expander("Edit before approving"):
                        for action, fields in editable:
                            for field, multiline in fields:
                                key = f"queue_edit_{item.id}_{action.position}_{field}"
                                widget = st.text_area if multiline else st.text_input
                                widget(f"{action.type.replace('_', ' ')}: {field}", value=str(action.params.get(field) or ""), key=key)
                        st.button("Approve with my edits", key=f"queue_approve_edited_{item.id}", on_click=approve_edited, args=(item,))
                st.text_input("Reason (optional)", key=f"queue_note_{item.id}", placeholder="kept with the decision")
                b1, b2, _ = st.columns([1, 1, 4])
                b1.button("Approve", key=f"queue_approve_{item.id}", type="primary", on_click=approve, args=(item.id,))
                b2.button("Reject", key=f"queue_reject_{item.id}", on_click=reject, args=(item.id,))
        pager(page.total, PAGE_SIZE, "queue_page")

with decided_tab:
    feed = read(approvals.decided, agent=agent, limit=30)
    if not feed:
        empty_state("Nothing decided yet.", "Approved, edited, rejected and auto-approved decisions appear here with who decided.")
    else:
        st.dataframe(pd.DataFrame([{
            "When": fmt.when(d.decided_at or d.created_at), "Status": fmt.status_badge(d.status), "Agent": d.agent,
            "For": d.subject_label or f"{d.subject_type} {d.subject_id or ''}", "Actions": "; ".join(a.summary for a in d.actions),
            "By": d.decided_by or "", "Note": d.decision_note or "", "Confidence": fmt.confidence(d.confidence),
            "Result": d.error or "",
        } for d in feed]), hide_index=True, key="queue_decided")
