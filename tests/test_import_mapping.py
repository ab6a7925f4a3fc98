"""Header mapping: synonyms of common CRM exports, mapping files, defaults, and refused mappings."""
from __future__ import annotations

import json

import pytest

from crm_core.errors import UserError
from crm_core.importing import ImportMapping, auto_mapping, field_specs
from crm_core.importing.fields import resolve_mapping


def test_hubspot_salesforce_and_pipedrive_contact_headers_find_their_fields():
    headers = ["Record ID", "First Name", "Last Name", "Email Address", "Phone Number", "Job Title",
               "Company Name", "Contact owner", "Lead Source", "Lifecycle Stage", "Create Date"]
    assert auto_mapping("contacts", headers) == {
        "Record ID": "external_id", "First Name": "first_name", "Last Name": "last_name",
        "Email Address": "email", "Phone Number": "phone", "Job Title": "title", "Company Name": "account",
        "Contact owner": "owner", "Lead Source": "source", "Lifecycle Stage": "lifecycle_stage",
        "Create Date": "created_at"}


def test_header_spelling_and_punctuation_do_not_matter():
    mapping = auto_mapping("contacts", ["E-mail", "prospect_id", "FULL NAME", "Mobile Phone"])
    assert mapping == {"E-mail": "email", "prospect_id": "external_id", "FULL NAME": "name", "Mobile Phone": "phone"}


def test_deal_headers_of_crm_exports():
    mapping = auto_mapping("deals", ["Opportunity ID", "Opportunity Name", "Account Name", "Amount", "Close Date",
                                     "Stage", "Opportunity Owner"])
    assert mapping == {"Opportunity ID": "external_id", "Opportunity Name": "name", "Account Name": "account",
                       "Amount": "amount", "Close Date": "close_date", "Stage": "stage",
                       "Opportunity Owner": "owner"}


def test_unknown_headers_become_custom_attributes_with_snake_case_names():
    mapping = auto_mapping("contacts", ["Email", "Lead Status", "Número de Funcionários"])
    assert mapping["Lead Status"] == "attributes.lead_status"
    assert mapping["Número de Funcionários"] == "attributes.numero_de_funcionarios"


def test_a_second_header_for_a_taken_field_is_kept_as_an_attribute_not_dropped():
    mapping = auto_mapping("contacts", ["Email", "E-mail"])
    assert mapping == {"Email": "email", "E-mail": "attributes.e_mail"}


def test_headers_that_read_as_the_same_attribute_name_get_numbered():
    mapping = auto_mapping("contacts", ["Lead Status", "Lead-Status"])
    assert mapping == {"Lead Status": "attributes.lead_status", "Lead-Status": "attributes.lead_status_2"}


def test_our_own_export_columns_map_back():
    mapping = auto_mapping("contacts", ["crm_id", "crm_score", "company", "attributes.Landing Page"])
    assert mapping == {"crm_id": None, "crm_score": None, "company": "account",
                       "attributes.Landing Page": "attributes.landing_page"}


def test_a_mapping_file_overrides_single_headers_and_the_rest_stay_automatic(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"mql_id": "external_id", "origin": "source", "junk": None,
                                "landing_page_id": "attributes.page",
                                "__defaults__": {"lifecycle_stage": "mql"}}))
    mapping = ImportMapping.load(path)
    final, warnings = resolve_mapping("contacts", ["mql_id", "origin", "junk", "landing_page_id", "Email"], mapping, "f.csv")
    assert final == {"mql_id": "external_id", "origin": "source", "junk": None, "landing_page_id": "attributes.page",
                     "Email": "email"}
    assert warnings == []
    assert mapping.defaults == {"lifecycle_stage": "mql"}


def test_a_mapping_naming_a_column_the_file_lacks_is_a_warning():
    _, warnings = resolve_mapping("contacts", ["Email"], ImportMapping(columns={"Phone": "phone"}), "f.csv")
    assert warnings == ["the mapping names the column 'Phone', which f.csv does not have"]


def test_a_mapping_to_an_unknown_field_is_refused_with_the_allowed_names():
    with pytest.raises(UserError, match=r"'emial' is not a contacts field; use one of .*email"):
        resolve_mapping("contacts", ["Mail"], ImportMapping(columns={"Mail": "emial"}), "f.csv")


def test_two_headers_mapped_to_one_field_are_refused():
    with pytest.raises(UserError, match=r"columns 'A' and 'B' both map to 'email'"):
        resolve_mapping("contacts", ["A", "B"], ImportMapping(columns={"A": "email", "B": "email"}), "f.csv")


def test_a_file_without_any_identity_column_is_missing_a_required_column():
    with pytest.raises(UserError, match=r"f.csv: missing required column: contacts need a column for "
                                        r"external_id or email or name or first_name or last_name"):
        resolve_mapping("contacts", ["Company", "City"], None, "f.csv")


def test_a_default_satisfies_a_required_column():
    final, _ = resolve_mapping("deals", ["Deal Name"], ImportMapping(defaults={"status": "won"}), "f.csv")
    assert final == {"Deal Name": "name"}


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "a mapping is a JSON object"),
    ({"A": 3}, "header 'A' maps to 3"),
    ({"__defaults__": []}, "must be JSON objects"),
    ({"__scale__": {"revenue": "a lot"}}, "__scale__ of 'revenue' is 'a lot'"),
    ({"__date_formats__": {"d": "YYYY.MM"}}, "__date_formats__ of 'd' is 'YYYY.MM'"),
    ({"__kinds__": "contacts"}, "unknown key '__kinds__'"),  # __kind__ itself is the page's note of the kind
])
def test_malformed_mapping_files_are_refused_clearly(data, message):
    with pytest.raises(UserError, match=message):
        ImportMapping.from_json(data, source="m.json")


def test_a_mapping_file_that_is_not_json_names_the_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"a": "email",\n "b" }')
    with pytest.raises(UserError, match=r"m.json: not valid JSON \(line 2"):
        ImportMapping.load(path)


def test_every_kind_lists_its_fields_with_help():
    for kind in ("accounts", "contacts", "deals", "activities"):
        specs = field_specs(kind)
        assert "external_id" in specs
        assert all(spec.synonyms[0] == name for name, spec in specs.items())
