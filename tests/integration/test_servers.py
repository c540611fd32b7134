"""The same pipeline against Apache Kafka and a ClickHouse server, started by testcontainers.

These need a Docker engine. The development and CI machines have none (only the docker client),
so here they skip, saying so; wherever `docker info` answers they run.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from privaudit.bus import ensure_topics
from privaudit.store import Store

from .conftest import PARTITIONS, consume, expected_verdicts, produce, simulated

pytestmark = pytest.mark.integration


def _docker_engine() -> str | None:
    """None when an engine answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    return None if probe.returncode == 0 else "no Docker engine answers `docker info` (only the client is installed)"


_WHY = _docker_engine()
needs_docker = pytest.mark.skipif(_WHY is not None, reason=f"needs a Docker engine for testcontainers: {_WHY}")


@pytest.fixture(scope="module")
def kafka():
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
        bootstrap = container.get_bootstrap_server()
        ensure_topics(bootstrap, PARTITIONS)
        yield bootstrap


@pytest.fixture(scope="module")
def clickhouse_dsn():
    from testcontainers.community.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:25.8", username="privaudit", password="privaudit") as ch:
        yield f"http://privaudit:privaudit@{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"


@needs_docker
def test_a_repeated_insert_token_is_stored_once_on_a_server(clickhouse_dsn):
    store = Store.connect(clickhouse_dsn)
    try:
        store.migrate()
        store.command("CREATE TABLE IF NOT EXISTS privaudit.dedup_probe (a UInt8) ENGINE = MergeTree ORDER BY a "
                      "SETTINGS non_replicated_deduplication_window = 100")
        for _ in range(2):
            store.insert("dedup_probe", [[1, 2]], ["a"], token="probe-1")
        assert store.query("SELECT count() FROM privaudit.dedup_probe")[1][0][0] == 2
    finally:
        store.close()


@needs_docker
def test_apache_kafka_to_a_clickhouse_server(kafka, clickhouse_dsn, tmp_path):
    events = simulated(2000, seed=21)
    produce(kafka, events, tmp_path / "spool")
    summary = consume(kafka, tmp_path / "unused", "--clickhouse", clickhouse_dsn)
    assert summary["loaded_events"] == 2000
    store = Store.connect(clickhouse_dsn)
    try:
        _, rows = store.query("SELECT toString(event_id), rule FROM privaudit.violations")
    finally:
        store.close()
    assert len(rows) == len(set(rows)) and set(rows) == expected_verdicts(events)
