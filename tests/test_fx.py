"""One pipeline number: exchange rates (built-in ECB defaults, entered, uploaded), the reporting currency,
missing rates said plainly; Pipeline health shows one headline figure on the demo book's several currencies."""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from auth_helpers import MANAGER, sign_in
from crm_core import clock
from crm_core.auth import Actor
from crm_core.db import dispose_engines, migrate, unit_of_work
from crm_core.demo import seed_demo
from crm_core.errors import UserError
from crm_core.models import AuditEntry, Deal, ExchangeRate, User
from crm_core.services import fx, pipeline
from ui import format as fmt

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 9, 0)
MORGAN = Actor(user_id=None, name="Morgan Lee", role="manager", via="password")


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


def _open(session, name: str, amount: int, currency: str) -> None:
    session.add(Deal(name=name, stage="Demo", status="open", amount=Decimal(amount), currency=currency,
                     stage_entered_at=NOW))


def test_built_in_rates_convert_through_the_euro_and_a_newer_stored_rate_wins(store):
    with unit_of_work(readonly=True) as s:
        table = fx.rate_table(s)
    assert table.rates["USD"].built_in and table.rates["USD"].rate_date == date(2024, 6, 28)
    assert table.convert(100, "GBP", "USD") == pytest.approx(100 / 0.84638 * 1.0705)
    assert table.convert(100, "EUR", "EUR") == 100 and table.convert(100, "VND", "USD") is None
    with unit_of_work() as s:
        fx.set_rate(s, "usd", "1.10", rate_date=date(2026, 11, 30), actor=MORGAN)
        fx.set_rate(s, "USD", 1.05, rate_date=date(2026, 1, 2), actor=MORGAN)  # older: kept, not used
    with unit_of_work(readonly=True) as s:
        table = fx.rate_table(s)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "fx.rate_set")).first()
    usd = table.rates["USD"]
    assert (usd.units_per_eur, usd.rate_date, usd.source, usd.built_in) == (1.10, date(2026, 11, 30), "entered by Morgan Lee", False)
    assert entry.actor == "Morgan Lee (password)" and entry.details["currency"] == "USD"


@pytest.mark.parametrize(("args", "message"), [
    (("US", "1.1"), "not a three-letter currency code"),
    (("USD", "abc"), "is not a number"),
    (("USD", "-2"), "must be a positive number"),
    (("EUR", "1.2"), "EUR is the base"),
])
def test_bad_rates_are_refused_with_the_reason(store, args, message):
    with unit_of_work() as s, pytest.raises(UserError, match=message):
        fx.set_rate(s, *args, rate_date=date(2026, 11, 30), actor=MORGAN)


def test_a_future_rate_date_is_refused(store):
    with unit_of_work() as s, pytest.raises(UserError, match="in the future"):
        fx.set_rate(s, "USD", "1.1", rate_date=date(2027, 1, 1), actor=MORGAN)


def test_a_rates_csv_stores_all_rows_or_none(store):
    good = b"currency,units_per_eur,date,source\nGBP,0.83,2026-11-28,ECB\nVND,27000,2026-11-28,\n"
    with unit_of_work() as s:
        assert fx.import_rates_csv(s, good, actor=MORGAN, filename="ecb.csv") == 2
    bad = b"currency,units_per_eur,date\nCHF,0.93,2026-11-28\nJPY,lots,2026-11-28\n"
    with unit_of_work() as s, pytest.raises(UserError, match=r"bad.csv, row 3: JPY: 'lots' is not a number.*nothing was stored"):
        fx.import_rates_csv(s, bad, actor=MORGAN, filename="bad.csv")
    with unit_of_work() as s, pytest.raises(UserError, match="missing column"):
        fx.import_rates_csv(s, b"code,rate\nGBP,0.8\n", actor=MORGAN, filename="x.csv")
    with unit_of_work(readonly=True) as s:
        stored = {(r.currency, r.source) for r in s.scalars(select(ExchangeRate))}
    assert stored == {("GBP", "ECB"), ("VND", "ecb.csv, uploaded by Morgan Lee")}


def test_a_currency_without_a_rate_is_left_out_of_the_total_and_counted(store):
    with unit_of_work() as s:
        _open(s, "usd", 1000, "USD")
        _open(s, "usd 2", 1000, "USD")
        _open(s, "eur", 1000, "EUR")
        _open(s, "dong", 5_000_000, "VND")
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
        card = pipeline.stage_deals(s, stage="Demo", actor=MANAGER).rows
    assert board.currency == "USD" and board.open_deals == 4
    assert board.amount == pytest.approx(2000 + 1000 * 1.0705)
    assert board.missing_rates == ["VND"] and board.unconverted_deals == 1
    vnd = next(c for c in card if c.currency == "VND")
    assert vnd.amount == 5_000_000 and vnd.amount_reporting is None


def test_the_reporting_currency_is_a_setting_and_totals_follow_it(store):
    with unit_of_work() as s:
        _open(s, "usd", 2141, "USD")
        _open(s, "gbp", 846.38, "GBP")
        with pytest.raises(UserError, match="no exchange rate for VND"):
            fx.set_reporting_currency(s, "VND", actor=MORGAN)
        fx.set_reporting_currency(s, "eur", actor=MORGAN)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
    assert board.currency == "EUR" and board.amount == pytest.approx(3000, rel=1e-6)
    assert [(t.currency, t.amount, t.converted) for t in board.by_currency] == [
        ("USD", pytest.approx(2141), pytest.approx(2000)), ("GBP", pytest.approx(846.38), pytest.approx(1000))]


def test_the_reporting_currency_setting_from_the_environment_is_checked(store, monkeypatch):
    monkeypatch.setenv("CRM_REPORTING_CURRENCY", "gbp")
    with unit_of_work(readonly=True) as s:
        assert fx.reporting_currency(s) == "GBP"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fx-demo") / "demo.db"
    url = f"sqlite:///{path}"
    migrate(url)
    seed_demo(url=url, scale=0.2)
    dispose_engines()
    return path


def test_pipeline_health_headline_is_one_number_in_the_reporting_currency_on_the_demo_book(demo_template, tmp_path, monkeypatch):
    path = tmp_path / "crm.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    with unit_of_work(readonly=True) as s:
        board = pipeline.pipeline_board(s, actor=MANAGER)
        manager = s.scalar(select(User.name).where(User.role == "manager").order_by(User.id))
    currencies = {t.currency for t in board.by_currency}
    assert len(currencies) >= 3 and not board.missing_rates
    assert board.amount == pytest.approx(sum(t.converted for t in board.by_currency))

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    with clock.frozen_at(datetime.now(UTC)):  # the page runs on the wall clock: its session must not look expired
        sign_in(at, manager, url=url)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Pipeline health"], [t.value for t in at.title] + [e.value for e in at.error]
    value = next(m for m in at.metric if m.label.startswith("Pipeline value"))
    assert value.label == f"Pipeline value ({board.currency})"
    assert value.value == fmt.money(board.amount, board.currency, compact=True)
    assert " + " not in value.value
    captions = " ".join(c.value for c in at.caption)
    assert "converted with the built-in ECB reference rates of" in captions
    stages = next(f.value for f in at.dataframe if "In their currencies" in f.value.columns)
    assert f"Value ({board.currency})" in stages.columns

    # Switch the reporting currency on the page: the headline follows.
    at.selectbox(key="fx_reporting").set_value("EUR").run()
    at.button(key="fx_reporting_save").click().run()
    assert not at.exception
    value = next(m for m in at.metric if m.label.startswith("Pipeline value"))
    assert value.label == "Pipeline value (EUR)"
    dispose_engines()


def test_pipeline_health_says_which_currency_has_no_rate_and_how_many_deals_are_left_out(sqlite_store):
    with unit_of_work() as s:
        s.add(User(name="Morgan Lee", role="manager"))
        _open(s, "usd", 1000, "USD")
        _open(s, "usd 2", 3000, "USD")
        _open(s, "dong", 5_000_000, "VND")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    with clock.frozen_at(datetime.now(UTC)):
        sign_in(at, "Morgan Lee")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No exchange rate for VND: 1 open deal worth" in w.value and "is left out of the totals" in w.value
               for w in at.warning), [w.value for w in at.warning]
    value = next(m for m in at.metric if m.label.startswith("Pipeline value"))
    assert value.value == "$4k"


def test_a_rep_reads_the_rates_and_is_told_upfront_who_sets_them_instead_of_a_form_that_fails(sqlite_store):
    with unit_of_work() as s:
        s.add(User(name="Morgan Lee", role="manager"))
        rita = User(name="Rita Rep", role="rep")
        s.add(rita)
        s.flush()
        for name, amount, currency in (("usd", 1000, "USD"), ("dong", 5_000_000, "VND")):
            s.add(Deal(name=name, stage="Demo", status="open", amount=Decimal(amount), currency=currency,
                       stage_entered_at=NOW, owner_id=rita.id))

    def page(name: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        with clock.frozen_at(datetime.now(UTC)):
            sign_in(at, name)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    assert not fx.may_edit_rates(Actor(user_id=None, name="Rita Rep", role="rep", via="password"))
    assert fx.may_edit_rates(MORGAN) and not fx.may_edit_rates(None) and fx.who_sets_rates() == "a manager or admin"
    rep = page("Rita Rep")
    assert any("Exchange rates and the reporting currency are set by a manager or admin" in i.value for i in rep.info)
    assert any("No exchange rate for VND" in w.value and "Ask a manager or admin to add one." in w.value for w in rep.warning)
    rates = next(f.value for f in rep.dataframe if "Per 1 EUR" in f.value.columns)
    assert "GBP" in set(rates["Currency"])
    assert next(m for m in rep.metric if m.label == "Reporting currency").value == "USD"
    assert not [b for b in rep.selectbox if b.key == "fx_reporting"] and not rep.get("file_uploader")
    assert not [b for b in rep.button if b.key in ("fx_reporting_save", "fx_upload_save")]
    assert not [b for b in rep.get("button") if "fx_rate_form" in (b.key or "")], "no rate form a rep cannot submit"
    # The manager gets the forms.
    manager = page("Morgan Lee")
    assert not [i for i in manager.info if "are set by" in i.value]
    assert manager.selectbox(key="fx_reporting") and manager.get("file_uploader")
    assert any("fx_rate_form" in (b.key or "") for b in manager.get("button"))
    assert any("Add one under Exchange rates below." in w.value for w in manager.warning)
