"""The README's and docs' pictures of the console and the report, taken from a running console.

    privaudit demo --events 50000 --no-dashboard --data-dir data/demo
    PRIVAUDIT_PSEUDONYM_KEY=privaudit-simulator-demo-key-not-a-secret privaudit dashboard --data-dir data/demo &
    privaudit report --data-dir data/demo --month 2026-11 --out /tmp/report.html   # (while no console holds it)
    .venv/bin/python tools/screenshots.py http://127.0.0.1:8750/ 2026-11-01 2026-11-30 /tmp/report.html

Headless Chromium (Debian's ``chromium``) driven by Playwright, 1600 px wide, Korean.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    url, first, last, report = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(f"{url}?lang=ko")
        page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
        page.fill("#f-from", first)
        page.fill("#f-to", last)
        page.click("#f-apply")
        page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
        page.screenshot(path=str(IMG / "console-ko.png"))
        page.fill("#s-q", "010-0000-0007")
        page.click("#s-go")
        page.wait_for_selector("body[data-ready=subject]", timeout=60_000)
        page.screenshot(path=str(IMG / "member-ko.png"))
        page.goto(report.resolve().as_uri())
        page.screenshot(path=str(IMG / "report-ko.png"))
        browser.close()


if __name__ == "__main__":
    main()
