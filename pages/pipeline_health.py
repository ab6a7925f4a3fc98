"""Pipeline health: the board by stage with risk flags, weighted value, the red list, snoozing."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core import clock
from crm_core.services import fx, pipeline
from crm_core.services.owners import owner_choices
from ui import format as fmt
from ui.data import flash, read, write
from ui.layout import empty_state, need_actor, page_header, page_offset, pager
from ui.risk import risk_explanation
from ui.session import current_actor

PAGE_SIZE = 50
RED_CARDS = 6
STAGE_KEYS = ("red", "amber", "green", "snoozed", "unassessed")

page_header("Pipeline health", "Every open deal by stage with its risk flag. Red first: what needs a human today.")

viewer = current_actor()  # a rep sees their own deals; managers the whole team's
if viewer is None:
    st.stop()
may_edit_rates = fx.may_edit_rates(viewer)  # the service says who may; the others read the rates, no form that fails
choices = read(owner_choices, actor=viewer)
owner_names = dict(choices.owners)
owner_id = st.selectbox("Owner", options=[None, *owner_names] if choices.everyone else list(owner_names),
                        format_func=lambda v: "Everyone" if v is None else owner_names[v], key="pipeline_owner")
board = read(pipeline.pipeline_board, owner_id, actor=viewer, red_limit=RED_CARDS)

if board.open_deals == 0:
    empty_state("No open deals yet.", "Import deals on the **Import** page, or load the demo book with "
                "`python -m crm_core seed-demo`.")
    st.stop()


def money(value: float | None) -> str:
    return fmt.money(value, board.currency, compact=True)


def all_currencies(amounts: dict[str, float]) -> str:
    ordered = sorted(amounts.items(), key=lambda item: (item[0] != board.currency, -item[1]))
    return " + ".join(fmt.money(amount, cur, compact=True) for cur, amount in ordered) or "—"


def in_originals(amounts: dict[str, float]) -> str:
    """The originals, shown next to a converted figure only when more than the reporting currency is in it."""
    return "" if set(amounts) <= {board.currency} else all_currencies(amounts)


def card_amount(card: pipeline.DealCard) -> str:
    original = fmt.money(card.amount, card.currency, compact=True)
    if card.currency == board.currency or card.amount is None:
        return original
    if card.amount_reporting is None:
        return f"{original} (no {card.currency} rate)"
    return f"{original} (≈ {fmt.money(card.amount_reporting, board.currency, compact=True)})"


# ---- headline figures -------------------------------------------------------------------------
flags = board.flags
c1, c2, c3, c4 = st.columns(4)
c1.metric("Open deals", fmt.integer(board.open_deals))
originals = " + ".join(f"{fmt.money(t.amount, t.currency, compact=True)}" for t in board.by_currency)
c2.metric(f"Pipeline value ({board.currency})", money(board.amount),
          help=f"Every open deal converted to {board.currency}. In the deals' own currencies: {originals or '—'}.")
c3.metric(f"Weighted value ({board.currency})", money(board.weighted),
          help="Each stage's value times the share of closed deals through that stage that were won.")
c4.metric("Red flags", fmt.integer(board.red_total), help=f"{flags['snoozed']} more are snoozed")
others = [t for t in board.by_currency if t.currency != board.currency and t.rate is not None]
if others:
    source = "the built-in ECB reference rates" if board.rates_built_in else "the rates entered below"
    st.caption(f"Values in {board.currency}, converted with {source} of {fmt.when(board.rates_as_of)}: " + " · ".join(
        f"{fmt.money(t.amount, t.currency, compact=True)} in {t.open_deals} deal{'s' if t.open_deals != 1 else ''} "
        f"≈ {fmt.money(t.converted, board.currency, compact=True)}" for t in others) + ".")
for t in board.by_currency:
    if t.rate is None:
        add = "Add one under Exchange rates below." if may_edit_rates else f"Ask {fx.who_sets_rates()} to add one."
        st.warning(f"No exchange rate for {t.currency}: {t.open_deals} open deal{'s' if t.open_deals != 1 else ''} "
                   f"worth {fmt.money(t.amount, t.currency, compact=True)} {'are' if t.open_deals != 1 else 'is'} left out of the totals. "
                   f"{add}", icon="💱")
if flags["unassessed"] == board.open_deals:
    st.info("No deal has a risk flag yet: the pipeline agent sets them on its next scan. Start the scheduler with "
            "`python -m orchestration.scheduler` (or `make run`).", icon="🕒")

# ---- the red list -----------------------------------------------------------------------------------
def snooze_form(card: pipeline.DealCard, where: str) -> None:
    today = clock.now().date()
    with st.form(key=f"snooze_{where}_{card.id}", border=False):
        until = st.date_input("Resume on", value=today + timedelta(days=7), min_value=today + timedelta(days=1),
                              max_value=today + timedelta(days=pipeline.MAX_SNOOZE_DAYS), key=f"snooze_until_{where}_{card.id}")
        reason = st.text_input("Reason", placeholder="e.g. buyer on holiday until the 14th, call booked",
                               key=f"snooze_reason_{where}_{card.id}")
        if st.form_submit_button("Snooze flag"):
            actor = need_actor()
            if actor and write(pipeline.snooze_deal, card.id, until=until, reason=reason, actor=actor):
                flash("success", f"Flag on {card.name} snoozed until {until:%Y-%m-%d} by {actor.name}.")
            st.rerun()


def vs_typical(card: pipeline.DealCard) -> str:
    if card.days_in_stage is None:
        return "time in stage unknown"
    if not card.similar_avg_days:
        return f"{fmt.days(card.days_in_stage)} in {card.stage}"
    return (f"{fmt.days(card.days_in_stage)} in {card.stage}, typical {fmt.days(card.similar_avg_days)} "
            f"({card.days_in_stage / card.similar_avg_days:.1f}×)")


st.subheader(f"Red list ({board.red_total})")
if not board.red_list:
    st.success("No red flags right now. Amber deals are on the board below.", icon="🟢")
grid = st.columns(2)
for i, card in enumerate(board.red_list):
    with grid[i % 2].container(border=True, key=f"red_card_{card.id}"):
        head, link = st.columns([3, 1])
        head.markdown(f"{fmt.risk_markdown(card.risk)} **{card.name}**")
        link.page_link("pages/record_detail.py", label="Open deal", icon="🔎", query_params={"deal": str(card.id)})
        st.caption(f"{card.account or 'no account'} · {card.owner or 'no owner'} · **{card_amount(card)}** · {vs_typical(card)}")
        risk_explanation(card)
        with st.expander("Snooze this flag"):
            snooze_form(card, "red")
if board.red_total > len(board.red_list):
    st.caption(f"The {len(board.red_list)} largest of {board.red_total} red deals; choose the red flag on the board below for all of them.")


# ---- funnel and flags by stage ------------------------------------------------------------------
stages = board.stages
left, right = st.columns(2)
with left:
    st.subheader("Funnel")
    funnel = go.Figure(go.Funnel(
        y=[s.stage for s in stages], x=[s.open_deals for s in stages],
        text=[f"{s.open_deals} deals" for s in stages], textinfo="text",
        customdata=[f"{fmt.money(s.amount, board.currency, compact=True)}" + (f" ({o})" if (o := in_originals(s.amounts)) else "")
                    for s in stages],
        marker={"color": "#3b5bdb"}, hovertemplate="%{y}: %{text}<br>%{customdata}<extra></extra>",
    ))
    funnel.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(funnel, key="pipeline_funnel")
with right:
    st.subheader("Flags by stage")
    bars = go.Figure([
        go.Bar(name=fmt.RISK_LABELS[k], y=[s.stage for s in stages], x=[getattr(s, k) for s in stages], orientation="h",
               marker_color=fmt.RISK_COLOURS[k])
        for k in STAGE_KEYS
    ])
    bars.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                       legend={"orientation": "h", "y": -0.15}, yaxis={"autorange": "reversed"})
    st.plotly_chart(bars, key="pipeline_flags")

table = pd.DataFrame([{
    "Stage": s.stage, "Open deals": s.open_deals, f"Value ({board.currency})": fmt.money(s.amount, board.currency, compact=True),
    "Win rate": fmt.percent(s.win_rate),
    f"Weighted ({board.currency})": fmt.money(s.weighted, board.currency, compact=True),
    "In their currencies": in_originals(s.amounts), "🔴": s.red, "🟠": s.amber, "🟢": s.green, "💤": s.snoozed, "⚪": s.unassessed,
    "Typical days in stage": fmt.days(s.avg_days_in_stage), "Win rate basis": s.win_rate_basis,
} for s in stages])
st.dataframe(table, hide_index=True, key="pipeline_stages")


# ---- the board: one stage at a time, paged ------------------------------------------------------------
st.subheader("Board")
b1, b2 = st.columns([3, 1])
stage = b1.segmented_control("Stage", options=[s.stage for s in stages], default=stages[0].stage, key="pipeline_stage")
risk = b2.selectbox("Flag", options=[None, *STAGE_KEYS], key="pipeline_risk",
                    format_func=lambda v: "All flags" if v is None else fmt.risk_badge(None if v == "unassessed" else v, v == "snoozed"))
stage = stage or stages[0].stage
offset = page_offset("pipeline_board_page", PAGE_SIZE, filters=(owner_id, stage, risk))
deals = read(pipeline.stage_deals, stage=stage, actor=viewer, owner_id=owner_id, risk=risk, limit=PAGE_SIZE, offset=offset)
if not deals.rows:
    st.info("No open deals in this stage with this flag." if risk else "No open deals in this stage.", icon="💡")
else:
    frame = pd.DataFrame([{
        "Flag": fmt.risk_badge(c.flag, c.risk == "snoozed"), "Deal": c.name, "Account": c.account or "—", "Owner": c.owner or "—",
        "Amount": fmt.money(c.amount, c.currency),
        f"In {board.currency}": fmt.money(c.amount_reporting, board.currency) if c.currency != board.currency else "",
        "Days in stage": fmt.days(c.days_in_stage),
        "Typical (similar)": fmt.days(c.similar_avg_days), "Compared with": c.similar_basis or "", "Why": c.risk_reason or "",
        "Recommended": c.risk_action or "", "Snoozed until": fmt.when(c.snoozed_until) if c.risk == "snoozed" else "",
        "Detail": f"record_detail?deal={c.id}",
    } for c in deals.rows])
    st.dataframe(frame, hide_index=True, key="pipeline_board", column_config={
        "Detail": st.column_config.LinkColumn("Detail", display_text="Open ↗"),
        "Why": st.column_config.TextColumn(width="large"),
    })
    pager(deals.total, PAGE_SIZE, "pipeline_board_page")

    flagged = [c for c in deals.rows if c.risk in ("red", "amber")]
    snoozed = [c for c in deals.rows if c.risk == "snoozed"]
    if flagged or snoozed:
        with st.expander("Snooze or resume a flag on this page"):
            if flagged:
                chosen = st.selectbox("Deal", options=flagged, format_func=lambda c: f"{fmt.risk_badge(c.flag)} {c.name}",
                                      key="pipeline_snooze_pick")
                snooze_form(chosen, "board")
            for card in snoozed:
                cols = st.columns([4, 1])
                cols[0].markdown(f"💤 **{card.name}** until {fmt.when(card.snoozed_until)} by {card.snoozed_by}")
                cols[0].text(f"Reason: {card.snooze_reason or ''}")
                if cols[1].button("Resume now", key=f"resume_{card.id}"):
                    actor = need_actor()
                    if actor and write(pipeline.resume_deal_flag, card.id, actor=actor):
                        flash("success", f"Flag on {card.name} shows again.")
                    st.rerun()


# ---- exchange rates and the reporting currency ----------------------------------------------------------
with st.expander("Exchange rates and reporting currency"):
    table_of_rates = read(fx.rate_table)
    if not may_edit_rates:
        st.info(f"Exchange rates and the reporting currency are set by {fx.who_sets_rates()}: here you see the rates "
                "every total uses. Ask them when a rate is missing or out of date.", icon="🔒")
    r1, r2 = st.columns([1, 2])
    if may_edit_rates:
        codes = sorted(table_of_rates.rates)
        chosen_currency = r1.selectbox("Reporting currency", codes, index=codes.index(board.currency) if board.currency in codes else 0,
                                       key="fx_reporting")
        if chosen_currency != board.currency and r1.button("Use for every total", key="fx_reporting_save"):
            actor = need_actor()
            if actor and write(fx.set_reporting_currency, chosen_currency, actor=actor):
                flash("success", f"Totals are now shown in {chosen_currency}.")
            st.rerun()
    else:
        r1.metric("Reporting currency", board.currency)
    r2.caption(f"Rates are units of each currency per 1 EUR. Built in: {fx.DEFAULT_RATES_SOURCE}. The newest rate of each "
               "currency is used." + (" Enter a newer rate or upload a CSV (currency, units_per_eur, date as YYYY-MM-DD, "
                                      "optional source), e.g. the ECB's daily reference rates." if may_edit_rates else ""))
    in_book = {t.currency for t in board.by_currency}
    st.dataframe(pd.DataFrame([{
        "Currency": r.currency, "Per 1 EUR": r.units_per_eur, f"1 unit in {board.currency}": table_of_rates.rate(r.currency, board.currency),
        "Date": fmt.when(r.rate_date), "Source": r.source, "In open deals": "yes" if r.currency in in_book else "",
    } for r in sorted(table_of_rates.rates.values(), key=lambda r: (r.currency not in in_book, r.currency))]),
        hide_index=True, key="fx_rates")
    if may_edit_rates:
        with st.form("fx_rate_form", border=False):
            f1, f2, f3 = st.columns(3)
            code = f1.text_input("Currency", max_chars=3, placeholder="GBP", key="fx_code")
            value = f2.text_input("Units per 1 EUR", placeholder="0.8464", key="fx_value")
            when = f3.date_input("Rate date", value=clock.now().date(), max_value=clock.now().date(), key="fx_date")
            if st.form_submit_button("Save rate"):
                actor = need_actor()
                if actor and write(fx.set_rate, code, value, rate_date=when, actor=actor):
                    flash("success", f"{code.upper()} rate of {when:%Y-%m-%d} saved.")
                st.rerun()
        rates_file = st.file_uploader("Upload rates (CSV)", type=["csv"], key="fx_upload")
        if rates_file is not None and st.button("Store these rates", key="fx_upload_save"):
            actor = need_actor()
            if actor:
                stored_rates = write(fx.import_rates_csv, rates_file.getvalue(), actor=actor, filename=rates_file.name)
                if stored_rates is not None:
                    flash("success", f"{stored_rates} rate(s) stored from {rates_file.name}.")
                st.rerun()
