"""Retake the README's dashboard screenshot: a demo book after one scheduler pass, as a manager sees it.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot-pipeline.png]

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

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
RENDERED = ("() => { const app = document.querySelector('[data-testid=stApp]');"
            " return app && app.getAttribute('data-test-script-state') === 'notRunning'"
            " && document.querySelectorAll('[data-testid=stSkeleton]').length === 0; }")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot-pipeline.png")
    parser.add_argument("--page", default="", help="page path, e.g. approval_queue (default: pipeline health)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp}/crm.db", "CRM_LLM_PROVIDER": "offline"}
        for command in (["crm_core", "init-db"], ["crm_core", "seed-demo"], ["agents.scheduler", "--once"]):
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
                page.goto(f"{base}/{args.page}")
                page.wait_for_selector("h1")
                page.wait_for_function(RENDERED)
                page.wait_for_timeout(1500)  # let Plotly finish drawing
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=20)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
