"""Two consumers in one group with a rebalance mid-run; the emitter's spool across a broker outage;
the consumer across a store outage."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from privaudit.bus import LocalBroker, ensure_topics, free_port
from privaudit.consumers import AuditConsumer, BulkStage, ConsumerConfig
from privaudit.consumers.service import run_consumers
from privaudit.errors import StoreUnavailable
from privaudit.policy import load_policy
from privaudit.producers import AuditEmitter
from privaudit.schemas import Codec
from privaudit.settings import TOPIC_EVENTS, default_dsn
from privaudit.store import Store
from tests.helpers import access

from .conftest import (
    PARTITIONS,
    consume_cmd,
    count,
    expected_verdicts,
    produce,
    read_topic,
    simulated,
    stored_verdicts,
)

pytestmark = pytest.mark.integration


def _wait(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        time.sleep(0.05)


def _in_a_process(function: str, *args: object, report: list | None = None) -> list:
    """Call this module's ``function(*args, report)`` in a process of its own (the embedded store
    admits one process per directory, and a test process may not open a second); ``report`` as the
    function left it."""
    code = (f"import json; from tests.integration.test_group_and_spool import {function}; r = {report or []!r};"
            f"{function}(*{args!r}, r); print(json.dumps(r))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _group_run(bootstrap: str, data_dir: str, spool: str, client: str, report: list) -> None:
    """In a process of its own (the embedded store's rule): consumer 1 starts alone on the first
    half of the stream, consumer 2 joins mid-run (a rebalance), the second half is produced once
    they share the partitions (so that consumer 2 has records whatever consumer 1 got through
    meanwhile), consumer 1 then leaves (another rebalance), consumer 2 finishes."""
    events = simulated(8000, seed=3)
    policy = load_policy()
    store = Store.connect(default_dsn(data_dir))
    store.migrate()
    bulk = BulkStage(store, policy, None, partitions=PARTITIONS)
    first = AuditConsumer(ConsumerConfig(bootstrap=bootstrap, max_records=100, client=client), store, policy, bulk=bulk)  # type: ignore[arg-type]
    second = AuditConsumer(ConsumerConfig(bootstrap=bootstrap, max_records=100, name="consumer-2", client=client),  # type: ignore[arg-type]
                           store, policy, bulk=bulk)
    second.covered = lambda: len(second.owned) >= PARTITIONS  # finish only once it owns them all
    stop_first, stop_second = threading.Event(), threading.Event()
    t1 = threading.Thread(target=first.run, args=(stop_first,))
    t2 = threading.Thread(target=second.run, args=(stop_second,), kwargs={"idle_exit_s": 4})
    try:
        t1.start()
        _wait(lambda: first.totals.records >= 1000)
        t2.start()
        _wait(lambda: second.owned and first.owned and len(first.owned) < PARTITIONS)  # shared now
        produce(bootstrap, events[4000:], Path(spool))
        _wait(lambda: second.totals.records > 0)
        stop_first.set()  # consumer 1 leaves: consumer 2 takes over its partitions
        t1.join(60)
        t2.join(180)
        assert not t2.is_alive()
    finally:
        stop_first.set()
        stop_second.set()  # never left running after a failed wait: the process must end
    bulk.run_once(final=True)
    report.extend([first.totals.records, second.totals.records])
    store.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_two_consumers_and_rebalances_give_the_verdicts_of_check(broker, tmp_path, client):
    events = simulated(8000, seed=3)
    produce(broker.bootstrap, events[:4000], tmp_path / "spool")  # the rest once both consumers run
    first, second = _in_a_process("_group_run", broker.bootstrap, str(tmp_path / "data"), str(tmp_path / "spool-2"),
                                  client)
    assert first >= 1000 and second > 0 and first + second >= 8000  # both really consumed
    data = tmp_path / "data"
    assert count(data, "SELECT count() FROM privaudit.events") == 8000
    assert count(data, "SELECT uniqExact(event_id) FROM privaudit.events") == 8000
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored)) and set(stored) == expected_verdicts(events)


def _apart_run(bootstrap: str, data_dir: str, report: list) -> None:
    """Two members that know nothing of each other, as if each ran in a process of its own
    against a ClickHouse server (here one process, since the embedded store allows no other):
    neither owns every partition, and the bulk stage runs beside the first only. No final scan is
    called here: the tail must be found while both run, from what each says in ``caught_up``."""
    policy = load_policy()
    store = Store.connect(default_dsn(data_dir))
    store.migrate()
    bulk = BulkStage(store, policy, None, partitions=PARTITIONS)
    members = [AuditConsumer(ConsumerConfig(bootstrap=bootstrap, max_records=200, name=f"apart-{i}"), store, policy,
                             bulk=bulk if i == 1 else None) for i in (1, 2)]
    stop = threading.Event()
    for member in members:
        member.covered = lambda m=member: len(m.owned) >= PARTITIONS  # what a process of its own knows
    threads = [threading.Thread(target=m.run, args=(stop,)) for m in members]
    for t in threads:
        t.start()
    try:
        _wait(lambda: all(m.owned and len(m.owned) < PARTITIONS for m in members), 60)  # shared
        _wait(lambda: sum(m.totals.records for m in members) >= int(report[0]), 120)
        _wait(lambda: bulk.found >= int(report[1]), 60)
        report.append([sorted(p for _, p in m.owned) for m in members])
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        store.close()


def test_the_bulk_stage_scans_the_tail_when_members_in_other_processes_say_they_are_idle(broker, tmp_path):
    """PA-012's last verdict is at the very end of the stream, so only a scan to the end finds it;
    with the members apart, that needs each one's word that its partitions are caught up."""
    events = simulated(1500, seed=23)
    end = events[-1].occurred_at
    burst = [access(actor_id="cs-apart", subject_id=f"p-apart-{i}", occurred_at=end + timedelta(seconds=i + 1))
             for i in range(101)]  # the 101st distinct subject in an hour: PA-012 on the last event
    events += burst
    produce(broker.bootstrap, events, tmp_path / "spool")
    expected = expected_verdicts(events)
    assert (burst[-1].event_id, "PA-012") in expected
    bulk_verdicts = sum(1 for _, rule in expected if rule == "PA-012")
    owned = _in_a_process("_apart_run", broker.bootstrap, str(tmp_path / "data"),
                          report=[len(events), bulk_verdicts])[2]
    assert all(owned) and sorted(owned[0] + owned[1]) == list(range(PARTITIONS))  # really apart
    data = tmp_path / "data"
    stored = stored_verdicts(data)
    assert (burst[-1].event_id, "PA-012") in stored
    assert len(stored) == len(set(stored)) and set(stored) == expected


_CAUGHT_UP_CASES = """
import json, sys
from datetime import datetime, timedelta, timezone
from privaudit.consumers import BulkStage
from privaudit.policy import load_policy
from privaudit.consumers.service import run_consumers
from privaudit.store import Store
store = Store.connect("chdb://" + sys.argv[1])
store.migrate()
now = datetime.now(timezone.utc)
def say(topic, partition, next_offset=None, high=None, idle_for=5.0, said_ago=0.0):
    n = next_offset if next_offset is not None else (10, 20)[partition]
    store.insert("caught_up", [[topic], [partition], [n], [n if high is None else high],
                               [now - timedelta(seconds=idle_for)], ["m"],
                               [datetime.now(timezone.utc) - timedelta(seconds=said_ago)]],
                 ["kafka_topic", "kafka_partition", "next_offset", "high_watermark", "idle_since", "consumer",
                  "updated_at"])
def case(name, second=True, **how):  # a topic of two partitions, loaded to offsets 10 and 20
    topic = name.replace(" ", "-")
    store.insert("progress", [[topic, topic], [0, 1], [10, 20], [now, now]],
                 ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at"])
    say(topic, 0)
    if second:
        say(topic, 1, **how)
    return BulkStage(store, load_policy(), None, partitions=2, topic=topic).all_caught_up(2.0, 6.0)
print(json.dumps({
    "both": case("both"),
    "one partition only": case("one partition only", second=False),
    "a load since": case("a load since", next_offset=19),
    "behind its end": case("behind its end", high=25),
    "not idle long enough": case("not idle long enough", idle_for=0.5),
    "said too long ago": case("said too long ago", said_ago=10),
}))
"""


def test_the_bulk_stage_counts_only_fresh_words_of_idle_partitions_loaded_to_their_end(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _CAUGHT_UP_CASES, str(tmp_path / "ch")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "both": True, "one partition only": False, "a load since": False, "behind its end": False,
        "not idle long enough": False, "said too long ago": False,
    }


_SCANS_IN_STEPS = """
import json, sys
from datetime import timedelta
from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers import BulkStage
from privaudit.consumers.batch import process
from privaudit.consumers.sink import Sink
from privaudit.policy import load_policy
from privaudit.consumers.service import run_consumers
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.store import Store
policy, codec = load_policy(), Codec()
events = list(simulate(SimulationConfig(events=int(sys.argv[2]), seed=5, violation_rate=0.2), policy))
store = Store.connect("chdb://" + sys.argv[1])
store.migrate()
records = [Record("steps", 0, i, None, codec.encode(e), 0) for i, e in enumerate(events)]
sink = Sink(store)
sink.load([process(records, codec, Checker(policy, bulk_access=False))])
stage = BulkStage(store, policy, None, partitions=1, topic="steps")
first, last = events[0].occurred_at, events[-1].occurred_at
steps = 9
for i in range(1, steps + 1):  # the watermark moves on in steps of about a quarter of the window
    mark = first + (last - first) * i / steps
    store.insert("progress", [["steps"], [0], [i], [mark]],
                 ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at"])
    stage.run_once()
_, rows = store.query("SELECT toString(event_id) FROM privaudit.violations WHERE rule = 'PA-012'")
checker = Checker(policy)
print(json.dumps({
    "stored": sorted(r[0] for r in rows),
    "expected": sorted(e.event_id for e in events if any(v.rule == "PA-012" for v in checker.check(e))),
    "accesses": sum(e.type == "access" for e in events),
    "read": stage.read,
    "span_minutes": (last - first) / timedelta(minutes=1),
}))
"""


def test_the_bulk_stage_reads_each_access_once_over_scans_and_finds_what_check_finds(tmp_path):
    """The stage keeps its actors' windows between scans: every access is read once, whatever the
    number of scans, and verdicts that straddle a scan's edge are still found."""
    proc = subprocess.run([sys.executable, "-c", _SCANS_IN_STEPS, str(tmp_path / "ch"), "4000"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["span_minutes"] > 2 * 60 and out["expected"]  # scans a quarter-window apart, with PA-012 in them
    assert out["stored"] == out["expected"]
    assert out["read"] == out["accesses"]


_GROUP_AND_REPAIR = """
import json, sys
from datetime import datetime, timezone
from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import process
from privaudit.consumers.sink import Sink, _tables
from privaudit.policy import load_policy
from privaudit.consumers.service import run_consumers
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.store import Store
policy, codec = load_policy(), Codec()
# ten minutes either side of a month's end: a range whose rows go to two monthly parts
start = datetime(2026, 10, 31, 23, 50, tzinfo=timezone.utc)
events = list(simulate(SimulationConfig(events=1200, seed=4, violation_rate=0.3, start=start), policy))
store = Store.connect("chdb://" + sys.argv[1])
store.migrate()
sink = Sink(store)
def batch(partition, chunk, offset=0):
    records = [Record("t", partition, offset + i, None, codec.encode(e), 0) for i, e in enumerate(chunk)]
    return process(records, codec, Checker(policy, bulk_access=False))
TABLES = ("events", "violations", "subject_state", "dead_letters")
def counts():
    out = {}
    for table in TABLES:
        key = "kafka_partition, kafka_offset" + (", rule" if table == "violations" else "")
        _, rows = store.query(f"SELECT count(), uniqExact({key}) FROM privaudit.{table} WHERE kafka_topic = 't'")
        out[table] = list(rows[0])
    return out
def expected(*batches):
    return {table: sum(len(next(iter(cols.values()))) for name, cols in _tables(list(batches)) if name == table)
            for table in TABLES}
# one group of two partitions' ranges, loaded once; repaired (as after a crash) it adds nothing
a, b = batch(0, events[:600]), batch(1, events[600:], offset=1000)
sink.load([a, b])
after_group = counts()
repaired_whole = sink.repair(b)
# a range of which only the rows of the first month landed, in events and violations only
c = batch(2, events)
november = [i for i, at in enumerate(c.events["occurred_at"]) if at.month == 11]
assert 0 < len(november) < len(c.events["occurred_at"])
for table, cols in list(_tables([c]))[:2]:
    keep = [i for i, at in enumerate(cols["occurred_at"]) if at.month == 10]
    store.insert(table, [[col[i] for i in keep] for col in cols.values()], list(cols))
# ... and the usage view did not get them (a kill between the two): c holds every event id
store.command("TRUNCATE TABLE privaudit.usage_daily")
first_repair = sink.repair(c)
second_repair = sink.repair(c)
print(json.dumps({"after_group": after_group, "expected_group": expected(a, b), "repaired_whole": repaired_whole,
                  "first_repair": first_repair, "second_repair": second_repair, "after_repairs": counts(),
                  "expected_all": expected(a, b, c), "november": len(november),
                  "usage_events": store.query("SELECT uniqExactMerge(events) FROM privaudit.usage_daily")[1][0][0]}))
"""


def test_a_group_is_loaded_once_and_a_replayed_range_gets_exactly_its_missing_rows(tmp_path):
    """One insert per table for several partitions' ranges; a replayed range, whatever of it
    landed (nothing, all, or one month of two in two of its tables, without the usage view), ends
    with each row once and in the usage statistics."""
    proc = subprocess.run([sys.executable, "-c", _GROUP_AND_REPAIR, str(tmp_path / "ch")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected_group, expected_all = out["expected_group"], out["expected_all"]
    assert expected_group["events"] == 1200 and expected_group["violations"] and expected_group["subject_state"]
    assert out["after_group"] == {t: [n, n] for t, n in expected_group.items()}
    assert out["repaired_whole"] == 0
    assert out["first_repair"] > out["november"] and out["second_repair"] == 0
    assert out["after_repairs"] == {t: [n, n] for t, n in expected_all.items()}
    assert out["usage_events"] == 1200  # the statistics have the rows that landed before the repair too


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
        got = _read_in_order(broker.bootstrap, 300)
    assert got == [e.event_id for e in events]


class _Outage:
    """The real store, unavailable on cue, as a server's clients see it: the first three inserts
    into ``events`` fail twice, once before the insert and once *after* it landed (the reply lost
    on the way back); the first plan in the journal fails after it landed; the first read of
    subject state fails."""

    def __init__(self, store: Store) -> None:
        self.store, self.failed = store, 0
        self._events_inserts, self._plans, self._state_reads = 0, 0, 0
        self._lock = threading.Lock()  # with --processes, the host serves each process on a thread

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def _fail(self) -> None:
        self.failed += 1
        raise StoreUnavailable("Code: 210. Connection reset by peer (injected)")

    def insert_data(self, table, data, *, token=None):
        with self._lock:
            step = 0
            if table == "events" and self._events_inserts < 9:
                self._events_inserts += 1
                step = self._events_inserts % 3 or 3
            elif table == "batches" and self._plans == 0:
                self._plans, step = 1, 2
            if step == 1:
                self._fail()  # never reached the store
            self.store.insert_data(table, data, token=token)
            if step == 2:
                self._fail()  # landed; the caller cannot know

    def query(self, sql, parameters=None, *, readonly=False):
        with self._lock:
            if "subject_state" in sql and self._state_reads == 0:
                self._state_reads += 1
                self._fail()
        return self.store.query(sql, parameters, readonly=readonly)


def _outage_run(bootstrap: str, data_dir: str, processes: int, report: list) -> None:
    store = Store.connect(default_dsn(data_dir))
    store.migrate()
    outage = _Outage(store)
    result = run_consumers(ConsumerConfig(bootstrap=bootstrap, max_records=500, max_subjects=200), outage,  # type: ignore[arg-type]
                           load_policy(), processes=processes, partitions=PARTITIONS, idle_exit_s=3, progress=False)
    report.extend([outage.failed, result.as_dict()["loaded_events"]])
    store.close()


def test_once_the_spool_is_replayed_calls_go_direct_again_while_the_service_keeps_sending(tmp_path):
    """Before, a service that kept sending after an outage kept landing behind the spool's tail:
    every call paid an fsync and went through the replay, for as long as the traffic lasted."""
    port = free_port()
    events = simulated(6000, seed=10)
    emitter = AuditEmitter(f"127.0.0.1:{port}", service="app", spool_dir=tmp_path / "spool", retry_interval_s=0.2)
    for event in events[:2000]:  # the broker is away
        emitter.send_event(event)
    with LocalBroker(port=port) as broker:
        ensure_topics(broker.bootstrap, 1)
        began = time.monotonic()
        for i, event in enumerate(events[2000:]):  # a steady 2,000 calls a second, no pause
            time.sleep(max(0.0, began + i / 2000 - time.monotonic()))
            emitter.send_event(event)
        assert emitter.close(timeout_s=60)
        stats = emitter.stats()
        delivered = _read_in_order(broker.bootstrap, len(events))
    assert stats["spooled"] >= 2000 and stats["sent"] > 0, stats  # before: sent 0, every call spooled
    assert delivered == [e.event_id for e in events]  # every event, in the order sent


def _read_in_order(bootstrap: str, n: int) -> list[str]:
    """Event ids of partition 0 of the events topic, in offset order (a repeat would show)."""
    codec = Codec()
    return [codec.decode(r.value).event_id for r in read_topic(bootstrap, TOPIC_EVENTS, n)]


def test_a_service_closing_while_the_broker_is_away_spools_what_was_not_acknowledged(tmp_path):
    """Before, kafka-python's close raised on its flush timeout and the events it still held were
    lost with the process."""
    port = free_port()
    events = simulated(1500, seed=13)
    with LocalBroker(port=port) as broker:
        ensure_topics(broker.bootstrap, 1)
        emitter = AuditEmitter(broker.bootstrap, service="app", spool_dir=tmp_path / "spool", retry_interval_s=0.2)
        for event in events[:500]:
            emitter.send_event(event)
        assert emitter.flush(timeout_s=30)
        first = _read_in_order(broker.bootstrap, 500)
    for event in events[500:]:  # the broker went away after the producer connected
        emitter.send_event(event)
    assert emitter.stats()["inflight"] > 0
    started = time.monotonic()
    assert not emitter.close(timeout_s=3)  # says something is left, raises nothing
    assert time.monotonic() - started < 10 and emitter.stats()["inflight"] == 0

    with LocalBroker(port=port) as broker:  # back (empty: the local broker keeps its log in memory)
        ensure_topics(broker.bootstrap, 1)
        restarted = AuditEmitter(broker.bootstrap, service="app", spool_dir=tmp_path / "spool", retry_interval_s=0.2)
        assert restarted.close(timeout_s=60)
        second = _read_in_order(broker.bootstrap, 1000)
    assert first == [e.event_id for e in events[:500]]
    assert second == [e.event_id for e in events[500:]]  # every one, in the order of the calls


def _each_stored_once(data: Path, events: list) -> None:
    """Every event, its usage count and its verdicts (those of ``check``) in the store, once."""
    n = len(events)
    assert count(data, "SELECT count() FROM privaudit.events") == n
    assert count(data, "SELECT uniqExact(event_id) FROM privaudit.events") == n
    assert count(data, "SELECT uniqExactMerge(events) FROM privaudit.usage_daily") == n
    stored = stored_verdicts(data)
    assert len(stored) == len(set(stored)) and set(stored) == expected_verdicts(events)


@pytest.mark.parametrize("processes", [0, 2], ids=["threads", "processes"])
def test_a_store_unavailable_mid_run_is_waited_for_and_loses_or_repeats_nothing(broker, tmp_path, processes):
    """With processes, the host's store fails and each consumer process retries across the socket."""
    events = simulated(3000, seed=8)
    produce(broker.bootstrap, events, tmp_path / "spool")
    failed, loaded = _in_a_process("_outage_run", broker.bootstrap, str(tmp_path / "data"), processes)
    assert failed == 8 and loaded == 3000  # every injected failure retried; the run went on
    _each_stored_once(tmp_path / "data", events)


class _LongOutage:
    """The real store, unavailable for ``seconds`` from the second insert into ``events`` on."""

    def __init__(self, store: Store, seconds: float) -> None:
        self.store, self.seconds, self.inserts, self.until = store, seconds, 0, 0.0

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def insert_data(self, table, data, *, token=None):
        if table == "events":
            self.inserts += 1
            if self.inserts == 2:
                self.until = time.monotonic() + self.seconds
        if time.monotonic() < self.until:
            raise StoreUnavailable("Code: 210. Connection refused (injected)")
        self.store.insert_data(table, data, token=token)


def _long_outage_run(bootstrap: str, data_dir: str, report: list) -> None:
    """The store away for longer than the client's poll interval (lowered to 8 s here, 5 minutes
    by default), so the group drops the waiting consumer and refuses its commit."""
    import kafka

    import privaudit.bus.kafka_python as client

    class ShortPollInterval(kafka.KafkaConsumer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "max_poll_interval_ms": 8000})

    client.KafkaConsumer = ShortPollInterval  # type: ignore[attr-defined]  # replaced for this process only
    store = Store.connect(default_dsn(data_dir))
    store.migrate()
    result = run_consumers(ConsumerConfig(bootstrap=bootstrap, max_records=500), _LongOutage(store, 20), load_policy(),  # type: ignore[arg-type]
                           partitions=PARTITIONS, idle_exit_s=3, progress=False)
    report.append(result.as_dict()["loaded_events"])
    store.close()


def test_a_consumer_dropped_by_its_group_while_waiting_for_the_store_goes_on_exactly_once(broker, tmp_path):
    events = simulated(3000, seed=8)
    produce(broker.bootstrap, events, tmp_path / "spool")
    [loaded] = _in_a_process("_long_outage_run", broker.bootstrap, str(tmp_path / "data"))
    assert loaded == 3000  # the refused batch counted once, when its range was replayed
    _each_stored_once(tmp_path / "data", events)


def test_a_consumer_started_before_the_broker_waits_for_it_and_loads_everything(tmp_path):
    """Services started together (or a broker restarting): ``consume`` keeps trying the broker for
    ``--startup-wait`` instead of exiting, then loads what was produced meanwhile."""
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        consume_cmd(f"127.0.0.1:{port}", data_dir, "--startup-wait", "90", "--until-idle", "5", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.communicate()[1][-3000:]  # still waiting, not failed
        events = simulated(500, seed=12)
        with LocalBroker(port=port) as broker:
            ensure_topics(broker.bootstrap, PARTITIONS)
            produce(broker.bootstrap, events, tmp_path / "spool")
            out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["loaded_events"] == 500
    _each_stored_once(data_dir, events)


def test_a_broker_that_never_comes_fails_after_the_startup_wait_with_one_line(tmp_path):
    port = free_port()
    started = time.monotonic()
    proc = subprocess.run(consume_cmd(f"127.0.0.1:{port}", tmp_path / "data", "--startup-wait", "3"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert time.monotonic() - started < 60
    [last] = proc.stderr.strip().splitlines()[-1:]
    assert last.startswith(f"privaudit: error: cannot reach the broker at 127.0.0.1:{port}") and "giving up" in last
