"""The pipeline against the real broker and the real ClickHouse engine."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from privaudit.bus import free_port
from privaudit.schemas import Codec, Event
from privaudit.settings import TOPIC_DLQ, TOPIC_EVENTS, TOPIC_VIOLATIONS
from tests.helpers import access, consent, membership

from .conftest import (
    consume,
    consume_cmd,
    count,
    expected_verdicts,
    kill,
    produce,
    read_topic,
    simulated,
    sql,
    stored_verdicts,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_produced_equals_loaded_with_the_verdicts_of_check(broker, tmp_path, client):
    events = simulated(3000)
    produce(broker.bootstrap, events, tmp_path / "spool")
    summary = consume(broker.bootstrap, tmp_path / "data", "--kafka-client", client)
    assert summary["loaded_events"] == 3000 and summary["dlq"] == 0
    expected = expected_verdicts(events)
    data = tmp_path / "data"
    assert count(data, "SELECT count() FROM privaudit.events") == 3000
    assert count(data, "SELECT uniqExact(event_id) FROM privaudit.events") == 3000
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored)) and set(stored) == expected
    assert count(data, "SELECT uniqExactMerge(events) FROM privaudit.usage_daily") == 3000
    assert {rule for _, rule in expected} >= {"PA-001", "PA-003", "PA-005", "PA-008", "PA-012", "PA-015"}
    published = read_topic(broker.bootstrap, TOPIC_VIOLATIONS, len(expected))
    assert len(published) >= len(expected)


def test_sigkill_at_random_points_leaves_everything_exactly_once(broker, tmp_path):
    events = simulated(12000, seed=5)
    produce(broker.bootstrap, events, tmp_path / "spool")
    data = tmp_path / "data"
    rng = random.Random(2024)
    loaded = [0]
    for cycle in range(4):
        log = tmp_path / f"consumer-{cycle}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(consume_cmd(broker.bootstrap, data, "--max-records", "250"),
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    env=os.environ | {"PRIVAUDIT_LOG_LEVEL": "INFO"})
            # Killed at a random point of its loading: the clock starts when it is given its
            # partitions (a start-up and a group join take 4-10 s here, more after a kill, whose
            # member the group keeps until its session times out).
            started = wait_for(lambda log=log, proc=proc: "assigned" in log.read_text() or proc.poll() is not None,
                               timeout=60)
            assert started, log.read_text()
            time.sleep(rng.uniform(0.0, 2.5))
            assert proc.poll() is None, log.read_text()[-2000:]
            assert kill(proc) == -signal.SIGKILL
        loaded.append(count(data, "SELECT count() FROM privaudit.events"))
    assert loaded[-1] > 0, f"the consumer never got to load anything before being killed (counts {loaded})"
    consume(broker.bootstrap, data, "--max-records", "250")
    _assert_each_once(data, events)


def _assert_each_once(data, events) -> None:
    """Every event, verdict and state change in ClickHouse exactly once; the verdicts are those of
    ``privaudit check``."""
    n = len(events)
    assert count(data, "SELECT count() FROM privaudit.events") == n
    assert count(data, "SELECT uniqExact(event_id) FROM privaudit.events") == n
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored)), "a violation was stored twice"
    assert set(stored) == expected_verdicts(events)
    state_rows = sum(1 for e in events if e.type in ("consent", "membership"))
    assert count(data, "SELECT count() FROM privaudit.subject_state") == state_rows
    assert count(data, "SELECT uniqExactMerge(events) FROM privaudit.usage_daily") == n


def test_poison_records_go_to_the_dlq_and_the_rest_goes_on(broker, tmp_path):
    codec = Codec()
    recent = simulated(1)[0].occurred_at  # inside the retention TTL
    good = [membership("SIGNUP", subject_id=f"p-good-{i}", occurred_at=recent) for i in range(5)]
    valid = codec.encode(access(occurred_at=recent))
    no_items = access(occurred_at=recent).model_dump(exclude={"type"}) | {"data_items": []}
    breaking = codec.encode_record("access", no_items)
    # bytes written by Apache Avro's Python library, not by us: must decode like ours
    import avro.io
    import avro.schema

    theirs = good[0].model_copy(update={"event_id": str(uuid.uuid4()), "subject_id": "p-theirs"})
    schema = avro.schema.parse(json.dumps(codec.schemas.working["membership"].raw))
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(theirs.model_dump(exclude={"type"}), avro.io.BinaryEncoder(buf))
    apache = b"\xc3\x01" + bytes(schema.fingerprint("CRC-64-AVRO")) + buf.getvalue()
    poison = {
        "random": bytes(random.Random(1).getrandbits(8) for _ in range(64)),
        "truncated": valid[: len(valid) // 2],
        "unknown fingerprint": b"\xc3\x01" + b"\x01" * 8 + valid[10:],
        "breaks the contract": breaking,
    }
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for event in good[:3]:
        producer.send(TOPIC_EVENTS, codec.encode(event), key=event.subject_id.encode())
    for value in poison.values():
        producer.send(TOPIC_EVENTS, value, key=b"p-good-0")
    for event in good[3:]:
        producer.send(TOPIC_EVENTS, codec.encode(event), key=event.subject_id.encode())
    producer.send(TOPIC_EVENTS, apache, key=b"p-theirs")
    producer.flush()
    summary = consume(broker.bootstrap, tmp_path / "data")
    assert summary["loaded_events"] == 6 and summary["dlq"] == 4
    dead = read_topic(broker.bootstrap, TOPIC_DLQ, 4)
    assert len(dead) == 4
    reasons = []
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["source.topic"] == TOPIC_EVENTS and headers["source.offset"].isdigit()
        reasons.append((headers["privaudit.error"], headers["privaudit.reason"]))
    assert sorted(kind for kind, _ in reasons) == ["contract", "decode", "decode", "decode"]
    assert any("unknown schema fingerprint" in reason for _, reason in reasons)
    assert any("data_items" in reason for _, reason in reasons)
    rows = sql(tmp_path / "data", "SELECT subject_id FROM privaudit.events ORDER BY subject_id")
    assert [r["subject_id"] for r in rows] == sorted([e.subject_id for e in good] + ["p-theirs"])
    # ... and recorded in ClickHouse with the same reasons, for the dashboard's dead-letter panel
    stored = sql(tmp_path / "data", "SELECT kind, reason FROM privaudit.dead_letters FINAL")
    assert sorted((r["kind"], r["reason"]) for r in stored) == sorted(reasons)


def test_confluent_framed_records_of_another_implementation_decode_with_the_registrys_ids(broker, tmp_path):
    """A Java-style deployment: a registry assigned its own ids (201...), the records were written
    by Apache Avro's library, and ``--confluent-ids`` tells the consumers (here in processes of
    their own) which contract version each id is."""
    import avro.io
    import avro.schema

    from privaudit.schemas.registry import EVENT_TYPES

    codec, events = Codec(), simulated(300, seed=21)
    table = tmp_path / "ids.json"
    table.write_text(json.dumps({str(201 + i): f"{t}@1" for i, t in enumerate(EVENT_TYPES)}))
    writers = {t: avro.io.DatumWriter(avro.schema.parse(json.dumps(codec.schemas.working[t].raw))) for t in EVENT_TYPES}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for event in events:
        buf = io.BytesIO()
        writers[event.type].write(event.model_dump(exclude={"type"}), avro.io.BinaryEncoder(buf))
        header = b"\x00" + (201 + EVENT_TYPES.index(event.type)).to_bytes(4, "big")
        producer.send(TOPIC_EVENTS, header + buf.getvalue(), key=event.subject_id.encode())
    shipped = Codec(framing="confluent").encode(events[0])  # the shipped table's id: not this deployment's
    producer.send(TOPIC_EVENTS, shipped, key=events[0].subject_id.encode())
    producer.flush()
    summary = consume(broker.bootstrap, tmp_path / "data", "--confluent-ids", str(table), "--processes", "2")
    assert summary["loaded_events"] == 300 and summary["dlq"] == 1
    [dead] = read_topic(broker.bootstrap, TOPIC_DLQ, 1)
    shipped_id = 1 + EVENT_TYPES.index(events[0].type)
    assert dict(dead.headers)["privaudit.reason"].decode() == f"unknown Confluent schema id {shipped_id}"
    assert set(stored_verdicts(tmp_path / "data")) == expected_verdicts(events)


def test_confluent_serializer_records_are_decoded_with_the_schema_registry_even_while_it_is_down(broker, tmp_path):
    """Services writing through Confluent's own serializer, which registers each schema and frames
    each record with the registry's id; one type registered with its fields in another order. The
    consumers (in processes of their own) ask the registry; it goes down after they start and
    comes back: they wait for it, and nothing goes to the DLQ but a record whose id it never gave."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from privaudit.schemas.registry import EVENT_TYPES
    from tests.registry import StandInRegistry

    events = simulated(300, seed=23)
    with StandInRegistry(first_id=7001) as registry:
        client = SchemaRegistryClient({"url": registry.url})
        serializers = {}
        for t in EVENT_TYPES:
            schema = json.loads(json.dumps(Codec().schemas.working[t].raw))
            if t == "access":  # as another implementation might have registered it
                schema["fields"] = list(reversed(schema["fields"]))
            serializers[t] = AvroSerializer(client, json.dumps(schema), lambda obj, _ctx: obj)
        ctx = SerializationContext(TOPIC_EVENTS, MessageField.VALUE)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        for event in events:
            producer.send(TOPIC_EVENTS, serializers[event.type](event.model_dump(exclude={"type"}), ctx),
                          key=event.subject_id.encode())
        producer.send(TOPIC_EVENTS, b"\x00" + (6999).to_bytes(4, "big") + b"\x00", key=b"p-unknown-id")
        producer.flush()
        assert sorted(registry.schemas) == list(range(7001, 7006))
        registry.requests.clear()
        proc = subprocess.Popen(consume_cmd(broker.bootstrap, tmp_path / "data", "--until-idle", "3", "--json",
                                            "--schema-registry", registry.url, "--processes", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: ("GET", "/config") in registry.requests, 60)  # reached at start-up
            registry.down = True
            assert wait_for(lambda: len([r for r in registry.requests if r[1].startswith("/schemas/ids/")]) >= 4, 60)
            time.sleep(2)
            assert proc.poll() is None
            registry.down = False
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                kill(proc)
    assert proc.returncode == 0, err[-3000:]
    assert "a schema registry lookup failed (" in err and "HTTP 503" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["loaded_events"] == 300 and summary["dlq"] == 1
    reasons = sql(tmp_path / "data", "SELECT reason FROM privaudit.dead_letters FINAL")
    assert [r["reason"] for r in reasons] == ["unknown Confluent schema id 6999 (the schema registry has none)"]
    assert set(stored_verdicts(tmp_path / "data")) == expected_verdicts(events)


def test_consent_and_withdrawal_before_a_restart_are_honoured_after_it(broker, tmp_path):
    data, t0 = tmp_path / "data", simulated(1)[0].occurred_at
    before: list[Event] = [
        membership("SIGNUP", subject_id="p-kept", occurred_at=t0),
        consent("PURPOSE", "MARKETING", subject_id="p-kept", data_items=["DEVICE_ID"], occurred_at=t0),
        membership("WITHDRAWAL", subject_id="p-gone", occurred_at=t0),
    ]
    produce(broker.bootstrap, before, tmp_path / "spool1")
    consume(broker.bootstrap, data)  # loads the state, commits, exits: a restart follows
    later = t0 + timedelta(minutes=5)
    after = [
        access(subject_id="p-kept", purpose="MARKETING", occurred_at=later),  # consented before the restart
        access(subject_id="p-other", purpose="MARKETING", occurred_at=later),  # PA-001
        access(subject_id="p-gone", occurred_at=later),  # PA-008: withdrew before the restart
    ]
    produce(broker.bootstrap, after, tmp_path / "spool2")
    consume(broker.bootstrap, data)
    rows = sql(data, "SELECT subject_id, rule FROM privaudit.violations ORDER BY subject_id")
    assert [(r["subject_id"], r["rule"]) for r in rows] == [("p-gone", "PA-008"), ("p-other", "PA-001")]


@pytest.mark.parametrize("mode", [[], ["--processes", "2"]], ids=["threads", "processes"])
def test_sigterm_finishes_and_exits_0_and_sql_on_a_busy_store_says_so(broker, tmp_path, mode):
    data = tmp_path / "data"
    events = simulated(500)
    end = events[-1].occurred_at
    burst = [access(actor_id="cs-burst", subject_id=f"p-burst-{i}", occurred_at=end + timedelta(seconds=i + 1))
             for i in range(101)]  # the last one is PA-012, at the very end of the stream
    events += burst
    produce(broker.bootstrap, events, tmp_path / "spool")
    port = free_port()
    proc = subprocess.Popen(consume_cmd(broker.bootstrap, data, "--metrics-port", str(port), *mode),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: (data / "clickhouse").exists(), 30)
        busy = subprocess.run([sys.executable, "-m", "privaudit.cli", "sql", "--data-dir", str(data), "SELECT 1"],
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2
        assert busy.stderr.startswith("privaudit: error: the embedded store")
        assert "in use by another process" in busy.stderr
        assert busy.stderr.count("\n") == 1

        def metrics() -> str:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return ""

        assert wait_for(lambda: "privaudit_records_total 601.0" in metrics(), 60), metrics()[-1500:]
        text = metrics()
        for name in ("privaudit_events_total{", "privaudit_violations_total{", "privaudit_batch_seconds_bucket",
                     "privaudit_consumer_lag{"):
            assert name in text, name
        time.sleep(4)  # caught up and idle for 2 s: the bulk stage scans to the end
        if mode:
            assert len(_consumer_processes(proc.pid)) == 2
    finally:
        assert kill(proc, signal.SIGTERM) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    assert count(data, "SELECT count() FROM privaudit.events") == 601
    stored = stored_verdicts(data)
    assert (burst[-1].event_id, "PA-012") in stored  # the tail was scanned while idle, before SIGTERM
    assert len(stored) == len(set(stored)) and set(stored) == expected_verdicts(events)


def _consumer_processes(pid: int) -> list[int]:
    """The consumer processes ``privaudit consume --processes`` spawned (not multiprocessing's
    resource tracker)."""
    return [c for c in _children(pid) if b"spawn_main" in _read(Path(f"/proc/{c}/cmdline"))]


def _children(pid: int) -> list[int]:
    """Child pids of ``pid``, over its threads; a thread that ends while it is read is skipped."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in _read(task / "children").split()]


def _read(path: Path) -> bytes:
    """A /proc file's bytes, or nothing if its thread or process has ended meanwhile."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


def test_consumer_processes_killed_with_sigkill_leave_everything_exactly_once(broker, tmp_path):
    """``--processes 2``: a consumer process killed, then the hosting process killed (its consumer
    processes must not outlive it), then a run to the end: every event and verdict once, the
    verdicts those of ``privaudit check``."""
    events = simulated(12000, seed=6)
    produce(broker.bootstrap, events, tmp_path / "spool")
    data = tmp_path / "data"
    rng = random.Random(7)
    loaded = []
    for victim in ("consumer", "host"):
        proc = subprocess.Popen(consume_cmd(broker.bootstrap, data, "--processes", "2", "--max-records", "250"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert wait_for(lambda proc=proc: len(_consumer_processes(proc.pid)) == 2, 30)
        children = _consumer_processes(proc.pid)
        time.sleep(rng.uniform(4.0, 6.0))
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        if victim == "consumer":
            os.kill(children[0], signal.SIGKILL)
            assert proc.wait(90) == 2
            said = proc.stderr.read().decode() if proc.stderr else ""
            assert "consumer-" in said and "exited with signal SIGKILL" in said, said[-2000:]
        else:
            assert kill(proc) == -signal.SIGKILL
            gone = wait_for(lambda children=children: all(_gone(c) for c in children), 30)
            assert gone, "a consumer process outlived its host"
        loaded.append(count(data, "SELECT count() FROM privaudit.events"))
    assert loaded[0] > 0 and loaded[-1] < 12000, f"the kills did not land mid-stream: {loaded}"
    summary = consume(broker.bootstrap, data, "--processes", "2", "--max-records", "250")
    assert summary["records"] > 0
    _assert_each_once(data, events)


def test_an_event_delivered_twice_is_counted_once(broker, tmp_path):
    """The emitter's spool and producer retries are at least once: the same event at two offsets,
    in one batch and, later, in a batch of its own (as a spool replayed after a restart sends it)."""
    recent = simulated(1)[0].occurred_at
    event = access(purpose="MARKETING", subject_id="p-twice", occurred_at=recent)  # PA-001
    codec = Codec()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    data = tmp_path / "data"
    for sends, records in ((2, 2), (1, 1)):
        for _ in range(sends):
            producer.send(TOPIC_EVENTS, codec.encode(event), key=b"p-twice")
        producer.flush()
        assert consume(broker.bootstrap, data)["records"] == records
    assert count(data, "SELECT count() FROM privaudit.events FINAL") == 1
    assert count(data, "SELECT count() FROM privaudit.violations FINAL") == 1
    assert count(data, "SELECT uniqExactMerge(events) FROM privaudit.usage_daily") == 1  # once, before any merge
    assert count(data, "SELECT uniqExactMerge(subjects) FROM privaudit.usage_daily") == 1


#: The tables whose rows the retention TTL removes (by event time), in name order.
TTL_TABLES = ["event_fields", "events", "repeats", "rewrites", "violations"]

_MIGRATE_FROM_V2 = """
import json, sys, uuid
from datetime import datetime, timezone
from privaudit.store import Store, migrations
store = Store.connect("chdb://" + sys.argv[1])
released, migrations.MIGRATIONS = migrations.MIGRATIONS, migrations.MIGRATIONS[:2]
store.migrate()
ids = [str(uuid.uuid4()) for _ in range(3)]
at = datetime.now(timezone.utc)
def load(event_ids, first):  # the second event is loaded twice, at two offsets
    n = len(event_ids)
    store.insert("events", [event_ids, ["membership"] * n, [at] * n, ["app"] * n, ["p-1"] * n, [None] * n, [""] * n,
                            [[]] * n, [[]] * n, ["SIGNUP"] * n, ["t"] * n, [0] * n, list(range(first, first + n))],
                 ["event_id", "type", "occurred_at", "service", "subject_id", "policy_version", "checked_version",
                  "data_items", "purposes", "change", "kafka_topic", "kafka_partition", "kafka_offset"])
load(ids, 0)
load(ids[1:2], 3)
count = lambda q: store.query(q)[1][0][0]
before = count("SELECT sum(events) FROM privaudit.usage_daily")
migrations.MIGRATIONS = released
applied = store.migrate()
after = count("SELECT uniqExactMerge(events) FROM privaudit.usage_daily")
load(ids[2:3], 4)  # a repeat arriving after the migration
later = count("SELECT uniqExactMerge(events) FROM privaudit.usage_daily")
subjects = count("SELECT uniqExactMerge(subjects) FROM privaudit.usage_daily")
print(json.dumps({"before": before, "applied": applied, "after": after, "later": later, "subjects": subjects,
                  "again": store.migrate()}))
"""


def test_migration_3_rebuilds_the_usage_statistics_to_count_a_repeat_once(tmp_path):
    """A store made before migration 3, whose usage statistics counted a repeated event twice."""
    proc = subprocess.run([sys.executable, "-c", _MIGRATE_FROM_V2, str(tmp_path / "ch")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"before": 4, "applied": [3, 4, 5, 6, 7, 8], "after": 3, "later": 3, "subjects": 1, "again": []}


_RETENTION_WITH_PENDING_MIGRATIONS = """
import json, sys
from privaudit.store import Store, migrations
store = Store.connect("chdb://" + sys.argv[1])
released, migrations.MIGRATIONS = migrations.MIGRATIONS, migrations.MIGRATIONS[:2]
store.migrate()  # a store made before migration 3, with the default retention
migrations.MIGRATIONS = released
applied = store.migrate(1095)
_, rows = store.query("SELECT name, extract(engine_full, 'toIntervalDay\\\\(\\\\d+\\\\)') FROM system.tables "
                      "WHERE database = 'privaudit' AND engine_full LIKE '%TTL%' ORDER BY name")
print(json.dumps({"applied": applied, "recorded": store.retention_days(), "ttls": [list(r) for r in rows]}))
"""


def test_a_retention_set_while_migrations_are_pending_reaches_the_existing_tables(tmp_path):
    """Before, the migrations applied in the same call recorded the new retention first, so the
    change looked done: the store said 1,095 days while the existing tables kept a TTL of 730."""
    proc = subprocess.run([sys.executable, "-c", _RETENTION_WITH_PENDING_MIGRATIONS, str(tmp_path / "ch")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"applied": [3, 4, 5, 6, 7, 8], "recorded": 1095,
                   "ttls": [[name, "toIntervalDay(1095)"] for name in TTL_TABLES]}


def test_commands_that_do_not_set_the_retention_keep_the_one_set(tmp_path):
    """Before, the report, the dashboard and the alert dispatcher migrated with the default of 730
    days, and so cut a TTL of 1,095 set by ``db migrate`` back to 730 when they started."""
    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "privaudit.cli", *args, "--data-dir", str(tmp_path / "data")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout + proc.stderr

    assert "kept 1095 days" in cli("db", "migrate", "--retention-days", "1095")
    # migrates, sets nothing (the store is empty: allowed, so that the report is written)
    cli("report", "--month", "2026-10", "--out", str(tmp_path / "review.html"), "--allow-empty", "--lang", "en")
    assert "kept 1095 days" in cli("db", "migrate")
    ttls = sql(tmp_path / "data", "SELECT name, extract(engine_full, 'toIntervalDay\\(\\d+\\)') AS ttl "
                                  "FROM system.tables WHERE database = 'privaudit' AND engine_full LIKE '%TTL%' "
                                  "ORDER BY name")
    assert ttls == [{"name": name, "ttl": "toIntervalDay(1095)"} for name in TTL_TABLES]
    assert "TTL is 1095 days" in (tmp_path / "review.html").read_text()
    assert "kept 800 days" in cli("db", "migrate", "--retention-days", "800")  # set on purpose: applied


def test_a_bounded_state_drops_and_reloads_subjects_with_the_same_verdicts(broker, tmp_path):
    """Three subjects held per partition: nearly every batch drops subjects and reloads others from
    subject_state, across a SIGKILL too; the verdicts stay those of privaudit check."""
    events = simulated(4000, seed=17, violation_rate=0.06)
    produce(broker.bootstrap, events, tmp_path / "spool")
    data = tmp_path / "data"
    proc = subprocess.Popen(consume_cmd(broker.bootstrap, data, "--max-records", "200", "--max-subjects", "3"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(6)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    kill(proc)
    consume(broker.bootstrap, data, "--max-records", "200", "--max-subjects", "3")
    assert count(data, "SELECT count() FROM privaudit.events") == len(events)
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored))
    expected = expected_verdicts(events)
    assert set(stored) == expected
    assert {"PA-008", "PA-001"} <= {rule for _, rule in expected}  # rules that read consent and membership state


def test_the_demo_with_consumer_processes_matches_check(tmp_path):
    data = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "demo", "--events", "3000", "--processes", "2",
                           "--data-dir", str(data), "--json", "--no-dashboard", "--partitions", "4"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["produced"] == summary["loaded_events"] == 3000 and summary["dlq"] == 0
    assert summary["matches_check"] is True and summary["violations"].get("PA-012", 0) > 0
    assert summary["verify"]["ok"] is True and " 0 finding(s)" in summary["verify"]["summary"]
