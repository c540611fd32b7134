"""The dispatcher's logic with a fake consumer, an in-memory history and a scripted receiver
(the real broker, ClickHouse and Alertmanager are in tests/integration/test_alerts.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from privaudit.bus import Record
from privaudit.consumers.alerting import Dispatcher, MemoryHistory, Sink, parse_alerting, sign, verify
from privaudit.consumers.alerting.sinks import SinkUnavailable
from privaudit.errors import ConfigError

CONFIG = {
    "dashboard_url": "http://dash.test",
    "group_window": "1h",
    "group_wait": 0,
    "retry_initial": 1,
    "retry_max": 8,
    "sinks": {
        "am": {"type": "alertmanager", "url": "http://am.test"},
        "hook": {"type": "webhook", "url": "http://hook.test/in", "secret_env": "HOOK_SECRET"},
    },
    "routes": [
        {"match": {"severity": ["critical"]}, "sinks": ["am"]},
        {"sinks": ["hook"]},
    ],
}


class FakeConsumer:
    def __init__(self) -> None:
        self.queue: list[Record] = []
        self.committed_: dict[tuple[str, int], int] = {}
        self.offset = 0

    def add(self, violation: dict[str, Any], partition: int = 0) -> None:
        value = json.dumps(violation).encode()
        self.queue.append(Record("privaudit.violations", partition, self.offset, b"k", value, 0))
        self.offset += 1

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        out, self.queue = self.queue[:max_records], self.queue[max_records:]
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.committed_.update(offsets)

    def close(self) -> None:
        pass


class Receiver:
    """A scripted HTTP peer: ``status`` per call (an exception type means nothing answered)."""

    def __init__(self) -> None:
        self.status: int | None = 200
        self.calls: list[tuple[str, Any, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        if self.status is None:
            raise SinkUnavailable(f"{url}: connection refused")
        self.calls.append((url, json.loads(body), headers))
        return self.status


def violation(event_id: str, rule: str = "PA-003", severity: str = "critical", service: str = "payments",
              counterparty: str | None = "card-issuer", at: str = "2026-11-02T10:15:00.000+00:00") -> dict[str, Any]:
    return {"event_id": event_id, "rule": rule, "severity": severity, "message": "m", "policy_version": "v1",
            "occurred_at": at, "type": "share", "service": service, "subject_id": "p-1", "actor_id": "svc",
            "counterparty": counterparty, "source": {"topic": "privaudit.events", "partition": 0, "offset": 1}}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    config = parse_alerting(CONFIG)
    am, hook = Receiver(), Receiver()
    sinks = {"am": Sink("am", config.sinks["am"], config.dashboard_url, am),
             "hook": Sink("hook", config.sinks["hook"], config.dashboard_url, hook)}
    consumer, history, clock = FakeConsumer(), MemoryHistory(), Clock()
    return Dispatcher(config, consumer, history, sinks, clock=clock), consumer, history, am, hook, clock


def test_one_notification_per_group_carrying_the_count_and_repeats_counted_once(parts) -> None:
    d, consumer, history, am, hook, _ = parts
    for i in range(3):
        consumer.add(violation(f"00000000-0000-4000-8000-00000000000{i}"))
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))  # a repeated record
    d.step()
    assert len(am.calls) == 1 and len(hook.calls) == 1
    [alert] = am.calls[0][1]
    assert alert["labels"]["rule"] == "PA-003" and alert["labels"]["severity"] == "critical"
    assert alert["labels"]["service"] == "payments" and alert["labels"]["party"] == "card-issuer"
    assert alert["annotations"]["count"] == "3"
    assert alert["generatorURL"] == "http://dash.test/#/event/00000000-0000-4000-8000-000000000000"
    assert d.totals.repeats == 1
    consumer.add(violation("00000000-0000-4000-8000-000000000009", at="2026-11-02T10:59:00.000+00:00"))
    d.step()
    assert len(am.calls) == 1, "a later violation of the same window does not page again"
    assert history.rows[(d.groups[next(iter(d.groups))].key, "am")] == ("delivered", 4, 1)
    assert consumer.committed_[("privaudit.violations", 0)] == 5


def test_routes_send_each_group_where_its_severity_rule_and_service_match(parts) -> None:
    d, consumer, _, am, hook, _ = parts
    consumer.add(violation("00000000-0000-4000-8000-000000000001", rule="PA-011", severity="medium",
                           service="support", counterparty=None))
    d.step()
    assert am.calls == [] and len(hook.calls) == 1
    body = hook.calls[0][1]
    assert body["rule"] == "PA-011" and body["party"] == "svc" and body["count"] == 1
    assert body["title"] == "download or export without a reason"


def test_webhook_is_signed_and_carries_the_group_key(parts) -> None:
    d, consumer, _, _, hook, _ = parts
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))
    d.step()
    url, body, headers = hook.calls[0]
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert verify(b"s3cret", raw, headers["X-Privaudit-Signature"])
    assert not verify(b"other", raw, headers["X-Privaudit-Signature"])
    assert headers["X-Privaudit-Group"] == body["group_key"]


def test_a_down_sink_holds_the_offsets_and_is_retried_with_backoff_until_it_takes_the_alert(parts) -> None:
    d, consumer, _, am, hook, clock = parts
    am.status = None  # Alertmanager is down
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))
    d.step()
    assert len(hook.calls) == 1 and am.calls == []
    assert ("privaudit.violations", 0) not in consumer.committed_, "offsets must not pass an undelivered alert"
    d.step()  # backing off: no attempt before retry_initial
    assert d.totals.failed_attempts == 1
    clock.t = 1.5
    d.step()
    assert d.totals.failed_attempts == 2  # second failure: next try after 2 s
    am.status = 503
    clock.t = 4.0
    d.step()
    assert d.totals.failed_attempts == 3 and am.calls  # answered 503: still retried
    am.status, clock.t = 200, 9.0
    am.calls.clear()
    d.step()
    assert len(am.calls) == 1 and len(hook.calls) == 1, "delivered once to each sink"
    assert consumer.committed_[("privaudit.violations", 0)] == 1


def test_a_rejected_payload_is_recorded_and_not_retried(parts) -> None:
    d, consumer, history, am, _, clock = parts
    am.status = 400
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))
    d.step()
    clock.t = 100
    d.step()
    assert len(am.calls) == 1
    key = next(iter(d.groups))
    assert history.rows[(key, "am")][0] == "rejected"
    assert consumer.committed_[("privaudit.violations", 0)] == 1


def test_after_a_restart_a_delivered_group_is_not_sent_again(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    d, consumer, history, am, hook, _ = parts
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))
    d.step()
    # a new process, same history; the record is re-read (as if the commit had been lost)
    config = parse_alerting(CONFIG)
    again = FakeConsumer()
    again.add(violation("00000000-0000-4000-8000-000000000001"))
    again.add(violation("00000000-0000-4000-8000-000000000002", rule="PA-013"))
    d2 = Dispatcher(config, again, history, d.sinks)
    d2.step()
    assert len(am.calls) == 2 and len(hook.calls) == 2  # only the new group (PA-013) went out
    assert am.calls[1][1][0]["labels"]["rule"] == "PA-013"


def test_other_windows_and_parties_are_other_groups(parts) -> None:
    d, consumer, _, am, _, _ = parts
    consumer.add(violation("00000000-0000-4000-8000-000000000001"))
    consumer.add(violation("00000000-0000-4000-8000-000000000002", at="2026-11-02T11:00:00.000+00:00"))
    consumer.add(violation("00000000-0000-4000-8000-000000000003", counterparty="another-co"))
    d.step()
    assert len(am.calls[0][1]) == 3  # one request to Alertmanager carrying three groups


@pytest.mark.parametrize("change, where", [
    ({"routes": [{"sinks": ["nope"]}]}, "routes[0].sinks[0]: unknown sink 'nope'"),
    ({"group_window": "soon"}, "group_window: not a duration"),
    ({"sinks": {"x": {"type": "sms", "url": "http://x"}}}, "sinks.x.type"),
    ({"routes": [{"match": {"rule": ["PA-999"]}, "sinks": ["am"]}]}, "routes[0].match.rule: unknown rule 'PA-999'"),
    ({"sinks": {"x": {"type": "pagerduty", "url": "http://x"}}, "routes": [{"sinks": ["x"]}]}, "routing_key_env"),
    ({"sinks": {"am": {"type": "alertmanager", "url": "ftp://x"}}}, "sinks.am.url: must start with http"),
])
def test_a_bad_routing_file_is_refused_with_the_path_of_the_bad_field(change: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_alerting({**CONFIG, **change})


def test_signature_is_hmac_sha256_over_time_and_body() -> None:
    import hashlib
    import hmac

    header = sign(b"k", b"{}", at=1700000000)
    assert header == "t=1700000000,v1=" + hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()


def test_an_unreadable_record_is_skipped_logged_and_committed(parts) -> None:
    d, consumer, _, am, _, _ = parts
    consumer.queue.append(Record("privaudit.violations", 0, 0, b"k", b"not json", 0))
    consumer.offset = 1
    consumer.add({**violation("00000000-0000-4000-8000-000000000001"), "rule": "PA-999", "severity": None})
    consumer.add(violation("not-a-uuid"))
    consumer.add(violation("00000000-0000-4000-8000-000000000002"))
    d.step()
    assert d.totals.unreadable == 3 and len(am.calls) == 1
    assert consumer.committed_[("privaudit.violations", 0)] == 4
