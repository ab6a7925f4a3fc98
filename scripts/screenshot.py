"""Retake the README's dashboard screenshots: a demo book after one scheduler pass, as its manager sees it.

    .venv/bin/python scripts/screenshot.py                       # every page in PAGES, into docs/
    .venv/bin/python scripts/screenshot.py --page approval_queue --out docs/queue.png

Uses a scratch SQLite store (never data/crm.db), the scheduler's `--once` pass so every flag and
score comes from the agents themselves, and Debian's headless Chromium (`/usr/bin/chromium`).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from scripts/: the project's packages sit one up

from crm_core.services.users import DEMO_PASSWORD  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# The demo book's manager and the password seed-demo gives demo users (demo mode only).
SIGN_IN_AS = "Maria Alvarez"
# sidebar title -> file under docs/ (the README shows these)
PAGES = {"Pipeline health": "screenshot-pipeline.png", "Approval queue": "screenshot-queue.png",
         "Lead scores": "screenshot-leads.png", "Data health": "screenshot-data-health.png"}
RENDERED = ("() => { const app = document.querySelector('[data-testid=stApp]');"
            " return app && app.getAttribute('data-test-script-state') === 'notRunning'"
            " && document.querySelectorAll('[data-testid=stSkeleton]').length === 0; }")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the file for --page (default: every page in PAGES into docs/)")
    parser.add_argument("--page", help="one page by its title in the sidebar, e.g. 'Approval queue'")
    args = parser.parse_args()
    if args.page is None:
        shots = {page: ROOT / "docs" / name for page, name in PAGES.items()}
    else:
        default = PAGES.get(args.page, f"screenshot-{args.page.lower().replace(' ', '-')}.png")
        shots = {args.page: args.out or ROOT / "docs" / default}

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp}/crm.db", "CRM_LLM_PROVIDER": "offline"}
        for command in (["crm_core", "init-db"], ["crm_core", "seed-demo"], ["orchestration.scheduler", "--once"]):
            subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, check=True, capture_output=True)
        port = free_port()
        app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                "--server.port", str(port), "--server.address", "127.0.0.1",
                                "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 1500})
                page.set_default_timeout(60_000)
                page.goto(base)
                page.wait_for_selector("h1")
                page.wait_for_function(RENDERED)
                page.get_by_label("Name or email").fill(SIGN_IN_AS)
                page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_function("() => ![...document.querySelectorAll('h1')].some(h => h.innerText.trim() === 'Sign in')")
                for title, out in shots.items():
                    # The sidebar's links keep the Streamlit session (a full reload would sign out).
                    page.locator("[data-testid=stSidebarNav]").get_by_text(title, exact=True).click()
                    page.wait_for_function("(t) => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === t)",
                                           arg=title)
                    page.wait_for_function(RENDERED)
                    page.wait_for_timeout(1500)  # let Plotly finish drawing
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(out))
                    print(f"saved {out}")
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
