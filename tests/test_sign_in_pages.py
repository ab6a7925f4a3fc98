"""Sign-in on the dashboard through AppTest: password, failures and lock-out, one-time passwords, expiry."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from auth_helpers import actor_of, add_user, sign_in
from crm_core import clock
from crm_core.auth.sessions import sign_in_password
from crm_core.cli import main
from crm_core.db import unit_of_work
from crm_core.models import AuditEntry, AuthSession, User, UserAccount
from crm_core.services import users
from ui import session as ui_session

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture
def people(sqlite_store):
    with unit_of_work() as s:
        ids = {"manager": add_user(s, "Maria Manager", "manager", password=PASSWORD).id,
               "rep": add_user(s, "Rick Rep", "rep", password=PASSWORD).id}
    return ids


def dashboard() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit(at: AppTest, login: str, password: str) -> AppTest:
    at.text_input(key="sign_in_login").input(login)
    at.text_input(key="sign_in_password").input(password)
    at.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def events(event: str) -> list[str]:
    with unit_of_work(readonly=True) as s:
        return list(s.scalars(select(AuditEntry.actor).where(AuditEntry.event == event).order_by(AuditEntry.id)))


def test_nobody_signed_in_sees_only_the_sign_in_form(people):
    at = dashboard()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not [b for b in at.button if b.key == "sign_out"]


def test_signing_in_with_a_password_opens_the_dashboard_and_is_audited(people):
    at = submit(dashboard(), "maria manager", PASSWORD)  # the name ignoring case, or the email
    assert [t.value for t in at.title] == ["Pipeline health"]
    assert any("Signed in as **Maria Manager** (manager)" in c.value for c in at.sidebar.caption)
    assert events("auth.signed_in") == ["Maria Manager (password)"]


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(people, monkeypatch):
    monkeypatch.setenv("CRM_MAX_FAILED_SIGN_INS", "3")
    at = submit(dashboard(), "Rick Rep", "not his password")
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("name or password is not right" in e.value for e in at.error)
    submit(at, "Rick Rep", "still wrong")
    at = submit(at, "Rick Rep", "wrong a third time")
    assert any("locked for 15 minutes" in e.value for e in at.error)
    at = submit(at, "Rick Rep", PASSWORD)  # the right password no longer helps while locked
    assert [t.value for t in at.title] == ["Sign in"] and any("locked" in e.value for e in at.error)
    assert events("auth.sign_in_failed") == ["Rick Rep"] * 4 and events("auth.locked_out") == ["Rick Rep"]
    submit(at, "Nobody Atall", "whatever")
    assert events("auth.sign_in_failed")[-1] == "Nobody Atall"


def test_a_one_time_password_must_be_replaced_before_anything_else(people):
    with unit_of_work() as s:
        admin = add_user(s, "Ada Admin", "admin", password=PASSWORD)
        one_time = users.set_password(s, "Rick Rep", actor=actor_of(admin))
    at = submit(dashboard(), "Rick Rep", one_time)
    assert [t.value for t in at.title] == ["Choose your password"]
    at.text_input(key="pw_current").input(one_time)
    at.text_input(key="pw_new").input("short")
    at.text_input(key="pw_again").input("short")
    at.button(key="FormSubmitter:change_password-Save my password").click().run()
    assert any("at least 10 characters" in e.value for e in at.error)
    at.text_input(key="pw_new").input("a much longer passphrase")
    at.text_input(key="pw_again").input("a much longer passphrase")
    at.button(key="FormSubmitter:change_password-Save my password").click().run()
    assert [t.value for t in at.title] == ["Pipeline health"]
    with unit_of_work(readonly=True) as s:
        assert not s.get(UserAccount, people["rep"]).must_change_password


def test_an_expired_or_deactivated_session_signs_out_at_the_next_click(people):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    sign_in(at, "Rick Rep")
    at.run()
    assert [t.value for t in at.title] == ["Pipeline health"]
    with unit_of_work() as s:
        for row in s.scalars(select(AuthSession)):
            row.last_seen_at = clock.now() - timedelta(hours=2)  # unused longer than the idle limit
    at.run()
    assert [t.value for t in at.title] == ["Sign in"] and any("session has ended" in i.value for i in at.info)


def test_single_sign_on_maps_the_providers_email_to_an_active_user(people, monkeypatch):
    # What st.login leaves behind once the provider has signed the browser in (no provider runs here).
    monkeypatch.setattr(ui_session, "_oidc_configured", lambda: True)
    monkeypatch.setattr(ui_session, "_oidc_signed_in", lambda: True)
    with unit_of_work() as s:
        s.get(User, people["manager"]).email = "maria@seller.example"
    monkeypatch.setattr(streamlit, "user", {"email": "Maria@Seller.example", "email_verified": True, "iss": "https://idp.example"})
    at = dashboard()
    assert [t.value for t in at.title] == ["Pipeline health"]
    assert any("Signed in as **Maria Manager** (manager)" in c.value for c in at.sidebar.caption)
    assert events("auth.signed_in") == ["Maria Manager (oidc)"]

    monkeypatch.setattr(streamlit, "user", {"email": "stranger@elsewhere.example", "iss": "https://idp.example"})
    at = dashboard()
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("no active user of this CRM has the email stranger@elsewhere.example" in e.value for e in at.error)


def test_the_settings_page_shows_the_rights_table_and_admins_see_the_users(people):
    with unit_of_work() as s:
        add_user(s, "Ada Admin", "admin", password=PASSWORD)
    for name, sees_users in (("Rick Rep", False), ("Ada Admin", True)):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        sign_in(at, name)
        at.run()
        at.switch_page("pages/agents_settings.py").run()
        assert not at.exception, [e.value for e in at.exception]
        frames = [f.value for f in at.dataframe]
        rights = next(f for f in frames if "Right" in f.columns)
        assert set(rights["Right"]) >= {"decide_own_low", "decide_any", "decide_critical", "edit_policy", "manage_users"}
        assert list(rights.loc[rights["Right"] == "edit_policy", ["Rep", "Manager", "Admin"]].iloc[0]) == [False, False, True]
        assert any("Signs in with" in f.columns for f in frames) == sees_users


def test_users_add_reads_the_password_from_standard_input(people, capsys, monkeypatch):
    with unit_of_work() as s:
        add_user(s, "Ada Admin", "admin")
    monkeypatch.setattr("sys.stdin", io.StringIO("a chosen passphrase\n"))
    assert main(["users", "add", "Pia Piped", "--role", "rep", "--password-stdin", "--as", "Ada Admin"]) == 0
    assert "one-time" not in capsys.readouterr().out
    with unit_of_work() as s:
        assert sign_in_password(s, "Pia Piped", "a chosen passphrase").ok
