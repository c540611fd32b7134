"""The store reached from another process: what goes over the socket and what comes back.

The served store here is a recording stand-in (the real engine is exercised through the
``--processes`` integration tests); what is tested is the transport around it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from privaudit.consumers.metrics import Metrics, RelayMetrics
from privaudit.errors import StoreError, StoreUnavailable
from privaudit.store import RemoteStore, StoreServer


class _Recording:
    dsn, database, cluster = "chdb:///nowhere", "privaudit", None

    def __init__(self) -> None:
        self.inserts: list[tuple[str, object, str | None]] = []

    def insert_data(self, table, data, *, token=None):
        self.inserts.append((table, data, token))

    def query(self, sql, parameters=None, *, readonly=False):
        if sql == "bad":
            raise StoreError("Code: 62. Syntax error")
        if sql == "boom":
            raise RuntimeError("not a store error")
        if sql == "later":
            raise StoreUnavailable("Code: 252. Too many parts")
        return ["sql", "readonly", "p"], [(sql, readonly, (parameters or {}).get("p"))]

    def command(self, sql, parameters=None):
        return f"done: {sql}"


@pytest.fixture()
def served():
    store = _Recording()
    server = StoreServer(store)  # type: ignore[arg-type]
    yield store, server
    server.close()


def test_queries_commands_and_inserts_travel_and_come_back(served):
    store, server = served
    remote = RemoteStore(server.spec)
    assert remote.embedded and remote.database == "privaudit"
    answer = remote.query("SELECT {p:UInt8}", {"p": 7}, readonly=True)
    assert answer == (["sql", "readonly", "p"], [("SELECT {p:UInt8}", True, 7)])
    assert remote.command("OPTIMIZE TABLE x") == "done: OPTIMIZE TABLE x"
    at = datetime(2026, 11, 29, tzinfo=UTC)
    remote.insert("progress", [["t"], [1], [5], [at]],
                  ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at"], token="audit/t/1/0-4/progress")
    remote.insert("progress", [[]], ["kafka_topic"])  # nothing to insert: nothing sent
    [(table, data, token)] = store.inserts
    assert table == "progress" and token == "audit/t/1/0-4/progress"
    assert isinstance(data, pa.Table) and data.column("max_occurred_at")[0].as_py() == at  # built by the caller
    remote.close()


def test_errors_come_back_as_store_errors_with_their_message(served):
    _, server = served
    remote = RemoteStore(server.spec)
    with pytest.raises(StoreError, match="Syntax error"):
        remote.query("bad")
    with pytest.raises(StoreError, match="RuntimeError: not a store error") as refused:
        remote.query("boom")
    assert not isinstance(refused.value, StoreUnavailable)
    with pytest.raises(StoreUnavailable, match="Too many parts"):  # as itself: the caller retries it
        remote.query("later")
    with pytest.raises(StoreError, match="does not fit its column"):  # refused where it was built
        remote.insert("progress", [["t"], [-1]], ["kafka_topic", "kafka_partition"])
    assert remote.command("still served") == "done: still served"


def test_a_lost_host_is_a_store_error_not_a_hang(served):
    _, server = served
    remote = RemoteStore(server.spec)
    assert remote.command("x") == "done: x"
    server.close()
    with pytest.raises(StoreError, match="lost the store's host process"):
        remote.command("x")
    with pytest.raises(StoreError, match="cannot reach"):
        RemoteStore(server.spec)


def test_one_connection_serves_threads_one_request_at_a_time(served):
    _, server = served
    remote = RemoteStore(server.spec)
    answers: list[str] = []

    def ask(i: int) -> None:
        for j in range(50):
            answers.append(remote.command(f"{i}-{j}"))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == sorted(f"done: {i}-{j}" for i in range(4) for j in range(50))


def test_relayed_metrics_equal_the_same_operations_applied_directly():
    direct, relayed, relay = Metrics(), Metrics(), RelayMetrics()
    for m in (direct, relay):
        m.records.inc(250)
        m.events.labels("access").inc(200)
        m.violations.labels("PA-003").inc(2)
        m.dlq.labels("decode").inc()
        m.batch_seconds.observe(0.3)
        m.lag.labels("4").set(17)
        m.store_retries.inc()
    RelayMetrics.replay(relayed, relay.drain())
    assert relay.drain() == []

    def samples(m: Metrics) -> list[tuple[str, list, float]]:
        return sorted((s.name, sorted(s.labels.items()), s.value) for f in m.registry.collect() for s in f.samples
                      if not s.name.endswith("_created"))

    assert samples(relayed) == samples(direct)
