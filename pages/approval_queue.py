"""Approval queue: what the agents want to do and could not do alone, most urgent first.

Built for hundreds of items: the same proposal is grouped (approve or reject a whole group, or
everything under the filters, after a confirmation that says how many and what cannot be undone),
one item at a time with keyboard shortcuts, or a compact list whose rows open on demand.
The page only lays out: grouping, ordering, wording and the decisions are services.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import UserError
from crm_core.oversight import QueueItem
from crm_core.services import approvals, queue_groups
from ui import format as fmt
from ui.data import flash, read, read_fresh, write
from ui.layout import empty_state, need_actor, page_header, page_offset, pager
from ui.session import current_actor

PAGE_SIZE = 20
CONFIRM_KEY = "queue_confirm"   # the BulkPlan waiting for "Yes"
SKIPPED_KEY = "queue_skipped"   # ids passed over in one-at-a-time review
TAB_KEY = "queue_tab"           # which view is open: only that one is drawn

page_header("Approval queue", "Decisions the agents may not take alone, most urgent first. "
            "Your name is recorded with every click.")

f1, f2, f3, f4 = st.columns(4)
agent = f1.selectbox("Agent", [None, *approvals.AGENTS], key="queue_agent",
                     format_func=lambda a: "All agents" if a is None else fmt.agent_label(a))
stakes = f2.selectbox("Stakes", [None, *approvals.STAKES], key="queue_stakes",
                      format_func=lambda s: "Any stakes" if s is None else fmt.stakes_label(s))
action_type = f3.selectbox("Kind of action", [None, *fmt.ACTION_LABELS], key="queue_action_type",
                           format_func=lambda t: "Any kind" if t is None else fmt.action_label(t))
reason = f4.selectbox("Why it waits", [None, *fmt.REASON_LABELS], key="queue_reason",
                      format_func=lambda r: "Any reason" if r is None else fmt.REASON_LABELS[r])
filters = queue_groups.QueueFilter(agent=agent, stakes=stakes, action_type=action_type, reason=reason)
viewer = current_actor()  # a rep sees the decisions about their own records; managers see everything
queue = read(queue_groups.overview, filters, actor=viewer)


# ---- clicks: callbacks run before the page is drawn again, so a decided item is gone at once ----------
def _report(outcome: queue_groups.Outcome | None) -> None:
    if outcome is not None:
        flash("success" if outcome.ok else "error", outcome.message)


def decide(item_id: int, verdict: str, prefix: str) -> None:
    actor = need_actor()
    if actor:
        note = st.session_state.get(f"{prefix}note_{item_id}") or None
        _report(write(queue_groups.decide_one, item_id, verdict=verdict, actor=actor, note=note))


def approve_edited(item: QueueItem, prefix: str) -> None:
    actor = need_actor()
    if not actor:
        return
    edits = {a.position: {f: st.session_state.get(f"{prefix}edit_{item.id}_{a.position}_{f}")
                          for f, _ in approvals.editable_fields(a.type)} for a in item.actions}
    note = st.session_state.get(f"{prefix}note_{item.id}") or None
    _report(write(queue_groups.decide_one, item.id, verdict="approve", actor=actor, note=note,
                  edited=approvals.edited_actions(item, edits)))


def skip(item_id: int) -> None:
    st.session_state.setdefault(SKIPPED_KEY, []).append(item_id)


def ask_to_confirm(verdict: str, group: str | None) -> None:
    try:
        st.session_state[CONFIRM_KEY] = read_fresh(queue_groups.plan, verdict, filters, group=group, actor=viewer)
    except UserError as exc:
        flash("warning", str(exc))


def confirmed() -> None:
    plan: queue_groups.BulkPlan | None = st.session_state.pop(CONFIRM_KEY, None)
    actor = need_actor()
    if plan is None or actor is None:
        return
    outcome = write(queue_groups.decide_many, plan.ids, verdict=plan.verdict, actor=actor)
    if outcome is not None:
        flash("success" if not outcome.failed and not outcome.skipped else "warning", outcome.message)
        for line in (outcome.failed + outcome.skipped)[:10]:
            flash("error", line)


def cancel() -> None:
    st.session_state.pop(CONFIRM_KEY, None)


def decide_selected(ids: list[int], verdict: str) -> None:
    actor = need_actor()
    chosen = [i for i in ids if st.session_state.get(f"queue_select_{i}")]
    if not actor:
        return
    if not chosen:
        flash("warning", f"Tick the items to {verdict} first.")
        return
    outcome = write(queue_groups.decide_many, chosen, verdict=verdict, actor=actor)
    if outcome is not None:
        flash("success" if not outcome.failed and not outcome.skipped else "warning", outcome.message)
        for line in outcome.failed + outcome.skipped:
            flash("error", line)


# ---- one card ------------------------------------------------------------------------------------------
def card(item: QueueItem, prefix: str, *, nested: bool) -> None:
    """Everything needed to judge one decision, in plain words. `nested`: drawn inside an expander."""
    for action in item.actions:
        st.markdown(f"**{action.headline}**")
        st.caption(("↩️ " if action.reversible else "⚠️ ") + fmt.plain(action.undo_note))
    if not item.actions:
        st.caption("No action proposed: the agent asks a person to look.")
    undo = ":green-badge[can be undone]" if item.reversible else ":orange-badge[cannot be fully undone]"
    value = f" :violet-badge[deal {fmt.money(item.deal_value, item.deal_currency or 'USD')}]" if item.deal_value else ""
    st.markdown(f":blue-badge[confidence {fmt.confidence(item.confidence)}] :gray-badge[{fmt.stakes_label(item.stakes)}] "
                f"{undo}{value} :gray-badge[expires {fmt.when(item.expires_at)}]")
    if item.escalation:
        st.warning(fmt.plain(item.escalation), icon="🚩")
    st.markdown("**Why it waits**  \n" + "  \n".join(f"• {line}" for line in item.why))
    if item.reasoning and item.reasoning.strip() not in (item.escalation or ""):  # an escalation often repeats it
        st.markdown("**The agent's reasoning**")
        st.text(fmt.plain(item.reasoning))
    st.caption(f"{item.agent_label} agent · {item.decided_by_line}")
    preview = (item.context_snapshot or {}).get("preview")
    if preview:  # a data-quality fix: the rows it would change, before anyone approves it
        st.markdown(f"**Rows this changes** (the first {len(preview)})")
        st.dataframe(pd.DataFrame(preview).drop(columns=["id"], errors="ignore"), hide_index=True,
                     key=f"{prefix}preview_{item.id}")
    editable = [(a, approvals.editable_fields(a.type)) for a in item.actions if approvals.editable_fields(a.type)]
    if editable:
        box = st.container(border=True) if nested else st.expander("Edit before approving")
        with box:
            if nested:
                st.caption("Edit before approving")
            for action, fields in editable:
                for field, multiline in fields:
                    widget = st.text_area if multiline else st.text_input
                    widget(f"{action.label}: {fmt.field_label(field)}", value=str(action.params.get(field) or ""),
                           key=f"{prefix}edit_{item.id}_{action.position}_{field}")
            st.button("Approve with my edits", key=f"{prefix}approve_edited_{item.id}", on_click=approve_edited,
                      args=(item, prefix))
    if not nested:
        with st.expander("Technical details (what the agent saw)"):
            st.json(item.context_snapshot, expanded=False)


# ---- the confirmation for a group or filter action -------------------------------------------------------
plan: queue_groups.BulkPlan | None = st.session_state.get(CONFIRM_KEY)
if plan is not None:
    with st.container(border=True, key="queue_confirm_box"):
        st.warning(f"**{plan.what}?**", icon="⚠️")
        for line in plan.cannot_undo:
            st.markdown(f"• {line}")
        if not plan.cannot_undo:
            st.caption("Every one of these can be reverted later from Activity and audit.")
        y, n, _ = st.columns([1, 1, 3])
        y.button(plan.confirm_label, key="queue_confirm_yes", type="primary", on_click=confirmed)
        n.button("Cancel", key="queue_confirm_no", on_click=cancel)

head, approve_all, reject_all = st.columns([3, 1, 1], vertical_alignment="bottom")
filtered = queue.total != queue.everything
head.markdown(f"### {queue.total:,} waiting" + (f" of {queue.everything:,} (filtered)" if filtered else ""))
if queue.total:
    scope = "under these filters" if filtered else "in the queue"
    approve_all.button(f"Approve all {queue.total:,}", key="queue_filter_approve", on_click=ask_to_confirm,
                       args=("approve", None), help=f"Approve every decision {scope}; you confirm first.")
    reject_all.button(f"Reject all {queue.total:,}", key="queue_filter_reject", on_click=ask_to_confirm,
                      args=("reject", None), help=f"Reject every decision {scope}; you confirm first.")

# Only the open tab is drawn: the one-at-a-time card's keyboard shortcuts exist only while it shows,
# so a key pressed on the group view never decides an item nobody is looking at.
TABS = ["By group", "One at a time", "List", "Decided"]
groups_tab, focus_tab, list_tab, decided_tab = st.tabs(TABS, key=TAB_KEY, on_change="rerun")

if groups_tab.open:
    with groups_tab:
        if queue.total == 0:
            if filtered:
                empty_state("Nothing waits under these filters.", "Clear a filter to see the whole queue.")
            else:
                empty_state("The queue is empty: nothing waits for a human.",
                            "Agents queue what they may not do alone (low confidence, high stakes, always-ask actions). "
                            "Thresholds are on **Agents and settings**.")
        for group in queue.groups:
            gkey = group.key.replace("|", "__").replace("+", "_")
            with st.container(border=True, key=f"queue_group_{gkey}"):
                title, yes, no = st.columns([4, 1, 1], vertical_alignment="center")
                flag = f" · 🚩 {group.escalated} escalated" if group.escalated else ""
                title.markdown(f"**{group.title}** · {fmt.stakes_label(group.stakes)}{flag}  \n{group.subtitle}")
                yes.button(f"Approve all {group.count}", key=f"queue_group_approve_{gkey}", on_click=ask_to_confirm,
                           args=("approve", group.key), type="primary")
                no.button(f"Reject all {group.count}", key=f"queue_group_reject_{gkey}", on_click=ask_to_confirm,
                          args=("reject", group.key))
                for line in group.preview:
                    st.caption(f"• {line}")
                if group.count > len(group.preview):
                    st.caption(f"… and {group.count - len(group.preview)} more like these")
                for line in group.cannot_undo:
                    st.caption(f"⚠️ {line}")

if focus_tab.open:
    with focus_tab:
        skipped = set(st.session_state.get(SKIPPED_KEY, []))
        remaining = [i for i in queue.ids if i not in skipped]
        if not queue.ids:
            empty_state("Nothing to review.", "New proposals appear here, most urgent first.")
        elif not remaining:
            st.info(f"You skipped all {len(skipped)} remaining item(s).", icon="💡")
            st.button("Show the skipped ones again", key="queue_focus_unskip", on_click=lambda: st.session_state.pop(SKIPPED_KEY, None))
        else:
            [current] = read(queue_groups.cards, [remaining[0]]) or [None]
            if current is not None:
                st.caption(f"Item 1 of {len(remaining):,} · shortcuts: A approve, X reject, S skip")
                with st.container(border=True, key="queue_focus_card"):
                    st.markdown(f"##### {current.subject_name}")
                    card(current, "queue_focus_", nested=False)
                    st.text_input("Reason (optional)", key=f"queue_focus_note_{current.id}", placeholder="kept with the decision")
                    a, r, s_, _ = st.columns([1, 1, 1, 3])
                    a.button("Approve", key="queue_focus_approve", type="primary", shortcut="A", on_click=decide,
                             args=(current.id, "approve", "queue_focus_"))
                    r.button("Reject", key="queue_focus_reject", shortcut="X", on_click=decide,
                             args=(current.id, "reject", "queue_focus_"))
                    s_.button("Skip", key="queue_focus_skip", shortcut="S", on_click=skip, args=(current.id,))

if list_tab.open:
    with list_tab:
        offset = page_offset("queue_page", PAGE_SIZE, filters=filters)
        page_ids = queue.ids[offset:offset + PAGE_SIZE]
        items = read(queue_groups.cards, page_ids) if page_ids else []
        if not items:
            if filtered:
                empty_state("Nothing waits under these filters.", "Clear a filter to see the whole queue.")
            else:
                empty_state("Nothing waits here.", "New proposals appear here, most urgent first; decided ones are under Decided.")
        else:
            t1, t2, _ = st.columns([1, 1, 4])
            t1.button("Approve ticked", key="queue_bulk_approve", on_click=decide_selected, args=([i.id for i in items], "approve"),
                      help="Approves every ticked item on this page, each on its own: one that fails does not stop the others.")
            t2.button("Reject ticked", key="queue_bulk_reject", on_click=decide_selected, args=([i.id for i in items], "reject"),
                      help="Rejects every ticked item on this page.")
            for item in items:
                pick, row = st.columns([1, 24], vertical_alignment="top")
                pick.checkbox("select", key=f"queue_select_{item.id}", label_visibility="collapsed")
                first = item.actions[0].headline if item.actions else f"A look at {item.subject_name}"
                more = f" (+{len(item.actions) - 1} more)" if len(item.actions) > 1 else ""
                label = (f"{'🚩 ' if item.escalation else ''}{first}{more} · {fmt.confidence(item.confidence)} · "
                         f"{fmt.stakes_label(item.stakes)}")
                with row.expander(label, key=f"queue_row_{item.id}"):
                    card(item, "queue_", nested=True)
                    st.text_input("Reason (optional)", key=f"queue_note_{item.id}", placeholder="kept with the decision")
                    b1, b2, _ = st.columns([1, 1, 4])
                    b1.button("Approve", key=f"queue_approve_{item.id}", type="primary", on_click=decide, args=(item.id, "approve", "queue_"))
                    b2.button("Reject", key=f"queue_reject_{item.id}", on_click=decide, args=(item.id, "reject", "queue_"))
            pager(queue.total, PAGE_SIZE, "queue_page")

if decided_tab.open:
    with decided_tab:
        feed = read(approvals.decided, agent=agent, limit=30)
        if not feed:
            empty_state("Nothing decided yet.", "Approved, edited, rejected and auto-approved decisions appear here with who decided.")
        else:
            st.dataframe(pd.DataFrame([{
                "When": fmt.when(d.decided_at or d.created_at), "Status": fmt.status_badge(d.status), "Agent": d.agent_label,
                "For": d.subject_name, "Actions": "; ".join(a.headline for a in d.actions),
                "By": d.decided_by or "", "Note": d.decision_note or "", "Confidence": fmt.confidence(d.confidence),
                "Result": fmt.plain(d.error) if d.error else "",
            } for d in feed]), hide_index=True, key="queue_decided")
