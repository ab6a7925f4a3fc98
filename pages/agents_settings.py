"""Agents and settings: scheduler health, spend per agent, policies, supervised mode, calibration."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core import clock
from crm_core.services import agent_ops, approvals, llm_costs, oversight_settings, users
from ui import format as fmt
from ui.data import flash, read, write
from ui.layout import empty_state, need_actor, page_header
from ui.session import current_actor

AGENT_COLOURS = {"lead_scoring": "#3b5bdb", "follow_up": "#2f9e44", "enrichment": "#845ef7", "pipeline": "#e8a317",
                 "meeting": "#1098ad"}

page_header("Agents and settings", "Is the scheduler alive, what do the agents cost, and how much may they do alone.")

# ---- scheduler ----------------------------------------------------------------------------------------
status = read(agent_ops.scheduler_status)
running = status.workers_alive > 0
st.markdown((f":green-badge[● scheduler running] {status.workers_alive} worker(s)" if running else ":red-badge[● scheduler not running]")
            + f" · last heartbeat {fmt.ago(status.last_beat_at, clock.now())}")
s1, s2, s3, s4 = st.columns(4)
s1.metric("Approval queue", fmt.integer(status.decisions_queued))
s2.metric("Jobs waiting", fmt.integer(status.jobs_pending))
s3.metric("Jobs running", fmt.integer(status.jobs_running))
s4.metric("Jobs given up", fmt.integer(status.jobs_dead), help="Failed after every retry; the last error is kept on the job.")
if not running:
    st.warning("No scheduler is running: agents will not score, follow up or flag deals. Start it with "
               "`python -m orchestration.scheduler` (or `make run`, which starts it with the dashboard).", icon="🛑")
beats = read(agent_ops.heartbeats)
if beats:
    with st.expander(f"Workers ({len(beats)})"):
        st.dataframe(pd.DataFrame([{
            "Worker": b.worker_id, "Host": b.hostname, "PID": b.pid, "Status": b.status if b.alive else f"{b.status} (silent)",
            "Last seen": fmt.ago(b.last_seen_at, clock.now()), "Current job": fmt.job_label(b.current_job), "Jobs done": b.jobs_done,
            "Tokens today": b.llm_tokens_today, "LLM cost today": fmt.usd_cost(b.llm_cost_today_usd),
        } for b in beats]), hide_index=True, key="agents_workers")

# ---- usage ------------------------------------------------------------------------------------------------
st.subheader("Decisions and LLM spend per agent per day")
u1, u2 = st.columns([1, 3])
days = u1.selectbox("Days", [7, 14, 30], index=1, key="agents_usage_days")
metric = u2.segmented_control("Show", ["decisions", "tokens", "cost_usd"], default="decisions", key="agents_usage_metric",
                              format_func={"decisions": "Decisions", "tokens": "LLM tokens", "cost_usd": "LLM cost (USD)"}.get)
metric = metric or "decisions"
usage = read(agent_ops.agent_usage_by_day, days=days)
if usage["decisions"].sum() == 0:
    empty_state(f"No decisions in the last {days} days.", "Agents decide when the scheduler runs them "
                "(`python -m orchestration.scheduler`), or once with `python -m orchestration run <agent>`.")
else:
    chart = go.Figure([
        go.Bar(name=fmt.agent_label(agent), x=part["day"], y=part[metric], marker_color=AGENT_COLOURS.get(agent, "#8a8f98"))
        for agent, part in usage.groupby("agent", sort=True)
    ])
    chart.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                        legend={"orientation": "h", "y": -0.2}, yaxis_title=metric.replace("_", " "))
    st.plotly_chart(chart, key="agents_usage_chart")
    totals = usage.groupby("agent")[["decisions", "input_tokens", "output_tokens", "cost_usd", "remote_decisions"]].sum().reset_index()
    st.dataframe(pd.DataFrame([{
        "Agent": fmt.agent_label(r.agent), "Decisions": int(r.decisions), "Input tokens": int(r.input_tokens), "Output tokens": int(r.output_tokens),
        "LLM cost": fmt.usd_cost(r.cost_usd), "Sent to a remote model": int(r.remote_decisions),
    } for r in totals.itertuples()]), hide_index=True, key="agents_usage_totals")
costs = read(llm_costs.decision_costs, days=days)
if costs:
    st.caption("What each decision by a remote model cost, from the usage the API returned")
    st.dataframe(pd.DataFrame([{
        "Day": c.day, "Agent": fmt.agent_label(c.agent), "Model": f"{c.model} ({c.tier})", "Decisions": c.decisions,
        "Cost per decision": fmt.usd_cost(c.cost_per_decision), "Read from the prompt cache": fmt.percent(c.cached_share),
        "LLM cost": fmt.usd_cost(c.cost_usd),
    } for c in costs]), hide_index=True, key="agents_decision_costs")

# ---- models -----------------------------------------------------------------------------------------------
config = read(agent_ops.runtime_config)
st.subheader("Models and provider")
st.caption(f"Read from the environment (CRM_* variables); change them there and restart. Provider: **{config.provider}** "
           f"({config.provider_reason}).")
st.markdown(f"Small tier `{config.model_small}` · mid tier `{config.model_mid}` · large tier `{config.model_large}`")
st.dataframe(pd.DataFrame([{
    "Agent": fmt.agent_label(a.agent), "Tier": a.tier or "—", "Model": a.model or "—",
    "Also uses": "; ".join(a.other_tiers) or "—", "Provider": a.provider, "Enabled": a.enabled,
    "Daily token budget": fmt.integer(a.daily_token_budget), "Daily cost budget": fmt.usd_cost(a.daily_cost_budget_usd) if a.daily_cost_budget_usd else "—",
} for a in config.agents]), hide_index=True, key="agents_models")
st.caption(f"Anthropic key {'set' if config.anthropic_key_set else 'not set'} · local model "
           f"{config.ollama_model + ' at ' + config.ollama_host if config.ollama_host else 'not configured (sensitive records use the offline reasoner)'}"
           f" · queued decisions expire after {config.queue_expiry_hours} h")

# ---- policies -----------------------------------------------------------------------------------------
st.subheader("What agents may do alone")
st.caption("An action runs by itself when the decision's confidence reaches its threshold and it is not always-ask; "
           "otherwise it waits in the approval queue. Every change is audited with your name.")
policies = read(oversight_settings.policies)
# The action type rides along as the hidden index: the row says what the action does in words.
before = pd.DataFrame([{
    "action": fmt.action_label(p.action_type), "stakes": p.stakes, "threshold": p.threshold, "always_ask": p.always_ask,
    "reversible": "yes" if p.reversible else "no", "updated": f"{fmt.when(p.updated_at)} by {p.updated_by or 'system'}",
} for p in policies], index=pd.Index([p.action_type for p in policies], name="action_type"))
edited = st.data_editor(before, hide_index=True, key="agents_policies", disabled=["action", "reversible", "updated"],
                        height=35 * (len(before) + 1) + 3,
                        column_config={
                            "action": st.column_config.TextColumn("Action"),
                            "stakes": st.column_config.SelectboxColumn("Stakes", options=list(approvals.STAKES), required=True),
                            "threshold": st.column_config.NumberColumn("Threshold", min_value=0.0, max_value=1.0, step=0.01, format="%.2f"),
                            "always_ask": st.column_config.CheckboxColumn("Always ask"),
                            "reversible": st.column_config.TextColumn("Can be undone"),
                            "updated": st.column_config.TextColumn("Last change"),
                        })
changes = oversight_settings.policy_changes(policies, edited.reset_index().to_dict("records"))
if st.button(f"Save {len(changes)} change(s)" if changes else "No changes to save", key="agents_save_policies",
             disabled=not changes, type="primary"):
    actor = need_actor()
    if actor and write(oversight_settings.save_policies, changes, actor=actor) is not None:
        flash("success", f"Saved {len(changes)} policy change(s) as {actor.name}: "
              + ", ".join(fmt.action_label(c.action_type) for c in changes) + ".")
    st.rerun()

# ---- supervised mode -----------------------------------------------------------------------------------
st.subheader("Supervised mode")
st.caption("A supervised agent queues every decision, whatever its confidence: for a trial period or a number of decisions.")
supervision = read(oversight_settings.supervision)
st.dataframe(pd.DataFrame([{
    "Agent": fmt.agent_label(s.agent), "Supervised": "yes" if s.supervised else "no", "Why": s.reason or "",
} for s in supervision]), hide_index=True, key="agents_supervision")
with st.form("agents_supervise_form"):
    a1, a2, a3, a4 = st.columns(4)
    agent = a1.selectbox("Agent", approvals.AGENTS, key="supervise_agent", format_func=fmt.agent_label)
    mode = a2.radio("Supervise", ["until a date", "for a number of decisions", "off"], key="supervise_mode")
    until = a3.date_input("Until (end of day, UTC)", value=clock.now().date() + timedelta(days=7), key="supervise_until")
    count = a4.number_input("Decisions", min_value=1, value=20, step=1, key="supervise_count")
    if st.form_submit_button("Apply"):
        actor = need_actor()
        if actor:
            view = write(oversight_settings.supervise, agent, actor=actor,
                         until=until if mode == "until a date" else None,
                         decisions=int(count) if mode == "for a number of decisions" else None, off=mode == "off")
            if view is not None:
                flash("success", f"{fmt.agent_label(agent)}: " + (view.reason or "not supervised") + f" (set by {actor.name}).")
        st.rerun()

st.markdown("**Starting trust.** Before anyone has approved or rejected an agent's proposals, each proposal's "
            "confidence is multiplied by this figure; every approval and rejection then moves it.")
st.dataframe(pd.DataFrame([{"Agent": fmt.agent_label(t.agent), "Starting trust": fmt.percent(t.trust), "Where it comes from": t.source}
                           for t in read(oversight_settings.starting_trust)]), hide_index=True, key="agents_starting_trust")

# ---- calibration ------------------------------------------------------------------------------------------
st.subheader("Calibration")
target = st.slider("Approval rate to aim for", 0.80, 0.99, 0.95, 0.01, key="agents_calibration_target",
                   help="For each action type: the lowest threshold at which humans approved this share of past queued decisions.")
report = read(oversight_settings.calibration, target=target)
if not report or all(r.decided == 0 for r in report):
    empty_state("No human verdicts yet.", "Calibration needs approved or rejected decisions from the queue; "
                "each verdict teaches what threshold the agents have earned.")
else:
    st.dataframe(pd.DataFrame([{
        "Action": fmt.action_label(r.action_type), "Current threshold": fmt.percent(r.current_threshold),
        "Suggested threshold": fmt.percent(r.suggested_threshold), "Verdicts": r.decided, "Approved as proposed": r.approved,
        "Approval rate": fmt.percent(r.approved / r.decided if r.decided else None),
        "At suggested": f"{r.approved_at_suggested}/{r.decided_at_suggested}", "Note": r.note,
    } for r in report]), hide_index=True, key="agents_calibration")

# ---- people and rights -------------------------------------------------------------------------------------
st.subheader("Who may do what")
st.caption("Rights are checked by the services behind every page, the command line and the HTTP API; "
           "a refused action says which right is missing. Admins manage users with `python -m crm_core users ...`.")
st.dataframe(pd.DataFrame([{
    "Right": r.right, "What it allows": r.description, "Rep": r.rep, "Manager": r.manager, "Admin": r.admin,
} for r in oversight_settings.rights_table()]), hide_index=True, key="agents_rights")
me = current_actor()
if me is not None and me.role == "admin":
    people = read(users.list_users)
    st.dataframe(pd.DataFrame([{
        "Name": u.name, "Role": u.role, "Email": u.email or "", "Active": "yes" if u.active else "no",
        "Signs in with": "password" if u.has_password else "single sign-on only" if u.email else "cannot sign in yet",
        "Locked until": fmt.when(u.locked_until) if u.locked_until else "",
        "Last sign-in": fmt.ago(u.last_sign_in_at, clock.now()) if u.last_sign_in_at else "never",
    } for u in people]), hide_index=True, key="agents_users")
