"""The fields each import kind fills, the header synonyms that find them, and header mapping.

Synonyms cover the headers HubSpot, Salesforce and Pipedrive exports use. Headers are compared
on letters and digits only, so 'E-mail', 'e_mail' and 'E MAIL' are the same header.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crm_core.errors import UserError
from crm_core.importing.contracts import ImportKind, ImportMapping
from crm_core.importing.normalize import attribute_key, header_key

FieldType = Literal["text", "email", "phone", "datetime", "date", "decimal", "integer", "boolean"]
ATTRIBUTES_PREFIX = "attributes."
# Our own export writes values the CRM computes (ids, scores, timestamps) under 'crm_*' headers:
# a re-import of an exported file ignores them instead of storing them as attributes.
READ_ONLY_PREFIX = "crm_"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    synonyms: tuple[str, ...]
    help: str


def _f(name: str, type_: FieldType, help_: str, *synonyms: str) -> FieldSpec:
    return FieldSpec(name, type_, (name, *synonyms), help_)


_ACCOUNT_LINK = (
    _f("account", "text", "company name; finds the account or creates it", "company", "company name", "account name",
       "organization", "organisation", "organization name", "organisation name", "employer", "associated company",
       "company account"),
    _f("account_domain", "text", "company domain or website; finds the account", "company domain",
       "company domain name", "website", "website url", "company website", "company url", "web site",
       "account domain", "domain"),
)
_OWNER = _f("owner", "text", "user name or email; finds the user or creates a rep", "contact owner", "lead owner",
            "account owner", "deal owner", "opportunity owner", "owner name", "sales rep", "sales agent",
            "assigned to", "rep", "salesperson", "user")

FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "contacts": (
        _f("external_id", "text", "id in the source system; the upsert key", "external id", "record id",
           "contact id", "prospect id", "lead id", "person id", "mql id", "source id", "hubspot id",
           "salesforce id", "id"),
        _f("first_name", "text", "", "first name", "firstname", "given name", "first", "forename"),
        _f("last_name", "text", "", "last name", "lastname", "surname", "family name", "last"),
        _f("name", "text", "full name, split into first and last", "full name", "contact name", "contact",
           "person", "lead name", "prospect name", "person name"),
        _f("email", "email", "upsert key when there is no external id", "e-mail", "email address",
           "e-mail address", "work email", "business email", "primary email", "mail", "contact email",
           "email 1", "personal email"),
        _f("phone", "phone", "", "phone number", "telephone", "tel", "mobile", "mobile phone", "mobile phone number",
           "work phone", "direct phone", "cell", "cell phone", "phone 1", "business phone"),
        _f("title", "text", "job title", "job title", "position", "role", "jobtitle", "designation"),
        *_ACCOUNT_LINK,
        _OWNER,
        _f("source", "text", "where the contact came from", "lead source", "original source", "origin",
           "channel", "utm source", "acquisition channel", "source channel"),
        _f("lifecycle_stage", "text", "lead, mql, sql, opportunity, customer or disqualified",
           "lifecycle stage", "lifecycle", "lifecyclestage", "stage", "contact stage", "lead stage"),
        _f("created_at", "datetime", "taken when the contact is created", "created", "create date", "created date",
           "date created", "created on", "first contact date", "first contact", "signup date", "sign up date"),
        _f("outcome_at", "datetime", "when it became customer or disqualified", "outcome date",
           "became a customer date", "customer since", "converted date", "conversion date", "disqualified date"),
        _f("last_activity_at", "datetime", "", "last activity date", "last activity", "last engagement date"),
        _f("notes", "text", "", "note", "description", "comments", "comment"),
        _f("sensitive", "boolean", "never sent to a remote model", "confidential", "do not share"),
    ),
    "accounts": (
        _f("external_id", "text", "id in the source system; the first upsert key", "external id", "account id",
           "company id", "record id", "organization id", "organisation id", "id"),
        _f("name", "text", "upsert key (lower-cased) when there is no domain", "account", "account name", "company",
           "company name", "organization", "organisation", "organization name", "organisation name"),
        _f("domain", "text", "upsert key", "website", "company domain", "company domain name", "web", "url",
           "website url", "domain name"),
        _f("industry", "text", "", "sector", "vertical"),
        _f("employee_count", "integer", "", "employees", "employee count", "number of employees",
           "no of employees", "num employees", "headcount"),
        _f("annual_revenue", "decimal", "whole units of the currency", "annual revenue", "revenue",
           "yearly revenue"),
        _f("country", "text", "", "country region", "billing country", "office location", "hq country",
           "country/region", "location"),
        _OWNER,
        _f("sensitive", "boolean", "never sent to a remote model", "confidential"),
    ),
    "deals": (
        _f("external_id", "text", "id in the source system; the upsert key", "external id", "deal id",
           "opportunity id", "record id", "id"),
        _f("name", "text", "made from account and product when absent", "deal name", "opportunity name", "deal",
           "deal title", "title"),
        *_ACCOUNT_LINK,
        _f("contact_email", "email", "primary contact, found by email", "contact email", "email",
           "primary contact email", "associated contact email", "person email", "e-mail", "email address"),
        _f("contact_external_id", "text", "primary contact, found by external id", "contact id",
           "contact external id", "mql id", "lead id", "prospect id", "person id"),
        _OWNER,
        _f("product", "text", "", "product name", "products", "line item"),
        _f("stage", "text", "stage name; Won/Closed Won/Lost/Closed Lost... set the status", "deal stage",
           "dealstage", "opportunity stage", "pipeline stage", "stage name", "sales stage"),
        _f("status", "text", "open, won or lost", "deal status", "outcome", "result", "won lost"),
        _f("amount", "decimal", "", "deal amount", "value", "deal value", "close value", "opportunity amount",
           "amount usd", "total"),
        _f("currency", "text", "ISO code, USD when absent", "currency code", "deal currency", "amount currency"),
        _f("opened_at", "datetime", "when the deal was first engaged", "engage date", "created", "create date",
           "created date", "date created", "opened", "open date", "start date", "created at"),
        _f("close_date", "datetime", "closed_at of a closed deal, expected_close of an open one", "close date",
           "closing date", "closedate", "close"),
        _f("expected_close", "date", "", "expected close date", "expected close", "estimated close date",
           "forecast close date"),
        _f("closed_at", "datetime", "", "closed at", "closed date", "date closed", "won date", "lost date",
           "closed on", "won time", "lost time"),
        _f("stage_entered_at", "datetime", "", "stage entered at", "stage date", "date entered stage",
           "last stage change date", "stage change date"),
    ),
    "activities": (
        _f("external_id", "text", "id in the source system; without it a fingerprint of the row", "external id",
           "activity id", "event id", "record id", "id"),
        _f("type", "text", "page_view, email_sent, call, meeting, note, form_submit...", "activity type",
           "event type", "activity", "kind", "event"),
        _f("occurred_at", "datetime", "", "occurred", "date", "timestamp", "time", "activity date", "event date",
           "date time", "datetime", "created at", "when"),
        _f("contact_email", "email", "the contact, found by email", "email", "contact email", "e-mail",
           "email address"),
        _f("contact_external_id", "text", "the contact, found by external id", "contact id", "contact external id",
           "lead id", "prospect id", "mql id", "person id"),
        _f("deal_external_id", "text", "the deal, found by external id", "deal id", "opportunity id",
           "deal external id"),
        _ACCOUNT_LINK[0],
        _f("user", "text", "user name or email; finds the user or creates a rep", "owner", "rep", "sales rep",
           "activity owner", "assigned to", "created by", "user name"),
        _f("subject", "text", "", "title", "summary"),
        _f("body", "text", "", "notes", "note", "description", "details", "content", "text"),
        _f("url", "text", "", "page", "page url", "link"),
        _f("source", "text", "", "channel"),
    ),
}

# A file must have a column (or a default) for at least one field of each group.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "contacts": (("external_id", "email", "name", "first_name", "last_name"),),
    "accounts": (("name", "domain", "external_id"),),
    "deals": (("stage", "status"), ("name", "external_id", "account", "product")),
    "activities": (("type",), ("occurred_at",), ("contact_email", "contact_external_id", "deal_external_id", "account")),
}


def field_specs(kind: ImportKind) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in FIELDS[kind]}


def _synonym_index(kind: ImportKind) -> dict[str, str]:
    index: dict[str, str] = {}
    for spec in FIELDS[kind]:
        for synonym in spec.synonyms:
            index.setdefault(header_key(synonym), spec.name)
    return index


def auto_mapping(kind: ImportKind, headers: list[str]) -> dict[str, str | None]:
    """Each header -> the field it names, or 'attributes.<name>' when it names none.

    A field is given to the first header that names it; a later header naming the same field
    becomes an attribute, so no value is dropped silently.
    """
    index = _synonym_index(kind)
    mapping: dict[str, str | None] = {}
    taken: set[str] = set()

    def attribute(name: str) -> str:
        # 'Lead-Status' and 'Lead Status' both read as lead_status: the second becomes lead_status_2.
        key, n = attribute_key(name), 1
        while ATTRIBUTES_PREFIX + (candidate := key if n == 1 else f"{key}_{n}") in taken:
            n += 1
        taken.add(ATTRIBUTES_PREFIX + candidate)
        return ATTRIBUTES_PREFIX + candidate

    for header in headers:
        if header.startswith(READ_ONLY_PREFIX):
            mapping[header] = None
            continue
        if header.lower().startswith(ATTRIBUTES_PREFIX):  # our own export's custom attribute columns
            mapping[header] = attribute(header[len(ATTRIBUTES_PREFIX):])
            continue
        target = index.get(header_key(header))
        if target is None or target in taken:
            mapping[header] = attribute(header)
        else:
            mapping[header] = target
            taken.add(target)
    return mapping


def resolve_mapping(kind: ImportKind, headers: list[str], mapping: ImportMapping | None,
                    filename: str) -> tuple[dict[str, str | None], list[str]]:
    """The mapping used for a file: the automatic one with the mapping file's entries on top.

    Returns (header -> target, warnings). Raises UserError when the mapping names an unknown
    field, sends two headers to one field, or leaves a required field without a column.
    """
    specs = field_specs(kind)
    overrides = mapping.columns if mapping else {}
    defaults = mapping.defaults if mapping else {}
    warnings: list[str] = []
    by_key = {header_key(h): h for h in headers}
    resolved_overrides: dict[str, str | None] = {}
    for header, target in overrides.items():
        actual = header if header in headers else by_key.get(header_key(header))
        if actual is None:
            warnings.append(f"the mapping names the column {header!r}, which {filename} does not have")
            continue
        resolved_overrides[actual] = _check_target(kind, target, specs, f"mapping for column {header!r}")
    for field in defaults:
        _check_target(kind, field, specs, "__defaults__")
    final: dict[str, str | None] = {}
    claimed = {t for t in resolved_overrides.values() if t}
    for header, target in auto_mapping(kind, headers).items():
        if header in resolved_overrides:
            final[header] = resolved_overrides[header]
        elif target in claimed:  # the mapping file gave this field (or name) to another header
            final[header] = ATTRIBUTES_PREFIX + attribute_key(header)
            if final[header] in claimed:
                final[header] = None
                warnings.append(f"column {header!r} is ignored: the mapping gives its name to another column")
        else:
            final[header] = target
    seen: dict[str, str] = {}
    for header, target in final.items():
        if target is None:
            continue
        if target in seen:
            raise UserError(f"{filename}: columns {seen[target]!r} and {header!r} both map to {target!r}; "
                            f"map one of them to another field, or leave it out")
        seen[target] = header
    mapped_fields = {t for t in final.values() if t} | set(defaults)
    for group in REQUIRED[kind]:
        if not mapped_fields & set(group):
            examples = ", ".join(repr(s) for f in group for s in specs[f].synonyms[1:3])
            raise UserError(f"{filename}: missing required column: {kind} need a column for "
                            f"{' or '.join(group)} (headers like {examples}); found {', '.join(map(repr, headers))}. "
                            "Rename the column, or map one of the file's columns to it")
    return final, warnings


def _check_target(kind: ImportKind, target: str | None, specs: dict[str, FieldSpec], where: str) -> str | None:
    if target is None:
        return None
    if target.startswith(ATTRIBUTES_PREFIX):
        name = target[len(ATTRIBUTES_PREFIX):]
        if not name:
            raise UserError(f"{where}: 'attributes.' needs a name after the dot")
        return target
    if target not in specs:
        raise UserError(f"{where}: {target!r} is not a {kind} field; use one of {', '.join(sorted(specs))}, "
                        "'attributes.NAME' or null")
    return target
