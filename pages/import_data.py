"""Import: upload a CSV, choose or upload a mapping, set scales, date formats and default values, dry-run every
row (with warnings for implausible values and rows that would change live views), then import, optionally as history."""
from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from crm_core.errors import UserError
from crm_core.services import data_health, imports
from ui import format as fmt
from ui.data import read_fresh, show_flash, write
from ui.layout import empty_state, need_actor, page_header
from ui.session import current_actor

KIND_HELP = {
    "accounts": "companies: name, domain, industry, size, revenue",
    "contacts": "people: name, email, phone, company, owner, source",
    "deals": "opportunities: name, account, stage, amount, owner, dates",
    "activities": "events: type, time, contact or deal (page views, calls, emails, meetings)",
}
AUTOMATIC = "Automatic (from the column names)"
UPLOAD = "Upload a mapping file…"

page_header("Import", "Upload a CSV export (HubSpot, Salesforce, Pipedrive or a spreadsheet). Nothing is written "
            "until you press Import; the same file imported twice changes nothing.")
if refusal := imports.import_refusal(current_actor()):
    st.info(f"{refusal.rstrip('.')}. You can still check a file here: the dry run writes nothing.", icon="🔒")

k1, k2 = st.columns([1, 2])
kind = k1.selectbox("The file holds", imports.KINDS, index=imports.KINDS.index("contacts"), key="import_kind",
                    format_func=lambda k: k.capitalize())
k2.caption(f"**{kind}**: {KIND_HELP.get(kind, '')}")
upload = st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="import_file")

if upload is None:
    st.session_state.pop("import_plan", None)
    empty_state("No file yet.", "Pick what the file holds, then drop a CSV here. Columns are matched to fields "
                "automatically, or by a saved mapping; you can change any of them before a dry run.")
    if summary := st.session_state.get("import_summary"):
        st.success(summary, icon="✅")
    st.stop()

data = upload.getvalue()
file_key = hashlib.sha256(data).hexdigest()[:16]
try:
    table = imports.read_upload(data, upload.name)
except UserError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()
st.caption(f"{table.filename}: {table.row_count:,} rows, {len(table.headers)} columns, {table.encoding}, "
           f"delimiter {table.delimiter!r}")

def show_import_health(health: data_health.ImportAudit) -> None:
    """The data-quality audit of the table just filled: the book's score and the problems found, worst first."""
    before = f" (was {health.previous_book_score:.0f})" if health.previous_book_score is not None else ""
    with st.expander(f"Data quality after this import: the book scores {health.book_score:.0f} of 100{before}",
                     expanded=bool(health.problems)):
        for problem in health.problems[:10]:
            st.markdown(f"- {problem}")
        if len(health.problems) > 10:
            st.caption(f"{len(health.problems) - 10} more on the Data health page.")
        if health.duplicate_groups:
            st.caption(f"{health.duplicate_groups} group(s) of likely duplicate values.")
        if not health.problems and not health.duplicate_groups:
            st.caption("No problems found in the imported fields.")


# ---- which mapping to start from ---------------------------------------------------------------------------
st.subheader("Column mapping")
presets = imports.mapping_presets(kind)
by_label = {p.label: p for p in presets}
options = [AUTOMATIC, *by_label, UPLOAD]
fits = imports.suggested_preset(kind, table.headers)
start = st.selectbox("Start from", options, index=options.index(fits.label) if fits else 0,
                     key=f"import_preset_{file_key}_{kind}",
                     help="The mappings that ship with the CRM (for the public Maven and Olist datasets) and those "
                          "saved from this page. Everything stays editable below.")
if fits is not None and start == fits.label:
    st.caption(f"This file's columns match the mapping **{fits.label}**, so it is chosen; pick another to change it.")
base = None
base_key = "auto"
try:
    if start == UPLOAD:
        mapping_upload = st.file_uploader("Mapping file (JSON)", type=["json"], key="import_mapping_file")
        if mapping_upload is not None:
            base = imports.mapping_from_file(mapping_upload.getvalue(), mapping_upload.name)
            base_key = "upload-" + hashlib.sha256(mapping_upload.getvalue()).hexdigest()[:12]
    elif start in by_label:
        preset = by_label[start]
        base = imports.load_preset(preset.name, preset.source)
        base_key = f"{preset.source}-{preset.name}"
except UserError as exc:
    st.error(str(exc), icon="⚠️")

settings = imports.column_settings(kind, table, base)
fields = imports.field_choices(kind)
choices = [imports.IGNORE, imports.AS_ATTRIBUTE, *(f.name for f in fields)]
st.caption("Each column becomes a field, a custom attribute, or is left out. Scale multiplies every value "
           "(1,000,000 when a column is in millions); a date format fixes how an ambiguous date column is read.")
editor_key = f"import_mapping_{file_key}_{kind}_{base_key}"
edited = st.data_editor(
    pd.DataFrame([{"CSV column": s.column, "Example": s.example, "Maps to": s.maps_to, "Scale": s.scale,
                   "Date format": s.date_format} for s in settings]),
    hide_index=True, key=editor_key, disabled=["CSV column", "Example"],
    column_config={
        "Maps to": st.column_config.SelectboxColumn("Maps to", options=choices, required=True),
        "Scale": st.column_config.NumberColumn("Scale", min_value=0.0, help="e.g. 1000 for thousands, 1000000 for millions"),
        "Date format": st.column_config.SelectboxColumn("Date format", options=list(imports.DATE_FORMATS), required=True),
    })
with st.expander(f"What the {kind} fields mean"):
    st.dataframe(pd.DataFrame([{"Field": f.name, "Meaning": f.help} for f in fields]), hide_index=True, key="import_fields")

st.markdown("**Default values**: set a field for every row (and fill its empty cells), e.g. the stage of a file of "
            "won deals.")
defaults_start = pd.DataFrame([{"Field": k, "Value": str(v)} for k, v in (base.defaults if base else {}).items()],
                              columns=["Field", "Value"])
defaults_edited = st.data_editor(
    defaults_start, hide_index=True, num_rows="dynamic", key=f"import_defaults_{file_key}_{kind}_{base_key}",
    column_config={"Field": st.column_config.SelectboxColumn("Field", options=[f.name for f in fields]),
                   "Value": st.column_config.TextColumn("Value")})

mapping = None
try:
    rows = [imports.ColumnSetting(column=r["CSV column"], example=str(r["Example"] or ""), maps_to=r["Maps to"],
                                  scale=None if pd.isna(r["Scale"]) else float(r["Scale"]),
                                  date_format=r["Date format"] or imports.AUTO_DATE)
            for r in edited.to_dict("records")]
    defaults = {r["Field"]: r["Value"] for r in defaults_edited.to_dict("records")
                if isinstance(r.get("Field"), str) and r.get("Value") not in (None, "") and not pd.isna(r.get("Value"))}
    mapping = imports.mapping_from_settings(kind, rows, defaults, imports.attribute_names(base))
except UserError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()

with st.expander("Save this mapping for next time"):
    s1, s2 = st.columns([2, 1])
    name = s1.text_input("Name", key="import_save_name", placeholder="e.g. Salesforce contacts")
    replace = s2.checkbox("Replace a saved one of that name", key="import_save_replace")
    c1, c2 = st.columns(2)
    if c1.button("Save mapping", key="import_save"):
        actor = need_actor()
        if actor:
            try:
                saved = imports.save_mapping(name, mapping, kind=kind, actor=actor, overwrite=replace)
                st.success(f"Saved as {saved.label}: it is offered under 'Start from' next time.", icon="✅")
            except UserError as exc:
                st.error(str(exc), icon="⚠️")
        show_flash()
    c2.download_button("Download as a mapping file", data=json.dumps(imports.mapping_file(mapping, kind), indent=2),
                       file_name=f"{kind}-mapping.json", mime="application/json", key="import_mapping_download")

st.subheader("Preview")
st.dataframe(pd.DataFrame(table.preview(20), columns=table.headers), hide_index=True, key="import_preview")

# ---- dry run --------------------------------------------------------------------------------------------
as_history = st.checkbox(
    "Import as history", key="import_as_history",
    help="For old exports: closed deals, open deals untouched for over a year (recorded as lost, stale) and leads "
         "untouched for over a year (recorded as disqualified) go in for learning, off the live board, with no "
         "agent decision per row and one audit entry for the whole import.")
signature = (file_key, kind, mapping.model_dump_json(), as_history)
if st.button("Dry run: check every row", key="import_dry_run", type="primary"):
    try:
        st.session_state["import_plan"] = (signature, read_fresh(imports.dry_run, kind, table, mapping, as_history))
        st.session_state.pop("import_summary", None)
    except UserError as exc:
        st.session_state.pop("import_plan", None)
        st.error(str(exc), icon="⚠️")

stored = st.session_state.get("import_plan")
plan = stored[1] if stored and stored[0] == signature else None
if stored and plan is None:
    st.info("The file, kind, mapping or history setting changed since the last dry run: run it again.", icon="🔁")
if plan is not None:
    st.subheader("Dry run")
    c = plan.counts
    m = st.columns(6)
    m[0].metric("New", fmt.integer(c.create))
    m[1].metric("Updated", fmt.integer(c.update))
    m[2].metric("Unchanged", fmt.integer(c.unchanged))
    m[3].metric("Bad rows", fmt.integer(c.invalid))
    m[4].metric("New accounts", fmt.integer(c.accounts_create))
    m[5].metric("New users", fmt.integer(c.users_create))
    for warning in plan.warnings:
        st.warning(imports.page_wording(warning), icon="⚠️")
    for check in plan.checks:
        st.warning(check.message, icon="⚠️")
    if plan.history_suggested:
        st.info("This file holds old records that would change the live views. Tick **Import as history** above and "
                "run the dry run again to keep them for learning only.", icon="🗄️")
    if plan.as_history and plan.history is not None:
        st.info(imports.history_text(plan.history), icon="🗄️")
    if plan.errors:
        st.error(f"{c.invalid:,} row(s) cannot be imported as they are. Every problem is listed below; download "
                 "them, fix them and import that file again, or import the good rows now.", icon="⚠️")
        st.dataframe(pd.DataFrame([{"Row": e.row, "Column": e.column or "", "Value": e.value or "", "Problem": e.reason}
                                   for e in plan.errors]), hide_index=True, key="import_errors")
        st.download_button("Download the rejected rows (CSV)", data=imports.rejects_csv(plan),
                           file_name=f"rejected-{plan.filename}", mime="text/csv", key="import_rejects")
    elif plan.checks:
        st.success(f"All {plan.total_rows:,} rows can be read; check the warnings above before importing.", icon="✅")
    else:
        st.success(f"All {plan.total_rows:,} rows are valid.", icon="✅")
    if plan.duplicates:
        what = ("listed only: a history import queues no merge proposals" if plan.as_history
                else "importing queues a merge proposal for each")
        with st.expander(f"{len(plan.duplicates)} likely duplicate(s): {what}"):
            st.dataframe(pd.DataFrame([{"This": d.label, "Looks like": d.other_label, "Why": d.detail,
                                        "Confidence": fmt.percent(d.confidence)} for d in plan.duplicates]),
                         hide_index=True, key="import_duplicates")

    skip = False
    if plan.errors:
        skip = st.checkbox(f"Import the {plan.total_rows - c.invalid:,} good rows and skip the bad ones", key="import_skip")
    if st.button("Import", key="import_apply", type="primary", disabled=bool(plan.errors) and not skip):
        actor = need_actor()
        if actor:
            bar = st.progress(0.0, text="Importing…")
            summary = write(imports.run_import, plan, actor=actor, skip_invalid=skip,
                            progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message))
            if summary is not None:
                bar.progress(1.0, text="Done")
                text = imports.summary_text(summary, actor.name)
                st.session_state["import_summary"] = text
                st.session_state.pop("import_plan", None)
                st.success(text, icon="✅")
                if kind in imports.AUDITED_KINDS:
                    health = write(data_health.audit_for_import, import_ref=f"{kind} from {summary.filename}", entity=kind,
                                   actor=actor)
                    if health is not None:
                        show_import_health(health)
        show_flash()
