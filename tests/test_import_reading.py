"""Reading CSV files as users save them: encodings, delimiters, and files that cannot be read."""
from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.errors import UserError
from crm_core.importing import read_csv

FIXTURES = Path(__file__).parent / "fixtures" / "csv"


def test_utf8_with_bom_is_read_and_the_mark_is_not_part_of_the_first_header():
    table = read_csv(FIXTURES / "hubspot_contacts.csv")
    assert table.encoding == "utf-8-sig"
    assert table.delimiter == ","
    assert table.headers[0] == "Record ID"
    assert table.row_count == 3
    assert table.frame.loc[4, "First Name"] == "Chloé"


def test_windows_1252_semicolon_file_keeps_its_accents():
    table = read_csv(FIXTURES / "salesforce_leads_semicolon_cp1252.csv")
    assert table.encoding == "cp1252"
    assert table.delimiter == ";"
    assert table.frame.loc[2, "First Name"] == "José"
    assert table.frame.loc[3, "Last Name"] == "Dupré"
    assert table.frame.loc[2, "Annual Revenue"] == "1.250.000,50"


def test_latin1_bytes_that_windows_1252_leaves_undefined_are_a_wrong_encoding():
    data = "name,email\nAna,a@x.example\n".encode() + b"Bad\x81Byte,b@x.example\n"
    with pytest.raises(UserError, match=r"upload.csv: wrong encoding: byte \d+ \(0x81\)"):
        read_csv(data)


def test_plain_latin1_without_undefined_bytes_is_read():
    table = read_csv("name,city\nJoão,São Paulo\n".encode("latin-1"), "leads.csv")
    assert table.encoding in ("cp1252", "latin-1")
    assert table.frame.loc[2, "city"] == "São Paulo"


def test_tab_separated_file_is_detected():
    table = read_csv(FIXTURES / "pipedrive_deals.tsv.csv")
    assert table.delimiter == "\t"
    assert table.headers == ["Deal ID", "Title", "Organization", "Person email", "Owner", "Stage", "Value",
                             "Currency", "Expected close date", "Closed On"]


def test_commas_inside_a_semicolon_file_do_not_fool_the_delimiter_detection():
    data = b'name;amount;note\nAna;1,5;"a, b, c"\nBill;2,75;x,y\n'
    table = read_csv(data, "eu.csv")
    assert table.delimiter == ";"
    assert table.frame.loc[3, "note"] == "x,y"


def test_utf16_with_byte_order_mark_is_read():
    data = "name\temail\nAna\tana@x.example\n".encode("utf-16")
    table = read_csv(data, "excel-unicode.txt")
    assert table.encoding == "utf-16"
    assert table.frame.loc[2, "email"] == "ana@x.example"


@pytest.mark.parametrize(("fixture", "message"), [
    ("bad_zero_bytes.csv", r"bad_zero_bytes.csv: the file is empty \(0 bytes\)"),
    ("bad_empty.csv", r"bad_empty.csv: the file has no header row"),
    ("bad_header_only.csv", r"bad_header_only.csv: the file has a header row but no data rows"),
    ("bad_wrong_encoding.csv", r"bad_wrong_encoding.csv: wrong encoding: the file holds NUL bytes"),
])
def test_unreadable_files_give_one_clear_error_naming_the_file(fixture, message):
    with pytest.raises(UserError, match=message):
        read_csv(FIXTURES / fixture)


def test_an_excel_workbook_saved_with_a_csv_name_is_named_as_such():
    with pytest.raises(UserError, match=r"book.csv: this is a ZIP archive \(an Excel .xlsx workbook\?\)"):
        read_csv(b"PK\x03\x04rest-of-zip", "book.csv")


def test_a_missing_file_is_a_user_error():
    with pytest.raises(UserError, match="no such file"):
        read_csv(FIXTURES / "does-not-exist.csv")


def test_a_line_with_too_many_cells_names_the_line():
    with pytest.raises(UserError, match=r"x.csv: line 3 has 4 cells but the header has 3 \(a stray comma"):
        read_csv(b"a,b,c\n1,2,3\n4,5,6,7\n", "x.csv")


def test_a_header_appearing_twice_is_refused():
    with pytest.raises(UserError, match=r"the header 'email' appears twice \(columns 2 and 3\)"):
        read_csv(b"name,Email,email\nAna,a@x.example,b@x.example\n", "x.csv")


def test_row_numbers_are_the_spreadsheet_rows_with_blank_lines_counted_and_skipped():
    table = read_csv(b"name,email\nAna,a@x.example\n\nBill,b@x.example\n,\n", "x.csv")
    assert list(table.frame.index) == [2, 4]
    assert table.row_count == 2


def test_a_trailing_delimiter_on_every_line_adds_no_column():
    table = read_csv(b"name,email,\nAna,a@x.example,\n", "x.csv")
    assert table.headers == ["name", "email"]


def test_a_column_with_data_but_no_header_is_refused():
    with pytest.raises(UserError, match="column 2 has data but no header"):
        read_csv(b"name,\nAna,42\n", "x.csv")


def test_preview_shows_the_first_rows_as_dicts():
    table = read_csv(FIXTURES / "hubspot_contacts.csv")
    preview = table.preview(2)
    assert len(preview) == 2
    assert preview[0]["Email"] == "ana.souza@acme.example"


def test_windows_line_endings_and_a_quoted_cell_spanning_lines_are_one_row_each():
    table = read_csv(b'name,note\r\nAna,"line one\r\nline two"\r\nBill,short\r\n', "crlf.csv")
    assert list(table.frame.index) == [2, 3]
    assert table.frame.loc[2, "note"] == "line one\r\nline two"
    assert table.frame.loc[3, "name"] == "Bill"
