"""The day-one approval queue in a real browser: a manager clears it with a handful of clicks.

A fresh store gets the demo book and one real pass of the agents (`python -m crm_core seed-demo`,
then `python -m orchestration.scheduler --once`, as `make run` does on first start); then
`streamlit run app.py` serves it (no scheduler beside it, so the queue holds still) and headless
Chromium signs in as the demo manager. Every click on the page is counted. Skips cleanly when
/usr/bin/chromium is missing (never `playwright install`).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, RENDERED, free_port, wait_healthy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 120_000
MANAGER = "Maria Alvarez"
MAX_CLICKS = 10


@dataclass
class DayOneApp:
    base: str
    url: str
    queued: int       # the day-one queue, measured before the browser touches it


def queued(url: str) -> int:
    from crm_core.db import dispose_engines, unit_of_work
    from crm_core.models import Decision

    with unit_of_work(url, readonly=True) as s:
        count = int(s.scalar(select(func.count()).select_from(Decision).where(Decision.status == "queued")) or 0)
    dispose_engines()
    return count


@pytest.fixture(scope="module")
def day_one_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayOneApp]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` (apt-get install -y chromium) to run the browser tests")
    pytest.importorskip("playwright.sync_api")
    db = tmp_path_factory.mktemp("browser_queue") / "crm.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_SQLITE_BUSY_TIMEOUT_MS": "30000", "PYTHONUNBUFFERED": "1",
           "CRM_LLM_PROVIDER": "offline"}
    env.pop("ANTHROPIC_API_KEY", None)
    for command in (["crm_core", "init-db"], ["crm_core", "seed-demo"], ["orchestration.scheduler", "--once"]):
        done = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    size = queued(url)
    logs = tmp_path_factory.mktemp("browser_queue_logs")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                            "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                            "--server.fileWatcherType", "none"],
                           cwd=ROOT, env=env, stdout=open(logs / "streamlit.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, app, 120)
        yield DayOneApp(base=base, url=url, queued=size)
    finally:
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()


@pytest.fixture(scope="module")
def page(day_one_app: DayOneApp):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1400, "height": 3000})
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        yield tab
        context.close()
        chromium.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


class Clicks:
    """Every click the manager makes, counted; each waits for the page to settle."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def on(self, selector: str) -> None:
        self.page.locator(selector).first.click()
        self.count += 1
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_timeout(300)  # let the click reach the server before asking whether it is done
        self.page.wait_for_function(RENDERED)


def open_queue(page, base: str) -> None:
    page.goto(f"{base}/approval_queue")
    page.wait_for_selector("h1")
    page.wait_for_function(RENDERED)
    if page.locator("h1").first.inner_text().strip() == "Sign in":
        page.get_by_label("Name or email").fill(MANAGER)
        page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_function("() => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === 'Approval queue')")
        page.wait_for_function(RENDERED)


def group_buttons(page) -> list[tuple[str, int]]:
    """(group key, member count) for every group on the page, biggest first."""
    found = page.eval_on_selector_all(
        "[class*='st-key-queue_group_approve_'] button",
        "els => els.map(b => [ [...b.closest('[class*=st-key-queue_group_approve_]').classList]"
        ".find(c => c.startsWith('st-key-queue_group_approve_')), b.innerText ])")
    out = [(cls.removeprefix("st-key-queue_group_approve_"), int(text.split()[-1].replace(",", ""))) for cls, text in found]
    return sorted(out, key=lambda g: -g[1])


def test_one_at_a_time_review_answers_the_keyboard(day_one_app, page):
    open_queue(page, day_one_app.base)
    page.get_by_role("tab", name="One at a time").click()
    page.wait_for_function(RENDERED)  # the tab switch reruns the page: press keys only once it is drawn
    card = page.locator(".st-key-queue_focus_card")
    card.wait_for()
    first = card.locator("h5").first.inner_text()
    moved = f"() => document.querySelector('.st-key-queue_focus_card h5')?.innerText !== {first!r}"
    for _ in range(3):  # a key pressed while the page reruns under load can be lost: press again, never decide
        page.keyboard.press("s")  # skip: the next most urgent item takes its place
        try:
            page.wait_for_function(moved, timeout=20_000)
            break
        except Exception:
            page.wait_for_function(RENDERED)
    page.wait_for_function(moved)
    page.wait_for_function(RENDERED)
    shoot(page, "approval_queue_one_at_a_time")
    assert queued(day_one_app.url) == day_one_app.queued, "skipping decides nothing"


def test_the_day_one_queue_is_cleared_with_group_actions_in_at_most_ten_clicks(day_one_app, page):
    open_queue(page, day_one_app.base)
    page.get_by_role("tab", name="By group").click()  # back to the default tab (not counted: where the page opens)
    page.wait_for_function(RENDERED)
    shoot(page, "approval_queue_day_one_groups")
    clicks = Clicks(page)
    # The manager approves the three biggest groups of routine proposals, each after its confirmation...
    for key, count in group_buttons(page)[:3]:
        clicks.on(f".st-key-queue_group_approve_{key} button")
        page.locator(".st-key-queue_confirm_box").wait_for()
        assert f"{count}" in page.locator(".st-key-queue_confirm_box").inner_text()
        clicks.on(".st-key-queue_confirm_yes button")
        page.locator(f".st-key-queue_group_approve_{key}").wait_for(state="detached")
    # ...and rejects everything that is left in one go, after being told how many and what that means.
    left = queued(day_one_app.url)
    if left:
        clicks.on(".st-key-queue_filter_reject button")
        box = page.locator(".st-key-queue_confirm_box")
        box.wait_for()
        assert f"Reject all {left} decision" in box.inner_text() and "does not come back" in box.inner_text()
        clicks.on(".st-key-queue_confirm_yes button")
    page.get_by_text("The queue is empty").first.wait_for()
    shoot(page, "approval_queue_cleared")
    print(f"\nday-one queue: {day_one_app.queued} decisions, cleared in {clicks.count} clicks")
    assert queued(day_one_app.url) == 0
    assert clicks.count <= MAX_CLICKS, f"{clicks.count} clicks to clear {day_one_app.queued} decisions"
