"""The Data health page through Streamlit's AppTest: score, worst fields, trend, fixes waiting."""
from __future__ import annotations

import random
from pathlib import Path

from streamlit.testing.v1 import AppTest

from auth_helpers import add_user, sign_in
from crm_core.db import unit_of_work
from crm_core.quality.audit import run_audit
from crm_core.quality.planting import generate_clean_book, plant_problems

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def _page(url: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    sign_in(at, "Morgan Lee", url=url)
    at.run()
    at.switch_page("pages/data_health.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_data_health_page_before_and_after_audits(sqlite_store: str) -> None:
    rng = random.Random(2001)
    with unit_of_work() as session:
        add_user(session, "Morgan Lee", "manager")
        generate_clean_book(session, rng, accounts=40, contacts=150, deals=90)
    with unit_of_work() as session:
        plant_problems(session, rng)
    at = _page(sqlite_store)
    assert any("not been audited" in i.value for i in at.info)

    at.button(key="health_propose").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("fix(es) now wait in the approval queue" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Book score"].endswith("/ 100") and int(metrics["Book score"].split()[0]) < 100
    headers = [h.value for h in at.subheader]
    assert "Fields that need attention" in headers
    assert any(h.startswith("Fixes waiting for approval (") and not h.endswith("(0)") for h in headers)

    with unit_of_work() as session:
        run_audit(session, trigger="daily")
    at.button(key="health_audit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("plotly_chart")
    assert charts and "Book score" in charts[0].proto.spec
