"""Dashboards on demo data in the real engine: every Grafana panel's SQL, the built-in dashboard in
headless Chromium (Debian's ``chromium``, driven by Playwright), and the monthly report."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
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


def _kst_month(data: Path) -> tuple[str, str, str]:
    """The demo's first month in KST: ``("2026-11", first day, last day)``."""
    [row] = sql(data, "SELECT formatDateTime(min(occurred_at), '%Y-%m', 'Asia/Seoul') AS m FROM privaudit.events")
    month = row["m"]
    start = datetime.strptime(month, "%Y-%m")
    after = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return month, f"{start:%Y-%m-%d}", f"{after - timedelta(days=1):%Y-%m-%d}"


def _in_kst_days(first: str, last: str) -> str:
    """SQL: occurred_at within the KST days ``first``..``last``, cut by the engine's own time zone
    arithmetic (independent of the console's parameters)."""
    return (f"toDate(toTimeZone(occurred_at, 'Asia/Seoul')) >= toDate('{first}') "
            f"AND toDate(toTimeZone(occurred_at, 'Asia/Seoul')) <= toDate('{last}')")


@pytest.fixture
def console(demo_dir: Path) -> Iterator[Dashboard]:
    """``privaudit dashboard`` on the demo's store, with the simulated services' pseudonymisation
    key (members are found by their made-up phone numbers). One per test: it holds the store."""
    from privaudit.producers.simulator import SIM_KEY

    server = Dashboard(demo_dir, env={"PRIVAUDIT_PSEUDONYM_KEY": SIM_KEY.decode()}).wait()
    yield server
    server.stop()
    log = server.proc.stderr.read()  # type: ignore[union-attr]
    # the phone numbers the tests searched for were never logged
    assert "010-0000" not in log and "+82100000" not in log, log[-2000:]


#: Every text, link and chart label of a card lies inside the card; nothing scrolls sideways.
_CLIPPED = """() => {
  const bad = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) bad.push(`the page scrolls sideways: ${page.scrollWidth}`);
  for (const card of document.querySelectorAll('.card')) {
    const name = card.dataset.panel || card.dataset.view || card.dataset.section || card.className;
    const box = card.getBoundingClientRect();
    if (card.scrollWidth > card.clientWidth + 1) bad.push(`${name}: its content is wider than the card`);
    for (const el of card.querySelectorAll('svg text, a, h3, h4, th, td, dt, dd, .stat')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;  // not shown (rows folded until "show all")
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        bad.push(`${name}: "${(el.textContent || '').slice(0, 40)}" is cut ` +
                 `(${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(box.left)}..` +
                 `${Math.round(box.right)})`);
    }
  }
  return bad;
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
@pytest.mark.parametrize("width", [1600, 1280])
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_each_view_of_the_console_in_chromium_speaks_the_language_matches_sql_and_cuts_nothing(
        demo_dir: Path, console: Dashboard, lang: str, width: int) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    from privaudit.i18n import gettext
    from privaudit.producers.pseudonym import Pseudonymizer
    from privaudit.producers.simulator import SIM_KEY, member_phone

    month, first, last = _kst_month(demo_dir)
    in_month = _in_kst_days(first, last)
    total = count(demo_dir, f"SELECT count() FROM privaudit.events FINAL WHERE {in_month}")
    members = count(demo_dir, f"SELECT uniqExact(subject_id) FROM privaudit.events FINAL WHERE {in_month}")
    violations = count(demo_dir, f"SELECT count() FROM privaudit.violations FINAL WHERE {in_month}")
    critical = count(demo_dir, "SELECT count() FROM privaudit.violations FINAL WHERE severity = 'critical' "
                               f"AND {in_month}")
    payments = count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE service = 'payments' "
                               f"AND {in_month}")
    [sample] = sql(demo_dir, "SELECT toString(event_id) AS e, rule FROM privaudit.violations FINAL "
                             "WHERE rule = 'PA-012' ORDER BY occurred_at LIMIT 1")
    phone = member_phone(1)
    subject_id = Pseudonymizer(SIM_KEY)(phone)
    of_member = f"subject_id = '{subject_id}' AND {in_month}"
    member_events = count(demo_dir, f"SELECT count() FROM privaudit.events FINAL WHERE {of_member}")
    member_by_staff = count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type = 'access' AND "
                                      f"actor_type IN ('STAFF', 'PROCESSOR') AND {of_member}")
    assert member_events > 0
    shots = ARTIFACTS / "console"
    shots.mkdir(parents=True, exist_ok=True)
    word = {"ko": "개요", "en": "Overview"}[lang]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))

        def stat(name: str) -> int:
            return int(page.inner_text(f"[data-panel=totals] [data-stat={name}] .v").replace(",", ""))

        def apply(**fields: str) -> None:
            for name, value in fields.items():
                if name in ("from", "to", "actor"):
                    page.fill(f"#f-{name}", value)
                else:
                    page.select_option(f"#f-{name}", value)
            page.click("#f-apply")
            page.wait_for_selector("body[data-ready=overview]", timeout=60_000)

        page.goto(f"{console.url}?lang={lang}")
        page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
        assert page.evaluate("document.documentElement.lang") == lang
        assert word in page.inner_text("main")
        apply(**{"from": first, "to": last})  # the month, in KST days
        assert (stat("events"), stat("subjects"), stat("violations"), stat("critical")) == (
            total, members, violations, critical)
        assert page.locator("[data-panel][data-state=error]").count() == 0
        for panel in ("events_by_day", "violations_by_day", "use_by_purpose", "violations_by_rule"):
            drawn = page.locator(f"[data-panel={panel}] .chart[data-drawn] svg path")
            assert drawn.count() > 0, f"{panel} drew nothing"
        # the violations' rule titles are in the page's language
        bars = page.inner_text("[data-panel=violations_by_rule] .chart")
        assert gettext("bulk access", lang) in bars
        assert page.evaluate(_CLIPPED) == []
        page.screenshot(path=str(shots / f"overview-{lang}-{width}.png"), full_page=True)
        apply(service="payments")
        assert stat("events") == payments < total
        apply(service="")

        page.goto(f"{console.url}?lang={lang}#/event/{sample['e']}")
        page.wait_for_selector("body[data-ready=event]", timeout=30_000)
        verdict = page.inner_text("[data-view=event-violations]")
        assert sample["rule"] in verdict
        # the verdict's message, kept in the store as a catalogue text and its parameters, said in the language
        assert {"ko": "(기준 ", "en": "(threshold "}[lang] in verdict
        for text in ("bulk access", "Safety Measures Art. 8",
                     "Ask the actor for a justification (소명); check the access against their duties; lock the "
                     "account if it is not justified."):
            assert gettext(text, lang) in verdict
        assert page.evaluate(_CLIPPED) == []
        page.screenshot(path=str(shots / f"event-{lang}-{width}.png"), full_page=True)

        # a member found by phone number: pseudonymised by the server, never in a URL
        page.goto(f"{console.url}?lang={lang}")
        page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
        apply(**{"from": first, "to": last})
        page.fill("#s-q", phone)
        page.click("#s-go")
        page.wait_for_selector("body[data-ready=subject]", timeout=30_000)
        assert subject_id in page.inner_text("[data-view=subject]")
        assert (int(page.inner_text("[data-view=subject] [data-stat=events] .v").replace(",", "")),
                int(page.inner_text("[data-view=subject] [data-stat=by_staff] .v").replace(",", ""))) == (
            member_events, member_by_staff)
        assert page.locator("[data-section=staff]").count() == 1 and page.locator("[data-section=systems]").count() == 1
        assert page.evaluate(_CLIPPED) == []
        page.screenshot(path=str(shots / f"subject-{lang}-{width}.png"), full_page=True)
        # printed, the member's page shows every row (long tables fold on screen only) and no controls
        rows = page.locator("[data-section] tbody tr")
        assert rows.count() > 12
        page.emulate_media(media="print")
        assert all(rows.nth(i).is_visible() for i in range(rows.count()))
        assert not page.locator("#filters").is_visible() and not page.locator("button.show-all").first.is_visible()
        page.emulate_media(media="screen")
        browser.close()
    assert problems == []
    assert not [u for u in requested if phone in u or phone.replace("-", "") in u]
    assert not [u for u in requested if not u.startswith(console.url)], "the console fetched something elsewhere"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_period_presets_are_kst_days(demo_dir: Path, console: Dashboard) -> None:
    """At 00:30 on Tuesday 1 December 2026 in Seoul it is still 30 November in UTC: the presets
    follow Seoul."""
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.clock.set_fixed_time(datetime(2026, 11, 30, 15, 30, tzinfo=UTC))
        page.goto(console.url)
        page.wait_for_selector("body[data-ready=overview]", timeout=60_000)
        seen = {}
        for preset in ("today", "week", "last7", "month", "lastmonth"):
            page.select_option("#f-preset", preset)
            seen[preset] = (page.input_value("#f-from"), page.input_value("#f-to"))
        browser.close()
    assert seen == {"today": ("2026-12-01", "2026-12-01"), "week": ("2026-11-30", "2026-12-01"),
                    "last7": ("2026-11-25", "2026-12-01"), "month": ("2026-12-01", "2026-12-01"),
                    "lastmonth": ("2026-11-01", "2026-11-30")}


def test_the_console_and_the_report_give_the_same_numbers_for_a_month(demo_dir: Path, console: Dashboard) -> None:
    """The same KST month through the console's API and through ``report --json`` (which, with
    the console holding the embedded store, reads through it)."""
    month, first, last = _kst_month(demo_dir)
    api = f"{console.url}api/panel/"

    def panel(name: str, **args: str) -> dict:
        query = urllib.parse.urlencode({"from": first, "to": last, **args})
        with urllib.request.urlopen(f"{api}{name}?{query}", timeout=60) as answer:
            body = json.loads(answer.read())
        return {"columns": body["columns"], "rows": body["rows"]}

    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                           "--month", month, "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    totals = dict(zip(*(lambda b: (b["columns"], b["rows"][0]))(panel("totals")), strict=True))
    assert figures["events"] == totals["events"] == count(
        demo_dir, f"SELECT count() FROM privaudit.events FINAL WHERE {_in_kst_days(first, last)}")
    assert figures["violations"] == totals["violations"]
    downloads = panel("downloads")
    without, with_reason = downloads["columns"].index("value"), downloads["columns"].index("with_reason")
    assert figures["downloads_without_reason"] == sum(r[without] for r in downloads["rows"])
    assert figures["downloads"] == sum(r[without] + r[with_reason] for r in downloads["rows"])
    by_action = {r[0]: r[1] for r in panel("use_by_action")["rows"]}
    assert {a: n["staff"] + n["systems"] for a, n in figures["by_task"].items()} == by_action
    # the downloads list, filtered by reason and by actor
    listed = panel("download_list", reason="without")
    assert len(listed["rows"]) == figures["downloads_without_reason"] > 0
    assert all(r[listed["columns"].index("reason")] == "" for r in listed["rows"])
    actor = panel("download_list")["rows"][0][2]
    by_actor = panel("download_list", actor=actor)
    assert by_actor["rows"] and {r[by_actor["columns"].index("actor_id")] for r in by_actor["rows"]} == {actor}
    assert len(by_actor["rows"]) == count(
        demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type = 'access' AND action IN ('DOWNLOAD', "
                  f"'EXPORT') AND actor_id = '{actor}' AND {_in_kst_days(first, last)}")
    staff = panel("top_actors")
    assert {r[1] for r in staff["rows"]} <= {"STAFF", "PROCESSOR"} and staff["rows"]  # people only by default
    assert "SYSTEM" in {r[1] for r in panel("top_actors", who="all")["rows"]}


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
    reasons = sql(demo_dir, "SELECT ifNull(reason, '') AS r, count() AS n FROM privaudit.events FINAL WHERE "
                            f"type = 'access' AND action IN ('DOWNLOAD', 'EXPORT') AND {in_month} GROUP BY r")
    staff = count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type = 'access' AND "
                            f"actor_type IN ('STAFF', 'PROCESSOR') AND {in_month}")
    # Korean by default, the codes alongside
    korean = tmp_path / "report-ko.html"
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                           "--month", month, "--out", str(korean)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = korean.read_text(encoding="utf-8")
    assert '<html lang="ko">' in text and "접속기록 월간 점검 보고서" in text and "수행업무별 접속기록" in text
    assert f"다운로드·내보내기 {downloads:,}건, 그중 사유 없음 {no_reason:,}건" in text
    assert f"<h3>사유 없음 ({no_reason:,})</h3>" in text and "다운로드 <code>DOWNLOAD</code>" in text
    assert f"명이 {staff:,}건, 시스템이 " in text  # staff apart from systems
    for row in reasons:  # every reason given is listed for the reviewer to confirm
        if row["r"]:
            assert html.escape(row["r"]) in text
    assert "안전성 확보조치 기준 제8조" in text and " UTC" not in text
    # ... and in English on asking
    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                           "--month", month, "--out", str(out), "--lang", "en"], capture_output=True, text=True,
                          timeout=120)
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
    assert not (tmp_path / "no-such-store").exists()  # no empty store made to report on
    for lang, warning, summary in (("ko", "이 달에 저장된 기록이 없습니다", "<h2>요약</h2>"),
                                   ("en", "The store holds no events for this month", "<h2>Summary</h2>")):
        allowed = subprocess.run([sys.executable, "-m", "privaudit.cli", "report", "--data-dir", str(demo_dir),
                                  "--month", "2024-01", "--out", str(tmp_path / "empty.html"), "--allow-empty",
                                  "--lang", lang], capture_output=True, text=True, timeout=120)
        assert allowed.returncode == 0, allowed.stderr
        page = (tmp_path / "empty.html").read_text(encoding="utf-8")
        assert page.index(warning) < page.index(summary)
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


def test_privaudit_subject_shows_one_members_history_as_the_console_does(demo_dir: Path, tmp_path: Path) -> None:
    from privaudit.producers.pseudonym import Pseudonymizer
    from privaudit.producers.simulator import SIM_KEY, member_phone

    month, first, last = _kst_month(demo_dir)
    phone = member_phone(2)
    subject_id = Pseudonymizer(SIM_KEY)(phone)
    of_member = f"subject_id = '{subject_id}' AND {_in_kst_days(first, last)}"
    expected = {
        "events": count(demo_dir, f"SELECT count() FROM privaudit.events FINAL WHERE {of_member}"),
        "by_staff": count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type = 'access' "
                                    f"AND actor_type IN ('STAFF', 'PROCESSOR') AND {of_member}"),
        "by_systems": count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type = 'access' "
                                      f"AND actor_type = 'SYSTEM' AND {of_member}"),
        "provided": count(demo_dir, "SELECT count() FROM privaudit.events FINAL WHERE type IN ('share', 'transfer') "
                                    f"AND {of_member}"),
        "violations": count(demo_dir, f"SELECT count() FROM privaudit.violations FINAL WHERE {of_member}"),
    }
    key = {**os.environ, "PRIVAUDIT_PSEUDONYM_KEY": SIM_KEY.decode()}

    def subject(member: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "privaudit.cli", "subject", member, "--data-dir", str(demo_dir),
                               "--month", month, *extra], capture_output=True, text=True, timeout=120,
                              env=env or {k: v for k, v in os.environ.items() if k != "PRIVAUDIT_PSEUDONYM_KEY"})

    pages = []
    for member, env in ((phone, key), ("+82 10 0000 0002", key), (subject_id, None)):
        proc = subject(member, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        assert phone not in proc.stdout + proc.stderr  # the identifier is never echoed
        pages.append(json.loads(proc.stdout))
    assert pages[0] == pages[1] == pages[2] and pages[0]["subject_id"] == subject_id
    summary = dict(zip(pages[0]["summary"]["columns"], pages[0]["summary"]["rows"][0], strict=True))
    assert {k: summary[k] for k in expected} == expected and expected["events"] > 0
    assert sum(r[pages[0]["staff"]["columns"].index("accesses")] for r in pages[0]["staff"]["rows"]) == \
        expected["by_staff"]
    # a person's table: Korean, KST
    shown = subject(phone, env=key)
    assert shown.returncode == 0 and "회원의 개인정보 처리 내역" in shown.stdout and subject_id in shown.stdout
    assert "직원의 열람·이용" in shown.stdout and "시스템의 자동 처리" in shown.stdout
    # without the key a phone number cannot be looked up: said in one line
    refused = subject(phone)
    assert refused.returncode == 2 and "PRIVAUDIT_PSEUDONYM_KEY" in refused.stderr and phone not in refused.stderr
    # while a console holds the embedded store, the same page comes through it
    server = Dashboard(demo_dir).wait()
    try:
        through = subject(subject_id, "--json")
        assert through.returncode == 0, through.stderr
        assert json.loads(through.stdout) == pages[0]
    finally:
        server.stop()


def test_the_member_search_takes_a_short_json_body_and_echoes_nothing(demo_dir: Path, console: Dashboard) -> None:
    from privaudit.producers.pseudonym import Pseudonymizer
    from privaudit.producers.simulator import SIM_KEY

    def post(body: bytes, kind: str = "application/json") -> tuple[int, dict]:
        request = urllib.request.Request(f"{console.url}api/find-subject", data=body, method="POST",
                                         headers={"Content-Type": kind})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    assert post(b'{"q": "Lee@Example.com "}') == (200, {"subject_id": Pseudonymizer(SIM_KEY)("lee@example.com")})
    pseudonym = Pseudonymizer(SIM_KEY)("010-0000-0003")
    assert post(json.dumps({"q": pseudonym}).encode()) == (200, {"subject_id": pseudonym})  # a pseudonym as it is
    for bad in (b"not json", b'{"q": 7}', b"[]", b'{"q": "   "}', json.dumps({"q": "x" * 5000}).encode()):
        status, answer = post(bad)
        assert status in (400, 413) and "error" in answer, bad[:40]
        assert "xxxx" not in answer["error"]
    # GET is not a search: the identifier would sit in the URL
    with pytest.raises(urllib.error.HTTPError) as get:
        urllib.request.urlopen(f"{console.url}api/find-subject?q=010-0000-0003", timeout=10)
    assert get.value.code == 405
