"""The alert dispatcher against the real broker, the real ClickHouse engine, a real Alertmanager
(Debian's prometheus-alertmanager) and a webhook receiver that is down for a while."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from privaudit.bus.broker import free_port
from privaudit.consumers.alerting import group_key, verify
from privaudit.consumers.alerting.groups import _EPOCH
from privaudit.consumers.alerting.local import LocalAlertmanager, WebhookReceiver

from .conftest import PARTITIONS, produce, simulated, sql, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")),
                       reason="needs Debian's prometheus-alertmanager (installed by .ci/run)"),
]

WINDOW_S = 3600
SECRET = "test-secret"


def write_routing(path: Path, am_url: str, hook_url: str, chat_url: str) -> Path:
    path.write_text(
        "dashboard_url: http://127.0.0.1:8750\n"
        f"group_window: {WINDOW_S}s\n"
        "group_wait: 0s\n"
        "retry_initial: 0.5s\n"
        "retry_max: 2s\n"
        "sinks:\n"
        f"  oncall: {{type: alertmanager, url: '{am_url}'}}\n"
        f"  audit: {{type: webhook, url: '{hook_url}/privaudit', secret_env: TEST_HOOK_SECRET}}\n"
        f"  chat: {{type: slack, url: '{chat_url}/slack'}}\n"
        f"  pager: {{type: pagerduty, url: '{chat_url}/pagerduty', routing_key_env: TEST_PD_KEY}}\n"
        "routes:\n"
        "  - sinks: [oncall, audit]\n"
        "  - match: {severity: [critical]}\n"
        "    sinks: [pager]\n"
        "  - match: {rule: [PA-010, PA-011]}\n"
        "    sinks: [chat]\n"
    )
    return path


def expected_groups(data_dir: Path) -> Counter[str]:
    """Group keys computed from what the pipeline stored, independently of the dispatcher."""
    rows = sql(data_dir, "SELECT rule, service, coalesce(counterparty, actor_id, '') AS party, "
                         "toUnixTimestamp64Milli(occurred_at) AS ms FROM privaudit.violations FINAL")
    out: Counter[str] = Counter()
    for r in rows:
        at = datetime.fromtimestamp(int(r["ms"]) / 1000, UTC)
        start = datetime.fromtimestamp((int(r["ms"]) // 1000) // WINDOW_S * WINDOW_S, UTC)
        assert start <= at and start >= _EPOCH
        out[group_key(r["rule"], r["service"], r["party"], start)] += 1
    return out


def test_every_group_is_notified_once_to_alertmanager_and_to_a_webhook_that_was_down(broker, tmp_path: Path) -> None:
    events = simulated(3000, seed=23, violation_rate=0.05)
    produce(broker.bootstrap, events, tmp_path / "spool")
    am_hook = WebhookReceiver().up()  # Alertmanager's own receiver
    chat = WebhookReceiver().up()  # plays Slack and PagerDuty (their formats, on a local receiver)
    hook = WebhookReceiver(port=free_port())  # our webhook sink: down when the run starts
    data_dir = tmp_path / "data"
    with LocalAlertmanager(am_hook.url, log=tmp_path / "am.log") as am:
        routing = write_routing(tmp_path / "alerting.yaml", am.url, hook.url, chat.url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "privaudit.cli", "run", "--bootstrap", broker.bootstrap, "--data-dir", str(data_dir),
             "--partitions", str(PARTITIONS), "--until-idle", "3", "--alerting", str(routing), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TEST_HOOK_SECRET": SECRET, "TEST_PD_KEY": "pd-routing-key"},
        )
        try:
            assert wait_for(lambda: len(am.alerts()) > 0, timeout=120), "nothing reached Alertmanager"
            time.sleep(3)  # the webhook sink stays down a while longer: the dispatcher retries
            assert hook.snapshot() == []
            hook.up()
            out, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["alerts"]["failed_attempts"] > 0, "the webhook was down: attempts must have failed"

        expected = expected_groups(data_dir)
        assert len(expected) > 10

        # the webhook: every group exactly once, signed, with the count of its violations
        got = hook.snapshot()
        keys = [r.headers["X-Privaudit-Group"] for r in got]
        assert Counter(keys) == Counter(set(keys)), "a group was notified twice"
        assert set(keys) == set(expected)
        for r in got:
            assert verify(SECRET.encode(), r.raw, r.headers["X-Privaudit-Signature"])
            assert r.body["count"] >= 1 and r.body["dashboard_url"].endswith(r.body["event_id"])

        # Alertmanager's API: one alert per group, labelled for on-call
        alerts = am.alerts()
        labels = [a["labels"] for a in alerts]
        assert Counter(lb["group_key"] for lb in labels) == Counter(set(expected))
        for a in alerts:
            lb = a["labels"]
            assert lb["alertname"] == "PrivacyPolicyViolation"
            assert lb["rule"].startswith("PA-") and lb["severity"] in ("critical", "high", "medium") and lb["service"]
            assert a["annotations"]["summary"].startswith(f"[{lb['severity']}] {lb['rule']}")
            assert a["generatorURL"].startswith("http://127.0.0.1:8750/#/event/")
        # ... and routed by Alertmanager to its receiver
        assert wait_for(lambda: {a["labels"]["group_key"] for r in am_hook.snapshot() for a in r.body["alerts"]}
                        == set(expected), timeout=30)

        # Slack and PagerDuty formats, each routed group once
        slack = [r.body for r in chat.snapshot() if r.path == "/slack"]
        pager = [r.body for r in chat.snapshot() if r.path == "/pagerduty"]
        rows = sql(data_dir, "SELECT DISTINCT rule, severity FROM privaudit.violations")
        rules = {r["rule"]: r["severity"] for r in rows}
        assert slack and all(b["text"].startswith("[medium] PA-01") and b["blocks"] for b in slack)
        assert pager and all(b["routing_key"] == "pd-routing-key" and b["event_action"] == "trigger" for b in pager)
        assert all(b["payload"]["severity"] == "critical" and rules[b["payload"]["class"]] == "critical" for b in pager)
        dedup = [b["dedup_key"] for b in pager]
        assert len(dedup) == len(set(dedup)) and set(dedup) <= set(expected)
        critical_groups = {k for k in expected if rules[k.rsplit("-", 1)[0]] == "critical"}  # keys are RULE-hash
        assert set(dedup) == critical_groups

    hook.down()
    am_hook.down()
    chat.down()
    # the history: each (group, sink) delivered, counts adding up to the violations
    history = sql(data_dir, "SELECT group_key, sink, status, count, attempts FROM privaudit.alerts FINAL")
    routed = {(h["group_key"], h["sink"]) for h in history}
    assert {(k, s) for k in expected for s in ("oncall", "audit")} <= routed
    assert {s for _, s in routed} == {"oncall", "audit", "chat", "pager"}
    assert {h["status"] for h in history} == {"delivered"}
    assert {h["group_key"]: int(h["count"]) for h in history} == dict(expected)  # the same count on every sink's row
    assert max(int(h["attempts"]) for h in history if h["sink"] == "audit") > 1
