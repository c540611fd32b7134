"""``privaudit report --month YYYY-MM [--out FILE.html] [--json]``: the monthly review of access records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from privaudit import settings as cfg
from privaudit.dashboards.client import get_through_server
from privaudit.dashboards.report import Month, Section, figures, gather, render
from privaudit.errors import ConfigError, StoreBusy
from privaudit.policy import load_policy
from privaudit.store import Store, shown_dsn

from .options import clickhouse_option, data_dir_option, lang_option, store_dsn
from .terminal import Output, UserError


@click.command()
@click.option("--month", required=True, help="The month to review, YYYY-MM (KST).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the HTML here (default: standard output).")
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also print it to this PDF with a headless Chromium (Debian's chromium package).")
@click.option("--json", "json_mode", is_flag=True,
              help="Print the figures the report shows as one JSON object (for automation, and to check them "
                   "against SQL), instead of the HTML.")
@lang_option
@clickhouse_option
@data_dir_option
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Policy file (default: the shipped one).")
@click.option("--allow-empty", is_flag=True,
              help="Write the report even when the store holds no events for the month (its first page then "
                   "says so); without it such a month is refused, since a report of nothing reads as a clean one.")
def report(month: str, out: Path | None, pdf: Path | None, json_mode: bool, lang: str, dsn: str | None,
           data_dir: str, policy_path: Path | None, allow_empty: bool) -> None:
    """Write the monthly inspection of access records (Safety Measures standard, Art. 8) as HTML.

    An embedded store held by a process serving the dashboard (privaudit run --dashboard-port,
    demo, dashboard) is read through it.
    """
    period = Month.parse(month)
    policy = load_policy(policy_path)
    target = store_dsn(dsn, data_dir)
    if target.startswith("chdb://") and not Path(target.removeprefix("chdb://")).exists():
        # never make an empty store to report on: that is how a clean-looking report of nothing was signed
        raise UserError(f"there is no store at {shown_dsn(target)}, so it holds no events for {period} (KST): "
                        "check --data-dir / --clickhouse")
    data = read_month(target, period)
    fig = figures(data, period)
    if not fig["events"] and not allow_empty:
        raise UserError(f"the store at {shown_dsn(target)} holds no events for {period} (KST): nothing to review. "
                        "Check --data-dir / --clickhouse, or pass --allow-empty to write a report that says so")
    if json_mode:
        Output(json_mode=True).json(fig)
        return
    text = render(data, period, policy, empty=not fig["events"], lang=lang)
    if out is None and pdf is None:
        sys.stdout.write(text)
        return
    if out is not None:
        out.write_text(text, encoding="utf-8")
        Output().line(f"wrote the review of {period} to {out}")
    if pdf is not None:
        print_pdf(text, pdf)
        Output().line(f"printed the review of {period} to {pdf}")


def read_month(target: str, period: Month) -> dict[str, Section]:
    """The report's sections: from the store, or through the process that holds it."""
    try:
        store = Store.connect(target)
    except StoreBusy:
        return get_through_server(target, "report", {"month": str(period)},  # type: ignore[no-any-return]
                                  token=os.environ.get(cfg.ENV_DASHBOARD_TOKEN) or None)
    try:
        store.migrate()
        return gather(store, period)
    finally:
        store.close()


def print_pdf(html_text: str, pdf: Path) -> None:
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        raise ConfigError("--pdf needs a Chromium (apt-get install chromium); the HTML prints from any browser")
    with tempfile.TemporaryDirectory(prefix="privaudit-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html_text, encoding="utf-8")
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf.resolve()}",
             page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    if proc.returncode != 0 or not pdf.exists():
        raise ConfigError(f"chromium could not print the PDF: {(proc.stderr or '').strip().splitlines()[-1:]}")
