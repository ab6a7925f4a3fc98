"""The dashboard in a real browser: `streamlit run app.py` and the scheduler on a fresh demo store,
driven with Playwright through Debian's headless Chromium.

Skips cleanly when /usr/bin/chromium is missing (`make browser` or `apt-get install -y chromium`;
never `playwright install`). Screenshots of every page land in tests/artifacts/ (git-ignored).
The fixture store gets what the pipeline and follow-up agents would write (a red flag, a queued
email) so the checks do not depend on how far the scheduler has got. Every page load is a new
Streamlit session, so `open_page` signs in with the demo password when the sign-in form shows.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, RENDERED, free_port, wait_healthy

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
PAGES = {
    "": "Pipeline health", "lead_scores": "Lead scores", "meetings": "Meetings", "record_detail": "Contact and deal detail",
    "approval_queue": "Approval queue", "activity_audit": "Activity and audit", "agents_settings": "Agents and settings",
    "import_data": "Import",
}
CHARTS = {"": 2}  # Plotly charts a page always has (the others draw one only when there is data)
# Every Plotly chart on the page has drawn its SVG.
CHARTS_DRAWN = ("() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
                ".every(chart => chart.querySelector('.main-svg'))")
TIMEOUT_MS = 60_000
MANAGER, REP = "Maria Alvarez", "Nina Patel"


@dataclass
class LiveApp:
    base: str
    url: str
    red_deal: str
    email_decision: int
    scheduler: bool


def _prepare_store(url: str) -> tuple[str, int]:
    """Demo book plus a manager's red flag and a queued follow-up email."""
    from agents.base import DecisionEnvelope, Proposal, ProposedAction
    from crm_core import oversight
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import Contact, Deal

    with unit_of_work(url) as s:
        deal = s.scalars(select(Deal).where(Deal.status == "open", Deal.primary_contact_id.is_not(None))
                         .order_by(Deal.amount.desc(), Deal.id)).first()
        deal.risk, deal.risk_reason = "red", "No reply from the buyer in 21 days after the pricing call."
        deal.risk_action = "Call the economic buyer this week."
        # Set by a manager, so the scheduler's pipeline scan (running next to the app) only
        # proposes a change for review and the flag the test looks for stays on the board.
        deal.manual_fields = [*(deal.manual_fields or []), "risk"]
        contact = s.get(Contact, deal.primary_contact_id)
        proposal = Proposal(subject_type="deal", subject_id=deal.id, subject_label=deal.name, confidence=0.4,
                            reasoning="The buyer went quiet after pricing; a short nudge usually restarts the thread.",
                            actions=(ProposedAction(type="send_email", params={
                                "contact_id": contact.id, "subject": "Quick question on the proposal",
                                "body": "Hi, did the pricing options work for your team?"}),))
        envelope = DecisionEnvelope(agent="follow_up", proposals=(proposal,), prompt_version="browser-test", provider="offline",
                                    model="offline", is_local=True, context_snapshot={"deal_id": deal.id})
        [decision_id] = oversight.submit(s, envelope)
        name = deal.name
    dispose_engines()
    return name, decision_id


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` (apt-get install -y chromium) to run the browser tests")
    pytest.importorskip("playwright.sync_api")
    db = tmp_path_factory.mktemp("browser") / "crm.db"
    url = f"sqlite:///{db}"
    # A long busy timeout: the scheduler's first scoring pass may hold the write lock while we click.
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_SQLITE_BUSY_TIMEOUT_MS": "30000", "PYTHONUNBUFFERED": "1"}
    for command in (["init-db"], ["seed-demo"]):
        subprocess.run([sys.executable, "-m", "crm_core", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    red_deal, email_decision = _prepare_store(url)

    logs = tmp_path_factory.mktemp("logs")
    procs: list[subprocess.Popen] = []
    scheduler = importlib.util.find_spec("orchestration.scheduler") is not None
    if scheduler:
        procs.append(subprocess.Popen([sys.executable, "-m", "orchestration.scheduler"], cwd=ROOT, env=env,
                                      stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                            "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                            "--server.fileWatcherType", "none"],
                           cwd=ROOT, env=env, stdout=open(logs / "streamlit.log", "w"), stderr=subprocess.STDOUT)
    procs.append(app)
    try:
        wait_healthy(base, app)
        yield LiveApp(base=base, url=url, red_deal=red_deal, email_decision=email_decision, scheduler=scheduler)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def browser(live_app: LiveApp):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # A tall viewport: Streamlit scrolls inside its own container, so full_page would not help.
    context = browser.new_context(viewport={"width": 1400, "height": 3000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    context.close()


def sign_in(page, login: str, password: str) -> None:
    page.get_by_label("Name or email").fill(login)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => ![...document.querySelectorAll('h1')].some(h => h.innerText.trim() === 'Sign in')"
                           " || document.querySelector('[data-testid=stAlertContentError]')")
    page.wait_for_function(RENDERED)


def open_page(page, live_app: LiveApp, path: str, *, as_user: str = MANAGER) -> None:
    page.goto(f"{live_app.base}/{path}")
    try:
        page.wait_for_selector("h1")
        page.wait_for_function(RENDERED)
        if page.locator("h1").first.inner_text().strip() == "Sign in":
            sign_in(page, as_user, DEMO_PASSWORD)
            page.wait_for_selector("h1")
    except Exception:
        shoot(page, f"timeout-{path or 'pipeline_health'}")  # what the page showed when it hung
        raise


def shoot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target))
    return target


def test_every_page_renders_without_an_error_and_is_captured(live_app, page):
    for path, title in PAGES.items():
        open_page(page, live_app, path)
        page.wait_for_function(f"document.querySelectorAll('[data-testid=stPlotlyChart] .main-svg').length >= {CHARTS.get(path, 0)}")
        page.wait_for_function(CHARTS_DRAWN)
        assert page.locator("h1").first.inner_text().strip() == title
        assert page.locator('[data-testid="stException"]').count() == 0, f"{title}: {page.locator('[data-testid=stException]').first.inner_text()}"
        # The sidebar is app.py's navigation (with who is signed in), even on a first visit to a page URL.
        assert page.locator('[data-testid="stSidebar"]').get_by_text(f"Signed in as {MANAGER}").count() == 1
        shoot(page, path or "pipeline_health")


def test_a_red_deal_shows_its_flag_reason_and_next_step(live_app, page):
    open_page(page, live_app, "")
    card = page.locator('[class*="st-key-red_card_"]').filter(has_text=live_app.red_deal).first
    card.wait_for()
    text = card.inner_text()
    assert "red" in text and "No reply from the buyer in 21 days" in text and "Call the economic buyer" in text


def open_queue_row(page, decision_id: int) -> None:
    """The queue's List tab, filtered to the follow-up agent, with this item's compact row opened."""
    page.locator(".st-key-queue_agent").click()
    page.get_by_role("option", name="Follow-up").click()
    page.wait_for_function(RENDERED)
    page.get_by_role("tab", name="List").click()
    page.wait_for_function(RENDERED)  # the tab switch reruns the page: open the row only once it is drawn
    page.locator(f".st-key-queue_row_{decision_id} summary").click()
    page.wait_for_function(RENDERED)


def click_until_gone(page, key_selector: str, *, tries: int = 3) -> None:
    """Click the button inside `key_selector` until the element is gone (the click took effect).

    A click that lands while the page is still finishing a rerun (opening a row, switching a tab)
    is dropped by the browser-side app; the same click a moment later is not. Approving twice is
    harmless: a second click on a decided item has no button to land on.
    """
    gone = f"() => !document.querySelector('{key_selector}')"
    for attempt in range(1, tries + 1):
        button = page.locator(f"{key_selector} button")
        button.wait_for()
        button.click()
        try:
            page.wait_for_function(gone, timeout=15_000)
            return
        except Exception:
            if attempt == tries:
                shoot(page, "approval_queue_approve_timeout")  # what the page showed when the click never landed
                raise
            page.wait_for_function(RENDERED)


def test_approving_a_queued_email_in_the_browser(live_app, page):
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import Decision, OutboxMessage

    # A rep signed in on the same dashboard does not even see it: a rep's queue lists only their own records.
    open_page(page, live_app, "approval_queue", as_user=REP)
    page.get_by_role("tab", name="List").click()
    page.wait_for_function(RENDERED)
    assert page.locator(f".st-key-queue_row_{live_app.email_decision}").count() == 0
    shoot(page, "approval_queue_for_a_rep")
    with unit_of_work(live_app.url, readonly=True) as s:
        assert s.get(Decision, live_app.email_decision).status == "queued"
    dispose_engines()

    page.context.clear_cookies()
    open_page(page, live_app, "approval_queue")  # a new session: the manager signs in
    open_queue_row(page, live_app.email_decision)
    click_until_gone(page, f".st-key-queue_approve_{live_app.email_decision}")
    page.wait_for_function(RENDERED)
    page.get_by_text(f"{MANAGER}").first.wait_for()
    shoot(page, "approval_queue_after_approve")
    with unit_of_work(live_app.url, readonly=True) as s:
        decision = s.get(Decision, live_app.email_decision)
        outbox = s.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == decision.id)).one()
    dispose_engines()
    assert (decision.status, decision.decided_by) == ("executed", "Maria Alvarez")
    assert outbox.subject == "Quick question on the proposal" and outbox.status == "held"


def test_uploading_a_csv_dry_run_and_import(live_app, page, tmp_path):
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import Contact

    csv = tmp_path / "new-leads.csv"
    csv.write_text("First Name,Last Name,Email,Company,Lead Source\n"
                   "Wanda,Browser,wanda.browser@newco.example,NewCo,webinar\n"
                   "Walt,Broken,not-an-email,NewCo,webinar\n", encoding="utf-8")
    open_page(page, live_app, "import_data")
    page.locator('.st-key-import_file input[type="file"]').set_input_files(str(csv))
    page.get_by_text("new-leads.csv: 2 rows").wait_for()
    page.wait_for_function(RENDERED)
    page.locator(".st-key-import_dry_run button").click()
    page.get_by_text("1 row(s) cannot be imported as they are").wait_for()
    page.wait_for_function(RENDERED)
    assert page.locator(".st-key-import_rejects").count() == 1  # the rejected rows can be downloaded
    page.locator(".st-key-import_skip label").click()
    page.wait_for_function(RENDERED)
    page.locator(".st-key-import_apply button").click()
    page.get_by_text("new-leads.csv imported by Maria Alvarez").wait_for()
    shoot(page, "import_done")
    with unit_of_work(live_app.url, readonly=True) as s:
        wanda = s.scalars(select(Contact).where(Contact.email_normalized == "wanda.browser@newco.example")).one()
        broken = s.scalars(select(Contact).where(Contact.last_name == "Broken")).first()
    dispose_engines()
    assert wanda.source == "webinar" and broken is None


def test_scheduler_ran_next_to_the_dashboard(live_app):
    if not live_app.scheduler:
        pytest.skip("orchestration.scheduler is not there yet: the dashboard was tested without it")
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import WorkerHeartbeat

    deadline = time.monotonic() + 60
    beats = []
    while time.monotonic() < deadline and not beats:
        with unit_of_work(live_app.url, readonly=True) as s:
            beats = list(s.scalars(select(WorkerHeartbeat)))
        time.sleep(1)
    dispose_engines()
    assert beats, "the scheduler wrote no heartbeat within a minute"


@pytest.fixture(scope="module", autouse=True)
def _keep_a_copy_of_the_logs(live_app, tmp_path_factory):
    yield
    # Streamlit and scheduler logs beside the screenshots help when a run fails on CI.
    logs = Path(str(tmp_path_factory.getbasetemp()))
    for log in logs.glob("logs*/*.log"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / log.name)


def test_a_wrong_password_is_refused_and_nothing_is_shown(live_app, page):
    page.goto(f"{live_app.base}/approval_queue")
    page.wait_for_selector("h1")
    page.wait_for_function(RENDERED)
    assert page.locator("h1").first.inner_text().strip() == "Sign in"
    sign_in(page, MANAGER, "not the password")
    page.get_by_text("That name or password is not right").wait_for()
    assert page.locator("h1").first.inner_text().strip() == "Sign in"
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Signed in as").count() == 0
    shoot(page, "sign_in_refused")
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import AuditEntry

    with unit_of_work(live_app.url, readonly=True) as s:
        failures = list(s.scalars(select(AuditEntry.actor).where(AuditEntry.event == "auth.sign_in_failed")))
    dispose_engines()
    assert MANAGER in failures
