"""Two consumers in one group with a rebalance mid-run; the emitter's spool across an outage."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from privaudit.bus import LocalBroker, ensure_topics, free_port
from privaudit.consumers import AuditConsumer, BulkStage, ConsumerConfig
from privaudit.policy import load_policy
from privaudit.producers import AuditEmitter
from privaudit.schemas import Codec
from privaudit.settings import TOPIC_EVENTS, default_dsn
from privaudit.store import Store

from .conftest import PARTITIONS, count, expected_verdicts, produce, simulated, stored_verdicts

pytestmark = pytest.mark.integration


def _wait(predicate, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        time.sleep(0.05)


def _group_run(bootstrap: str, data_dir: str, report: list) -> None:
    """In a process of its own (the embedded store's rule): consumer 1 starts alone, consumer 2
    joins mid-run (a rebalance), consumer 1 then leaves (another), consumer 2 finishes."""
    policy = load_policy()
    store = Store.connect(default_dsn(data_dir))
    store.migrate()
    bulk = BulkStage(store, policy, None, partitions=PARTITIONS)
    first = AuditConsumer(ConsumerConfig(bootstrap=bootstrap, max_records=100), store, policy, bulk=bulk)
    second = AuditConsumer(ConsumerConfig(bootstrap=bootstrap, max_records=100, name="consumer-2"), store, policy, bulk=bulk)
    second.covered = lambda: len(second.owned) >= PARTITIONS  # finish only once it owns them all
    stop_first, stop_second = threading.Event(), threading.Event()
    t1 = threading.Thread(target=first.run, args=(stop_first,))
    t1.start()
    _wait(lambda: first.totals.records >= 1000)
    t2 = threading.Thread(target=second.run, args=(stop_second,), kwargs={"idle_exit_s": 4})
    t2.start()
    _wait(lambda: second.totals.records > 0 and first.owned and len(first.owned) < PARTITIONS)  # shared now
    stop_first.set()  # consumer 1 leaves: consumer 2 takes over its partitions
    t1.join(60)
    t2.join(180)
    assert not t2.is_alive()
    bulk.run_once(final=True)
    report.extend([first.totals.records, second.totals.records])
    store.close()


def test_two_consumers_and_rebalances_give_the_verdicts_of_check(broker, tmp_path):
    events = simulated(8000, seed=3)
    produce(broker.bootstrap, events, tmp_path / "spool")
    code = (
        "import sys, json; from tests.integration.test_group_and_spool import _group_run; r = [];"
        f"_group_run({broker.bootstrap!r}, {str(tmp_path / 'data')!r}, r); print(json.dumps(r))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = map(int, proc.stdout.strip().splitlines()[-1].strip("[]").split(","))
    assert first >= 1000 and second > 0 and first + second >= 8000  # both really consumed
    data = tmp_path / "data"
    assert count(data, "SELECT count() FROM privaudit.events") == 8000
    assert count(data, "SELECT uniqExact(event_id) FROM privaudit.events") == 8000
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored)) and set(stored) == expected_verdicts(events)


def test_the_spool_replays_in_order_after_an_outage_and_a_service_restart(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    events = simulated(300, seed=9)
    emitter = AuditEmitter(f"127.0.0.1:{port}", service="app", spool_dir=spool, retry_interval_s=0.2)
    started = time.monotonic()
    for event in events[:200]:
        emitter.send_event(event)
    assert time.monotonic() - started < 2.0, "calls blocked while the broker was down"
    assert emitter.stats()["spooled"] == 200
    assert not emitter.close(timeout_s=1)  # the broker is still down: events stay on disk

    with LocalBroker(port=port) as broker:
        ensure_topics(broker.bootstrap, 1)
        restarted = AuditEmitter(broker.bootstrap, service="app", spool_dir=spool, retry_interval_s=0.2)
        for event in events[200:]:
            restarted.send_event(event)
        assert restarted.close(timeout_s=60)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
        consumer.assign([TopicPartition(TOPIC_EVENTS, 0)])
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < 300 and time.monotonic() < deadline:
            for records in consumer.poll(300).values():
                got += records
        consumer.close()
    codec = Codec()
    assert [codec.decode(r.value).event_id for r in got] == [e.event_id for e in events]
