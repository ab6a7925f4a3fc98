"""Typing CSV columns: dates resolved per column, numbers, phones, emails and custom attributes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pandas as pd
import pytest

from crm_core.importing.normalize import domain_key, email_canonical, phone_key
from crm_core.importing.parsing import (
    clean_text,
    infer_attribute,
    normalise_phones,
    parse_booleans,
    parse_dates,
    parse_decimals,
    parse_integers,
)
from crm_core.importing.rows import read_email


def col(*values):
    return clean_text(pd.Series(list(values), dtype=object))


def test_a_slash_column_with_a_day_above_12_is_read_day_first_for_every_value():
    parsed = parse_dates(col("03/04/2024", "25/03/2024", ""))
    assert parsed.label == "D/M/YYYY"
    assert parsed.as_python() == [datetime(2024, 4, 3), datetime(2024, 3, 25), None]
    assert not parsed.bad.any()


def test_a_slash_column_with_a_second_part_above_12_is_read_month_first():
    parsed = parse_dates(col("3/1/2017", "10/20/2016", "12/31/2017"))
    assert parsed.label == "M/D/YYYY"
    assert parsed.as_python()[0] == datetime(2017, 3, 1)
    assert parsed.ambiguous_with == []


def test_an_ambiguous_slash_column_is_read_month_first_and_says_so():
    parsed = parse_dates(col("01/02/2024", "03/04/2024"))
    assert parsed.label == "M/D/YYYY"
    assert parsed.ambiguous_with == ["D/M/YYYY"]
    assert parsed.as_python()[0] == datetime(2024, 1, 2)


def test_a_forced_format_settles_an_ambiguous_column():
    parsed = parse_dates(col("01/02/2024", "03/04/2024"), forced="D/M/YYYY")
    assert parsed.as_python()[0] == datetime(2024, 2, 1)


def test_dash_dates_are_read_day_first():
    parsed = parse_dates(col("31-12-2023", "01-02-2024 14:30"))
    assert parsed.label == "D-M-YYYY"
    assert parsed.as_python() == [datetime(2023, 12, 31), datetime(2024, 2, 1, 14, 30)]


def test_iso_values_are_accepted_beside_the_column_format_and_offsets_become_utc():
    parsed = parse_dates(col("2024-05-01", "2024-05-02T10:00:00+02:00", "5/3/2024", "2018-02-26 19:58:54"))
    assert parsed.as_python() == [datetime(2024, 5, 1), datetime(2024, 5, 2, 8, 0), datetime(2024, 5, 3),
                                  datetime(2018, 2, 26, 19, 58, 54)]


def test_values_that_are_no_date_are_marked_bad_and_the_rest_still_read():
    parsed = parse_dates(col("2024-01-01", "next tuesday", "13/13/2024"))
    assert parsed.bad.tolist() == [False, True, True]


def test_date_only_output_for_date_fields():
    assert parse_dates(col("9/30/2025")).as_python(date_only=True) == [date(2025, 9, 30)]


def test_us_and_european_grouping_and_currency_symbols_are_read():
    assert parse_decimals(col("$1,234.50", "12,500", "(75)", "USD 99")).values == [
        Decimal("1234.50"), Decimal("12500"), Decimal("-75"), Decimal("99")]
    assert parse_decimals(col("1.250.000,50", "980,00")).values == [Decimal("1250000.50"), Decimal("980.00")]


def test_a_word_in_a_number_column_is_bad_and_named():
    numbers = parse_decimals(col("100", "ten thousand", ""))
    assert numbers.bad.tolist() == [False, True, False]
    assert numbers.values == [Decimal("100"), None, None]


def test_integers_refuse_fractions():
    numbers = parse_integers(col("250", "12.5"))
    assert numbers.values[0] == 250
    assert numbers.bad.tolist() == [False, True]


def test_booleans_in_common_spellings():
    values, bad = parse_booleans(col("Yes", "no", "TRUE", "0", "maybe", ""))
    assert values == [True, False, True, False, None, None]
    assert bad.tolist() == [False, False, False, False, True, False]


@pytest.mark.parametrize(("raw", "key"), [
    ("(415) 555-0101", "+14155550101"),
    ("+49 30 1234567", "+49301234567"),
    ("0049 30 1234567", "+49301234567"),
    ("1-800-555-0199 ext. 12", "+18005550199"),
    ("01 23 45 67 89", "0123456789"),
    ("123", None),
    ("call me", None),
])
def test_phones_normalise_to_e164_where_they_can_and_the_column_version_agrees(raw, key):
    assert phone_key(raw) == key
    assert normalise_phones(col(raw)).tolist() == [key]


def test_emails_are_read_from_display_forms_and_bad_ones_refused():
    assert read_email("Jane Doe <Jane.Doe@Example.com>") == "Jane.Doe@Example.com"
    assert read_email("mailto:ana@acme.example") == "ana@acme.example"
    for bad in ("bill-at-globex", "a@b", "a..b@x.example", "two@@x.example", "sp ace@x.example"):
        with pytest.raises(ValueError, match="is not an email address"):
            read_email(bad)


def test_email_canonical_drops_dots_and_plus_tags():
    assert email_canonical("jane.doe+crm@x.example") == email_canonical("janedoe@x.example") == "janedoe@x.example"


def test_domain_key_reads_urls_and_emails():
    assert domain_key("https://www.Acme.example/about") == "acme.example"
    assert domain_key("sales@globex.example") == "globex.example"
    assert domain_key("not a domain") is None


def test_attribute_columns_are_typed_from_all_their_values():
    assert infer_attribute(col("1996", "2001", "")).values == [1996, 2001, None]
    assert infer_attribute(col("0.0", "2.5")).type == "number"
    assert infer_attribute(col("01234", "98765")).type == "text"        # zip codes keep their zero
    assert infer_attribute(col("5-20", "200+")).type == "text"
    assert infer_attribute(col("True", "False", "")).values == [True, False, None]
    dates = infer_attribute(col("2/1/2024", "2/28/2024"))
    assert (dates.type, dates.values) == ("date", ["2024-02-01", "2024-02-28"])
    assert infer_attribute(col("cat", "cat, wolf")).values == ["cat", "cat, wolf"]


def test_formula_escape_from_our_export_is_undone_on_import():
    assert col("'=SUM(A1)", "'+1 555", "plain").tolist() == ["=SUM(A1)", "+1 555", "plain"]
