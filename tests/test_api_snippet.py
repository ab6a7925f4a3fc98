"""The website snippet in headless Chromium against the real API: a form fill, then page views, across origins (CORS)."""
from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.models import Activity, Contact
from crm_core.webhooks.sources import create_source
from tests.api_harness import running_api

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PAGE = """<!doctype html><html><head><title>Acme pricing</title>
<script src="{api}/snippet.js" data-endpoint="{api}" data-source="website" data-site-key="{key}"></script></head>
<body><h1>Pricing</h1>
<form id="demo" action="/thanks.html" method="get">
  <input type="email" name="email"><input name="first_name"><input name="company">
  <select name="team_size"><option>1-10</option><option selected>11-50</option></select>
  <input type="password" name="password" value="never-sent">
  <button type="submit">Book a demo</button>
</form></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


@pytest.mark.browser
def test_snippet_posts_a_form_fill_then_page_views_from_another_origin(sqlite_store, tmp_path: Path, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    site = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp_path)))
    origin = f"http://127.0.0.1:{site.server_address[1]}"
    threading.Thread(target=site.serve_forever, daemon=True).start()
    monkeypatch.setenv("CRM_API_CORS_ORIGINS", origin)
    with unit_of_work() as s:
        _view, key = create_source(s, "website", kind="browser", actor=Actor(user_id=None, name="Ada Admin", role="admin", via="cli"))
    try:
        with running_api() as api:
            (tmp_path / "pricing.html").write_text(PAGE.format(api=api, key=key))
            (tmp_path / "thanks.html").write_text("<!doctype html><title>Thanks</title><p>Thanks!</p>")
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page()
                page.goto(f"{origin}/pricing.html")
                page.fill("input[name=email]", "nina@prospect.test")
                page.fill("input[name=first_name]", "Nina")
                page.fill("input[name=company]", "Prospect Ltd")
                page.click("button[type=submit]")
                page.wait_for_url("**/thanks.html*")
                page.goto(f"{origin}/pricing.html?ref=newsletter")  # a known visitor now: a page view
                page.wait_for_load_state("networkidle")
                browser.close()

            def stored():
                with unit_of_work(readonly=True) as s:
                    rows = s.scalars(select(Activity).order_by(Activity.id)).all()
                return rows if len(rows) >= 2 else None
            activities = _wait_for(stored)
            # A page on an origin not allowed may not send, whatever key it has.
            refused = httpx.post(f"{api}/v1/collect/website", headers={"Origin": "http://evil.test"},
                                 json={"site_key": key, "type": "page_view", "email": "x@evil.test"})
            wrong_type = httpx.post(f"{api}/v1/collect/website", headers={"Origin": origin},
                                    json={"site_key": key, "type": "email_replied", "email": "x@evil.test"})
    finally:
        site.shutdown()
        site.server_close()
    assert activities, "the snippet's events never reached the store"
    assert [a.type for a in activities] == ["form_submit", "page_view"]
    form, view = activities
    assert form.payload["fields"] == {"team_size": "11-50"} and "password" not in str(form.payload)
    assert view.payload["url"] == "/pricing.html?ref=newsletter" and form.source == "web:website"
    with unit_of_work(readonly=True) as s:
        contact = s.scalars(select(Contact)).one()
    assert (contact.email, contact.first_name, contact.attributes.get("company")) == ("nina@prospect.test", "Nina", "Prospect Ltd")
    assert refused.status_code == 403 and wrong_type.status_code == 422
