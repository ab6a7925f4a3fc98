"""Import: upload a CSV, check the column mapping, dry-run every row, then import with a progress bar."""
from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from crm_core.errors import UserError
from crm_core.services import imports
from ui import format as fmt
from ui.data import read_fresh, show_flash, write
from ui.layout import empty_state, need_user, page_header

KIND_HELP = {
    "accounts": "companies: name, domain, industry, size, revenue",
    "contacts": "people: name, email, phone, company, owner, source",
    "deals": "opportunities: name, account, stage, amount, owner, dates",
    "activities": "events: type, time, contact or deal (page views, calls, emails, meetings)",
}

page_header("Import", "Upload a CSV export (HubSpot, Salesforce, Pipedrive or a spreadsheet). Nothing is written "
            "until you press Import; the same file imported twice changes nothing.")

k1, k2 = st.columns([1, 2])
kind = k1.selectbox("The file holds", imports.KINDS, index=imports.KINDS.index("contacts"), key="import_kind",
                    format_func=lambda k: k.capitalize())
k2.caption(f"**{kind}**: {KIND_HELP.get(kind, '')}")
upload = st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="import_file")

if upload is None:
    st.session_state.pop("import_plan", None)
    empty_state("No file yet.", "Pick what the file holds, then drop a CSV here. Columns are matched to fields "
                "automatically; you can change any of them before a dry run.")
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

# ---- mapping ----------------------------------------------------------------------------------------------
fields = imports.field_choices(kind)
choices = [imports.IGNORE, imports.AS_ATTRIBUTE, *(f.name for f in fields)]
suggested = imports.suggested_mapping(kind, table.headers)
examples = table.preview(3)
mapping_rows = pd.DataFrame([{
    "CSV column": h,
    "Example": next((r[h] for r in examples if r.get(h)), ""),
    "Maps to": (imports.IGNORE if suggested.get(h) is None else
                imports.AS_ATTRIBUTE if str(suggested[h]).startswith("attributes.") else suggested[h]),
} for h in table.headers])
st.subheader("Column mapping")
st.caption("Matched automatically from the headers. A column no field fits is kept as a custom attribute; "
           "choose (ignore) to leave it out.")
edited = st.data_editor(mapping_rows, hide_index=True, key=f"import_mapping_{file_key}_{kind}", disabled=["CSV column", "Example"],
                        column_config={"Maps to": st.column_config.SelectboxColumn("Maps to", options=choices, required=True)})
with st.expander(f"What the {kind} fields mean"):
    st.dataframe(pd.DataFrame([{"Field": f.name, "Meaning": f.help} for f in fields]), hide_index=True, key="import_fields")
mapping = imports.mapping_from_choices(table.headers, dict(zip(edited["CSV column"], edited["Maps to"])))

st.subheader("Preview")
st.dataframe(pd.DataFrame(table.preview(20), columns=table.headers), hide_index=True, key="import_preview")

# ---- dry run --------------------------------------------------------------------------------------------
signature = (file_key, kind, mapping.model_dump_json())
if st.button("Dry run: check every row", key="import_dry_run", type="primary"):
    try:
        st.session_state["import_plan"] = (signature, read_fresh(imports.dry_run, kind, table, mapping))
        st.session_state.pop("import_summary", None)
    except UserError as exc:
        st.session_state.pop("import_plan", None)
        st.error(str(exc), icon="⚠️")

stored = st.session_state.get("import_plan")
plan = stored[1] if stored and stored[0] == signature else None
if stored and plan is None:
    st.info("The file, kind or mapping changed since the last dry run: run it again.", icon="🔁")
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
        st.warning(warning, icon="⚠️")
    if plan.errors:
        st.error(f"{c.invalid:,} row(s) cannot be imported as they are. Every problem is listed below; download "
                 "them, fix them and import that file again, or import the good rows now.", icon="⚠️")
        st.dataframe(pd.DataFrame([{"Row": e.row, "Column": e.column or "", "Value": e.value or "", "Problem": e.reason}
                                   for e in plan.errors]), hide_index=True, key="import_errors")
        st.download_button("Download the rejected rows (CSV)", data=imports.rejects_csv(plan),
                           file_name=f"rejected-{plan.filename}", mime="text/csv", key="import_rejects")
    else:
        st.success(f"All {plan.total_rows:,} rows are valid.", icon="✅")
    if plan.duplicates:
        with st.expander(f"{len(plan.duplicates)} likely duplicate(s): importing queues a merge proposal for each"):
            st.dataframe(pd.DataFrame([{"This": d.label, "Looks like": d.other_label, "Why": d.detail,
                                        "Confidence": fmt.percent(d.confidence)} for d in plan.duplicates]),
                         hide_index=True, key="import_duplicates")

    skip = False
    if plan.errors:
        skip = st.checkbox(f"Import the {plan.total_rows - c.invalid:,} good rows and skip the bad ones", key="import_skip")
    if st.button("Import", key="import_apply", type="primary", disabled=bool(plan.errors) and not skip):
        user = need_user()
        if user:
            bar = st.progress(0.0, text="Importing…")
            summary = write(imports.run_import, plan, user=user, skip_invalid=skip,
                            progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message))
            if summary is not None:
                bar.progress(1.0, text="Done")
                text = (f"{summary.filename} imported by {user}: {summary.created:,} created, {summary.updated:,} updated, "
                        f"{summary.unchanged:,} unchanged, {summary.skipped_invalid:,} bad rows skipped"
                        + (f", {summary.accounts_created:,} accounts and {summary.users_created:,} users created" if
                           summary.accounts_created or summary.users_created else "")
                        + (f"; {len(summary.merge_proposals)} merge proposal(s) wait in the approval queue" if summary.merge_proposals else "")
                        + ".")
                st.session_state["import_summary"] = text
                st.session_state.pop("import_plan", None)
                st.success(text, icon="✅")
        show_flash()
