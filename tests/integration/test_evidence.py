"""Evidence through the real broker and the real engine (issue 19): a re-sent event with other
content is kept aside and flagged (PA-016) with the original unchanged; a repeat is stored once;
``privaudit verify`` passes on what was loaded and names the row after each kind of tampering."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from privaudit.canonical import content_hash
from privaudit.schemas import Codec
from privaudit.schemas.models import stored_content
from privaudit.settings import TOPIC_EVENTS, TOPIC_LEDGER, TOPIC_VIOLATIONS
from tests.helpers import access, consent, membership

from .conftest import consume, count, read_topic, simulated, sql

pytestmark = pytest.mark.integration

ORIGINAL_ID = "0b6f1c1e-6d0a-4c35-9a53-2b8f1b7c2a10"


def _send(bootstrap: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in values:
        producer.send(TOPIC_EVENTS, value=value, key=key)
    producer.flush()
    producer.close()


def _all(bootstrap: str, topic: str, quiet_s: float = 3.0) -> list:
    """Every record of every partition of ``topic``, read until none came for ``quiet_s``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    deadline = time.monotonic() + 30
    while not (partitions := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer.assign([TopicPartition(topic, p) for p in partitions or ()])
    got: list = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        for records in consumer.poll(300).values():
            got += records
            last = time.monotonic()
    consumer.close()
    return got


def verify(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "privaudit.cli", "verify", "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True, timeout=180)


def write(data_dir: Path, statement: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "sql", "--write", "--data-dir", str(data_dir),
                           statement], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def loaded(broker, tmp_path):
    """A store loaded from simulated events plus an original, its repeat and a rewrite of it."""
    codec = Codec()
    when = datetime.now(UTC) - timedelta(hours=3)
    original = access(event_id=ORIGINAL_ID, subject_id="p-evidence", occurred_at=when)
    altered = access(event_id=ORIGINAL_ID.upper(), subject_id="p-evidence", occurred_at=when, purpose="MARKETING")
    events = simulated(300, seed=5)
    values = [(e.subject_id.encode(), codec.encode(e)) for e in events]
    same_key = b"p-evidence"
    values += [(same_key, codec.encode(e)) for e in (original, original, altered)]
    _send(broker.bootstrap, values)
    data = tmp_path / "data"
    summary = consume(broker.bootstrap, data)
    assert summary["records"] == len(values)
    return broker, data, original, altered


def test_a_rewrite_is_kept_aside_and_flagged_and_the_original_stays(loaded):
    broker, data, original, altered = loaded
    stored = sql(data, f"SELECT purpose, hex(content_hash) AS h FROM privaudit.events FINAL "
                       f"WHERE event_id = '{ORIGINAL_ID}'")
    assert stored == [{"purpose": "CUSTOMER_SUPPORT", "h": content_hash(stored_content(original)).hex().upper()}]
    aside = sql(data, "SELECT purpose, first_offset, kafka_offset FROM privaudit.rewrites "
                      f"WHERE event_id = '{ORIGINAL_ID}'")
    assert len(aside) == 1 and aside[0]["purpose"] == "MARKETING"
    assert aside[0]["first_offset"] < aside[0]["kafka_offset"]
    repeats = sql(data, f"SELECT first_offset FROM privaudit.repeats WHERE event_id = '{ORIGINAL_ID}'")
    assert len(repeats) == 1 and repeats[0]["first_offset"] < aside[0]["kafka_offset"]
    [flag] = sql(data, "SELECT rule, severity, kafka_offset FROM privaudit.violations "
                       f"WHERE event_id = '{ORIGINAL_ID}' AND rule = 'PA-016'")
    assert flag == {"rule": "PA-016", "severity": "critical", "kafka_offset": aside[0]["kafka_offset"]}
    # the original's own verdicts were not touched, and the rewrite got no others
    assert count(data, f"SELECT count() FROM privaudit.violations WHERE event_id = '{ORIGINAL_ID}' "
                       f"AND kafka_offset = {aside[0]['kafka_offset']}") == 1
    # the heads went to privaudit.ledger, signed
    heads = [json.loads(r.value) for r in read_topic(broker.bootstrap, TOPIC_LEDGER, 1)]
    assert heads and all(len(h["signature"]) == 128 and len(h["head"]) == 64 for h in heads)


def test_verify_passes_on_what_was_loaded_and_records_the_run(loaded):
    _, data, _, _ = loaded
    proc = verify(data)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    events = count(data, "SELECT count() FROM privaudit.events")
    assert last.startswith(f"verified {events:,} events in ") and " 0 finding(s)" in last
    assert count(data, "SELECT count() FROM privaudit.verifications WHERE ok") == 1


@pytest.mark.parametrize(("tamper", "expected"), [
    (f"ALTER TABLE privaudit.events UPDATE purpose = 'RESEARCH' WHERE event_id = '{ORIGINAL_ID}' "
     "SETTINGS mutations_sync = 1", ["changed: events", "field: purpose"]),
    (f"ALTER TABLE privaudit.events DELETE WHERE event_id = '{ORIGINAL_ID}' SETTINGS mutations_sync = 1",
     ["deleted: events/dead_letters/repeats/rewrites privaudit.events[", "no row, where the signed range has one"]),
    ("ALTER TABLE privaudit.violations DELETE WHERE rule = 'PA-016' SETTINGS mutations_sync = 1",
     ["violations privaudit.events[", "verdicts"]),
    ("INSERT INTO privaudit.events (event_id, type, occurred_at, service, subject_id, kafka_topic, kafka_partition, "
     "kafka_offset) VALUES ('6f0a7e1c-3f0b-4f7e-8d8a-1c2b3d4e5f60', 'access', now64(3), 'api', 'p-fake', "
     "'privaudit.events', 0, 99999)", ["inserted: events", "no Kafka record"]),
    ("ALTER TABLE privaudit.ledger DELETE WHERE kafka_partition = 0 SETTINGS mutations_sync = 1",
     ["deleted: ledger privaudit.events[0] life 0 offsets 0-", "planned in the journal and loaded"]),
])
def test_verify_names_each_kind_of_tampering(loaded, tamper, expected):
    _, data, _, _ = loaded
    write(data, tamper)
    proc = verify(data)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    for text in expected:
        assert text in proc.stdout, proc.stdout
    assert "0 finding(s)" not in proc.stdout


def test_findings_go_to_the_violations_topic_for_the_alert_dispatcher(loaded):
    broker, data, _, _ = loaded
    write(data, f"ALTER TABLE privaudit.events UPDATE actor_id = 'staff-x' WHERE event_id = '{ORIGINAL_ID}' "
                "SETTINGS mutations_sync = 1")
    proc = verify(data, "--publish-to", broker.bootstrap)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    findings = proc.stdout.strip().splitlines()[:-1]  # a line a finding, then the summary
    assert any(line.startswith("changed: events") and "field: actor_id" in line for line in findings)
    records = _all(broker.bootstrap, TOPIC_VIOLATIONS)
    flagged = [json.loads(r.value) for r in records if json.loads(r.value)["rule"] == "PA-017"]
    assert sorted(v["message"] for v in flagged) == sorted(findings)
    assert all(v["severity"] == "critical" and v["type"] == "verification" for v in flagged)


def test_a_signature_from_another_key_is_a_finding(loaded, tmp_path):
    _, data, _, _ = loaded
    other = subprocess.run([sys.executable, "-c",
                            "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey;"
                            "from cryptography.hazmat.primitives import serialization as s;"
                            "print(Ed25519PrivateKey.generate().public_key().public_bytes(s.Encoding.Raw,"
                            "s.PublicFormat.Raw).hex())"], capture_output=True, text=True, check=True).stdout.strip()
    proc = verify(data, "--public-key", other)
    assert proc.returncode == 1 and "signature: ledger" in proc.stdout and "not the trusted key" in proc.stdout


def test_consent_and_membership_repeats_do_not_change_state(broker, tmp_path):
    """A consent repeated after a withdrawal is a repeat of the grant, not a new grant: the state is
    what the first copies made it."""
    codec = Codec()
    t0 = datetime.now(UTC) - timedelta(hours=5)
    grant = consent("PURPOSE", "CUSTOMER_SUPPORT", subject_id="p-rc", occurred_at=t0,
                    event_id="5a0c6a44-3a77-4f36-9d55-4c8f3c1a9b01")
    join = membership("SIGNUP", subject_id="p-rc", occurred_at=t0 - timedelta(minutes=1))
    _send(broker.bootstrap, [(b"p-rc", codec.encode(join)), (b"p-rc", codec.encode(grant)),
                             (b"p-rc", codec.encode(grant))])
    summary = consume(broker.bootstrap, tmp_path / "data")
    assert summary["loaded_events"] == 2
    assert count(tmp_path / "data", "SELECT count() FROM privaudit.subject_state WHERE subject_id = 'p-rc'") == 2
    assert count(tmp_path / "data", "SELECT count() FROM privaudit.repeats") == 1


class _Dropping:
    """A real producer that never sends the record numbered ``lost`` (as if it died on the way)."""

    def __init__(self, bootstrap: str, lost: int) -> None:
        self.inner = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.lost = lost

    def send(self, topic, key=None, value=None, headers=None):
        if dict(headers or [])["privaudit.seq"] == str(self.lost).encode():
            return _Sent()  # not sent, and said to be acknowledged
        return self.inner.send(topic, key=key, value=value, headers=headers)

    def flush(self, timeout=None):
        self.inner.flush(timeout=timeout)

    def close(self, timeout=None):
        self.inner.close(timeout=timeout)


class _Sent:
    """The future of a send that pretends to have been acknowledged."""

    def add_callback(self, fn, *args):
        fn(*args, None)
        return self

    def add_errback(self, fn, *args):
        return self

    def get(self, timeout=None):
        return None


def test_an_emitter_whose_seq_17_never_reached_kafka_is_a_gap(broker, tmp_path):
    from privaudit.producers import AuditEmitter

    emitter = AuditEmitter(broker.bootstrap, service="ehr-api", spool_dir=tmp_path / "spool",
                           producer_factory=lambda: _Dropping(broker.bootstrap, 17))
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(40):  # one a minute: the records after 17 run 23 minutes past it
        emitter.access(subject_id=f"p-gap{i % 5}", actor_id="staff-1", actor_type="STAFF", action="VIEW",
                       purpose="CUSTOMER_SUPPORT", data_items=["DEVICE_ID"], source_ip="10.0.0.1",
                       occurred_at=start + timedelta(minutes=i))
    assert emitter.close(timeout_s=30)
    data = tmp_path / "data"
    assert consume(broker.bootstrap, data)["loaded_events"] == 39
    proc = verify(data)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    [gap] = [line for line in proc.stdout.splitlines() if line.startswith("gap:")]
    assert "emitter_seqs emitter " in gap and "(ehr-api)" in gap and "seq 17 never reached Kafka" in gap
    # within the grace period it is not (yet) a finding
    assert verify(data, "--grace", "2h").returncode == 0
    # published, the gap is a PA-018 of the emitter's service, which the alert dispatcher pages on
    assert verify(data, "--publish-to", broker.bootstrap).returncode == 1
    [flag] = [json.loads(r.value) for r in _all(broker.bootstrap, TOPIC_VIOLATIONS)
              if json.loads(r.value)["rule"] == "PA-018"]
    assert flag["service"] == "ehr-api" and "seq 17 never reached Kafka" in flag["message"]


def test_rows_the_ttl_removed_leave_a_signed_checkpoint_the_rest_verifies_from(broker, tmp_path):
    """Events older than the retention period, loaded in a range of their own, then removed by the
    TTL: that range is checked by its signature and place only, the next one from the head it
    signed; moving a range's dates into the past (to hide a change there) breaks its signature."""
    codec, data = Codec(), tmp_path / "data"
    old = datetime.now(UTC) - timedelta(days=745)
    _send(broker.bootstrap, [(b"p-old", codec.encode(membership("SIGNUP", subject_id="p-old",
                                                                   occurred_at=old + timedelta(minutes=i))))
                             for i in range(5)])
    consume(broker.bootstrap, data)
    recent = datetime.now(UTC) - timedelta(hours=1)
    _send(broker.bootstrap, [(b"p-old", codec.encode(membership("SIGNUP", subject_id="p-old",
                                                                   occurred_at=recent + timedelta(seconds=i))))
                             for i in range(3)])
    consume(broker.bootstrap, data)
    write(data, "OPTIMIZE TABLE privaudit.events FINAL")  # the TTL's merge
    assert count(data, "SELECT count() FROM privaudit.events") == 3
    proc = verify(data, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == 3 and report["beyond_retention_ranges"] == 1 and report["findings"] == []
    write(data, "ALTER TABLE privaudit.ledger UPDATE min_occurred_at = min_occurred_at - INTERVAL 800 DAY "
                "WHERE min_occurred_at > now() - INTERVAL 1 DAY SETTINGS mutations_sync = 1")
    tampered = verify(data)
    assert tampered.returncode == 1 and "do not match its signature" in tampered.stdout
