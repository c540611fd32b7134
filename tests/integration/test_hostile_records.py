"""Records that crashed, stalled or vanished, through the real broker and the real engine (issue 18,
items 3-5): tombstones on several partitions, a record too large to decode or to carry, events from
the future, and a TTL that does not wrap past 2106."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer

from privaudit.schemas import Codec
from privaudit.settings import TOPIC_DLQ, TOPIC_EVENTS
from tests.helpers import access, membership

from .conftest import consume, count, read_topic, sql

pytestmark = pytest.mark.integration


def _send(bootstrap: str, records: list[tuple[bytes, bytes | None]], partition: int | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    for i, (key, value) in enumerate(records):
        # a tombstone goes to each partition in turn (a key alone would put most on one)
        where = partition if partition is not None or value is not None else i % 4
        producer.send(TOPIC_EVENTS, value=value, key=key, partition=where)
    producer.flush()
    producer.close()


def _dlq_headers(bootstrap: str, n: int) -> list[dict[str, bytes]]:
    return [dict(r.headers) for r in read_topic(bootstrap, TOPIC_DLQ, n)]


def test_tombstones_on_every_partition_are_dead_letters_and_the_rest_loads(broker, tmp_path):
    now = datetime.now(UTC) - timedelta(hours=1)
    codec = Codec()
    good = [membership("SIGNUP", subject_id=f"p-t{i}", occurred_at=now) for i in range(12)]
    records: list[tuple[bytes, bytes | None]] = []
    for i, event in enumerate(good):
        records.append((event.subject_id.encode(), codec.encode(event)))
        records.append((f"p-t{i}".encode(), None))  # what deleting the key in a compacted topic writes
    _send(broker.bootstrap, records)
    summary = consume(broker.bootstrap, tmp_path / "data")
    assert summary["loaded_events"] == 12 and summary["dlq"] == 12
    reasons = sql(tmp_path / "data", "SELECT kind, reason, uniqExact(kafka_partition) AS partitions, count() AS n "
                                     "FROM privaudit.dead_letters FINAL GROUP BY kind, reason")
    assert len(reasons) == 1 and reasons[0]["kind"] == "decode" and "tombstone" in reasons[0]["reason"]
    assert reasons[0]["n"] == 12 and reasons[0]["partitions"] > 1
    assert all(h.get("privaudit.tombstone") == b"true" for h in _dlq_headers(broker.bootstrap, 1))
    # a restart does not trip on them again
    assert consume(broker.bootstrap, tmp_path / "data")["dlq"] == 0


def test_a_record_too_large_is_a_dead_letter_that_fits_the_broker(broker, tmp_path):
    now = datetime.now(UTC) - timedelta(hours=1)
    codec = Codec()
    fine = codec.encode(access(occurred_at=now, subject_id="p-fine"))
    oversized = fine + b"\x00" * (1_100_000 - len(fine))  # over the 1 MiB limit, and over 900 KiB
    near = codec.encode_record("access", access(occurred_at=now).model_dump(exclude={"type"})
                               | {"data_items": [""] * 900_000})  # the reported one: ~900 KB of empty strings
    _send(broker.bootstrap, [(b"p-big", oversized), (b"p-near", near), (b"p-fine", fine)], partition=0)
    summary = consume(broker.bootstrap, tmp_path / "data", timeout=120)
    assert summary["loaded_events"] == 1 and summary["dlq"] == 2
    headers = _dlq_headers(broker.bootstrap, 2)
    reasons = sorted(h["privaudit.reason"].decode() for h in headers)
    assert "over the limit of 1,048,576" in reasons[0] and "data_items holds more than 256 items" in reasons[1]
    big = next(h for h in headers if h.get("privaudit.value-size"))
    assert int(big["privaudit.value-size"]) == len(oversized) and len(big["privaudit.value-sha256"]) == 64
    assert all(len(h["privaudit.reason"]) <= 1100 for h in headers)


def test_events_from_the_future_are_dead_letters_and_nothing_loaded_vanishes(broker, tmp_path):
    codec = Codec()
    past = datetime.now(UTC) - timedelta(hours=2)
    future = [datetime(2106, 2, 8, tzinfo=UTC), datetime(2150, 6, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC),
              datetime.now(UTC) + timedelta(days=3)]
    records: list[tuple[bytes, bytes | None]] = [(b"p-f", codec.encode(access(occurred_at=when, subject_id="p-f")))
                                                 for when in future]
    records += [(b"p-p", codec.encode(access(occurred_at=past, subject_id="p-p")))]
    _send(broker.bootstrap, records, partition=1)
    summary = consume(broker.bootstrap, tmp_path / "data")
    assert summary["loaded_events"] == 1 and summary["dlq"] == 4
    kinds = sql(tmp_path / "data", "SELECT kind, reason FROM privaudit.dead_letters FINAL")
    assert all(k["kind"] == "contract" and "clock-skew allowance" in k["reason"] for k in kinds)
    # a wider allowance takes an event three days ahead (a machine with a wrong clock, known)
    assert count(tmp_path / "data", "SELECT count() FROM privaudit.events") == 1


def test_the_ttl_keeps_a_row_dated_past_2106_instead_of_wrapping_it_into_1972(tmp_path):
    data = tmp_path / "data"

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "privaudit.cli", *args, "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("db", "migrate")
    insert = ("INSERT INTO privaudit.events (event_id, type, occurred_at, service, subject_id, kafka_topic, "
              "kafka_partition, kafka_offset) VALUES (generateUUIDv4(), 'access', '{when}', 's', 'p-ttl', 't', 0, {n})")
    for n, when in enumerate(["2106-02-08 00:00:00", "2150-01-01 00:00:00", "2299-12-31 00:00:00"]):
        cli("sql", "--write", insert.format(when=when, n=n))
    cli("sql", "--write", "OPTIMIZE TABLE privaudit.events FINAL")
    assert count(data, "SELECT count() FROM privaudit.events WHERE subject_id = 'p-ttl'") == 3
    [ttl] = sql(data, "SELECT engine_full FROM system.tables WHERE database = 'privaudit' AND name = 'events'")
    assert "toDateTime(occurred_at)" not in ttl["engine_full"] and "occurred_at + toIntervalDay(" in ttl["engine_full"]

