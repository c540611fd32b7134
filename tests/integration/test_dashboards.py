"""Dashboards on demo data in the real engine: every Grafana panel's SQL, the built-in dashboard in
headless Chromium (Debian's ``chromium``, driven by Playwright), and the monthly report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from privaudit.bus.broker import free_port
from privaudit.consumers.alerting.local import LocalAlertmanager, WebhookReceiver
from privaudit.dashboards.panels import PANELS
from tests.helpers import REPO

from .conftest import Dashboard, count, sql

pytestmark = pytest.mark.integration
ARTIFACTS = Path(os.environ.get("PRIVAUDIT_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HAVE_ALERTMANAGER = bool(shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``privaudit demo`` on 6,000 events, with the alert dispatcher when Alertmanager is here."""
    data = tmp_path_factory.mktemp("demo") / "data"
    cmd = [sys.executable, "-m", "privaudit.cli", "demo", "--events", "6000", "--data-dir", str(data), "--json",
           "--no-dashboard", "--partitions", "4"]
    if not HAVE_ALERTMANAGER:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return data
    with WebhookReceiver() as hook, LocalAlertmanager(hook.url) as am:
        routing = data.parent / "alerting.yaml"
        routing.write_text(f"group_wait: 0s\nsinks:\n  am: {{type: alertmanager, url: '{am.url}'}}\n"
                           "routes:\n  - match: {severity: [critical, high]}\n    sinks: [am]\n")
        proc = subprocess.run([*cmd, "--alerting", str(routing)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout.splitlines()[-1])["alerts"]["delivered"] > 0
    return data


def _bounds(data: Path) -> tuple[int, int]:
    [row] = sql(data, "SELECT toUnixTimestamp(min(occurred_at)) AS a, toUnixTimestamp(max(occurred_at)) + 1 AS b "
                      "FROM privaudit.events")
    return int(row["a"]), int(row["b"])


def _grafana(data: Path, start: int, end: int, *service: str) -> dict:
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "integration" / "grafana_panels.py"), str(data),
                           str(start), str(end), *service], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_grafana_panel_runs_on_the_engine_and_fills_with_demo_data(demo_dir: Path) -> None:
    start, end = _bounds(demo_dir)
    results = _grafana(demo_dir, start, end)
    out_of_date = "the Grafana JSON is out of date: python -m privaudit.dashboards.grafana"
    assert set(results) == {p.title for p in PANELS}, out_of_date
    errors = {t: r["error"] for t, r in results.items() if "error" in r}
    assert errors == {}
    may_be_empty = {p.title for p in PANELS if p.may_be_empty}
    empty = {t for t, r in results.items() if r["rows"] == 0 and t not in may_be_empty}
    assert empty == set()
    totals = results["Totals"]["first"]
    assert int(totals[0]) == count(demo_dir, "SELECT count() FROM privaudit.events FINAL")
    # the service variable reaches the SQL: the totals shrink to that service's
    one = _grafana(demo_dir, start, end, "payments")
    payments = count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE service = 'payments'")
    assert int(one["Totals"]["first"][0]) == payments
    # ... and a quote in it is escaped, not executed
    assert "error" not in _grafana(demo_dir, start, end, "x' OR 1=1 --")["Totals"]


def test_the_generated_grafana_json_is_the_committed_one() -> None:
    from privaudit.dashboards.grafana import dashboard
    from privaudit.policy import load_policy

    committed = json.loads((REPO / "dashboards" / "grafana" / "privaudit.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(dashboard(load_policy()), ensure_ascii=False))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_dashboard_in_headless_chromium_matches_sql_and_filters_change_the_numbers(demo_dir: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    total = count(demo_dir, "SELECT count() FROM privaudit.events FINAL")
    payments = count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE service = 'payments'")
    violations = count(demo_dir, "SELECT count() FROM privaudit.violations FINAL")
    critical = count(demo_dir, "SELECT count() FROM privaudit.violations FINAL WHERE severity = 'critical'")
    [sample] = sql(demo_dir, "SELECT toString(event_id) AS e, rule, subject_id FROM privaudit.violations FINAL "
                             "ORDER BY occurred_at LIMIT 1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = Dashboard(demo_dir).wait()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(server.url)
            page.wait_for_selector("body[data-ready=overview]", timeout=60_000)

            def stat(name: str) -> int:
                return int(page.inner_text(f"[data-panel=totals] [data-stat={name}] .v").replace(",", ""))

            assert stat("events") == total and stat("violations") == violations and stat("critical") == critical
            assert page.locator("[data-panel][data-state=error]").count() == 0
            for panel in ("events_by_day", "violations_by_day", "consents_by_day"):
                assert page.locator(f"[data-panel={panel}] svg rect[data-value]").count() > 0, f"{panel} drew nothing"
            assert page.locator("[data-panel=use_by_purpose] svg g[data-value]").count() > 0
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

            page.select_option("#f-service", "payments")
            page.click("#f-apply")
            page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
            assert stat("events") == payments < total
            page.screenshot(path=str(ARTIFACTS / "dashboard-filtered.png"))

            page.goto(server.url + f"#/event/{sample['e']}")
            page.wait_for_selector("body[data-ready=event]", timeout=30_000)
            assert sample["rule"] in page.inner_text("[data-view=event-violations]")
            page.click(f"[data-view=event] a[href='#/subject/{sample['subject_id']}']")
            page.wait_for_selector("body[data-ready=subject]", timeout=30_000)
            assert sample["e"][:8] in page.inner_text("[data-view=subject]")
            page.screenshot(path=str(ARTIFACTS / "dashboard-subject.png"))
            browser.close()
        assert problems == []
    finally:
        server.stop()


def test_the_dashboard_refuses_bad_filters_and_off_loopback_wants_a_token(demo_dir: Path) -> None:
    token = "k3y-0123456789abcdef-" + "x" * 24
    server = Dashboard(demo_dir, "--host", "0.0.0.0", env={"PRIVAUDIT_DASHBOARD_TOKEN": token}).wait()
    try:
        api = f"http://127.0.0.1:{server.port}/api/"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(api + "filters", timeout=10)
        assert denied.value.code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        ok = urllib.request.urlopen(urllib.request.Request(api + "filters", headers=bearer), timeout=10)
        assert json.loads(ok.read())["services"]
        for bad in ("panel/totals?from=yesterday", "panel/totals?rule=PA-999", "panel/totals?severity=x'--",
                    "event/not-a-uuid", "panel/totals?to=9999-12-31", "panel/totals?from=0001-01-01",
                    "panel/totals?from=2026-01-01&to=2300-01-01", "panel/totals?to=2026-02-30"):
            with pytest.raises(urllib.error.HTTPError) as refused_filter:
                urllib.request.urlopen(urllib.request.Request(api + bad, headers=bearer), timeout=10)
            assert refused_filter.value.code == 400, bad
    finally:
        server.stop()


def test_the_monthly_report_counts_what_sql_counts(demo_dir: Path, tmp_path: Path) -> None:
    [row] = sql(demo_dir, "SELECT formatDateTime(min(occurred_at), '%Y-%m', 'Asia/Seoul') AS m FROM privaudit.events")
    month = row["m"]
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone(timedelta(hours=9)))
    first = f"toDateTime64('{start.astimezone(UTC):%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    in_month = (f"occurred_at >= {first} AND toTimeZone(occurred_at, 'Asia/Seoul') "
                f"< addMonths(toStartOfMonth(toTimeZone({first}, 'Asia/Seoul')), 1)")
    downloads_in_month = ("SELECT count() FROM privaudit.events FINAL WHERE type = 'access' "
                          f"AND action IN ('DOWNLOAD', 'EXPORT') AND {in_month}")
    downloads = count(demo_dir, downloads_in_month)
    no_reason = count(demo_dir, f"{downloads_in_month} AND ifNull(reason, '') = ''")
    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                           "--month", month, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert f"{downloads:,} downloads or exports, {no_reason:,} without a reason" in text
    assert no_reason > 0 and f"Without a reason ({no_reason:,})" in text
    assert "Kept since the start of logging" in text and "730 days" in text
    if HAVE_ALERTMANAGER:
        assert "of them in an alert delivered to on-call" in text and ", 0 of them in an alert" not in text
    bad = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                          "--month", "June"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--month: not a month (YYYY-MM)" in bad.stderr
    # a month the store holds nothing of is refused in one line, not signed off as clean; with
    # --allow-empty the report says so before anything else
    for month_without_data, store in (("2024-01", demo_dir), (month, tmp_path / "no-such-store")):
        refused = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(store),
                                  "--month", month_without_data, "--out", str(tmp_path / "empty.html")],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "holds no events for" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "empty.html").exists()
    allowed = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                              "--month", "2024-01", "--out", str(tmp_path / "empty.html"), "--allow-empty"],
                             capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    page = (tmp_path / "empty.html").read_text(encoding="utf-8")
    assert page.index("The store holds no events for this month") < page.index("<h2>Summary</h2>")
    if CHROMIUM:
        pdf = tmp_path / "report.pdf"
        printed = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                                  "--month", month, "--pdf", str(pdf)], capture_output=True, text=True, timeout=180)
        assert printed.returncode == 0, printed.stderr
        assert pdf.read_bytes()[:5] == b"%PDF-"


def test_run_hosts_the_dashboard_beside_the_consumer_on_one_embedded_store(broker, tmp_path: Path) -> None:
    """In embedded mode one process holds the store: the dashboard of ``privaudit run`` shows the
    consumer's loads as they happen, and SIGTERM stops both."""
    from .conftest import produce, simulated

    events = simulated(1500, seed=41)
    produce(broker.bootstrap, events, tmp_path / "spool")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "privaudit.cli", "run", "--bootstrap", broker.bootstrap,
                             "--data-dir", str(tmp_path / "data"), "--partitions", "4", "--dashboard-port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def loaded() -> int:
            try:
                totals = f"http://127.0.0.1:{port}/api/panel/totals?from=2000-01-01&to=2099-12-31"
                with urllib.request.urlopen(totals, timeout=5) as r:
                    return int(json.loads(r.read())["rows"][0][0])
            except OSError:
                return -1

        deadline = time.monotonic() + 120
        while loaded() != len(events) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.5)
        assert loaded() == len(events)
        # privaudit sql on the held store goes through the running process, read-only
        assert count(tmp_path / "data", "SELECT count() FROM privaudit.events") == len(events)
        write = subprocess.run([sys.executable, "-m", "privaudit.cli", "sql", "--data-dir", str(tmp_path / "data"),
                                "DROP TABLE privaudit.events"], capture_output=True, text=True, timeout=60)
        assert write.returncode == 2 and "only reads run here" in write.stderr, write.stderr
        # ... and the refusal leaves the consumer's own session writable: later events still load
        more = simulated(300, seed=42)
        produce(broker.bootstrap, more, tmp_path / "spool-2")
        deadline = time.monotonic() + 60
        while loaded() != len(events) + len(more) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.5)
        assert loaded() == len(events) + len(more)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert f"dashboard: http://127.0.0.1:{port}/" in err
    assert not (tmp_path / "data" / "clickhouse.serving.json").exists()
    assert count(tmp_path / "data", "SELECT count() FROM privaudit.events") == len(events) + len(more)  # still there
