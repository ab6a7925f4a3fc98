"""CSV import: accounts, contacts, deals and activities from CRM exports, into the store.

Service API (the CLI and the dashboard's Import page both use exactly this):

    table = read_csv(path_or_bytes, filename=None)        -> RawTable
        Encoding (UTF-8, UTF-8 with BOM, UTF-16 with BOM, Windows-1252/Latin-1) and delimiter
        (comma, semicolon, tab, pipe) detected. table.headers, table.row_count, table.encoding,
        table.delimiter, table.preview(n). Raises UserError for a 0-byte file, an empty file, a
        header-only file, a wrong encoding, a ragged line or a duplicate header.

    auto_mapping(kind, headers)                             -> dict[header, field | "attributes.x" | None]
        What each header becomes without a mapping file (synonyms of HubSpot, Salesforce and
        Pipedrive headers; everything else a custom attribute). `field_specs(kind)` lists the
        fields with a one-line help each, for a mapping editor.

    mapping = ImportMapping.load(path) / ImportMapping.from_json(dict)
        {"CSV header": "field" | "attributes.NAME" | null, "__defaults__": {"field": value},
         "__scale__": {"CSV header": 1000000}, "__date_formats__": {"CSV header": "D/M/YYYY"}}.
        Headers it does not name are mapped automatically.

    plan = plan_import(session, kind, table, mapping=None)  -> ImportPlan   (writes nothing)
        plan.mapping (every header), plan.counts (create/update/unchanged/invalid, accounts and
        users to create), plan.errors [RowError: file, row (header = row 1), column, value,
        reason], plan.duplicates [DuplicateCandidate], plan.date_formats, plan.attribute_types,
        plan.warnings, plan.ok. Raises UserError for a problem with the whole file (missing
        required column, two headers on one field, a bad mapping).

    summary = apply_import(session, plan, *, skip_invalid=False, progress=None, actor="system")
                                                            -> ImportSummary
        Writes in the caller's transaction (`with unit_of_work() as session:`). With errors and
        skip_invalid=False it raises ImportRejected (a UserError) before writing anything.
        progress(fraction, message) is called as rows are written (st.progress fits). Likely
        duplicates become queued merge proposals: summary.merge_proposals (Decision ids).

    write_rejects(plan, path, errors=None)                  -> rows written
        The bad rows as they were, with `row` and `errors` columns first, for fixing and
        importing again.

Rules: contacts upsert on external id, else email (case-insensitive), else name at the same
company; accounts on external id, domain, then lower-cased name; deals on external id, else
name at the same account; activities on external id, else a fingerprint of the row. An empty
cell never erases a stored value; the same file imported twice changes nothing. Columns that
map to no field land in `attributes`, typed number, date, boolean or text from all their
values. Dates: ISO, M/D/YYYY, D/M/YYYY, D-M-YYYY, M-D-YYYY, D.M.YYYY (a column is read in one
format, chosen from all its values). Contacts' `created_at` is taken from the file when the
contact is created (the Olist mapping maps first_contact_date to it).
"""
from crm_core.importing.contracts import (
    IMPORT_KINDS,
    DuplicateCandidate,
    ImportCounts,
    ImportKind,
    ImportMapping,
    ImportPlan,
    ImportSummary,
    RawTable,
    RowError,
)
from crm_core.importing.fields import FieldSpec, auto_mapping, field_specs
from crm_core.importing.reading import read_csv
from crm_core.importing.service import ImportRejected, apply_import, plan_import, write_rejects

__all__ = [
    "IMPORT_KINDS", "DuplicateCandidate", "FieldSpec", "ImportCounts", "ImportKind", "ImportMapping", "ImportPlan",
    "ImportRejected", "ImportSummary", "RawTable", "RowError", "apply_import", "auto_mapping", "field_specs",
    "plan_import", "read_csv", "write_rejects",
]
