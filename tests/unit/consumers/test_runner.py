"""When an idle member lets the bulk stage scan to the end of the stream (``_when_idle``), how it
publishes while the broker refuses, and what it commits of a batch across a rebalance.

The broker client, the store and the bulk stage are stand-ins: what is tested is the logic around them.
The interleaving it guards against (another member of the same process still loading records
older than this member's last) is timing-dependent in the group tests, where it was seen once."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future

import pytest

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers import AuditConsumer, ConsumerConfig
from privaudit.consumers import runner as runner_module
from privaudit.consumers.batch import DeadLetter, PartitionBatch
from privaudit.consumers.partition import Partition
from privaudit.consumers.runner import InFlight
from privaudit.errors import BrokerError, CommitRefused
from privaudit.policy import load_policy

TOPIC = "privaudit.events"
PARTITIONS = 6


class _Client:
    """The consumer and the producer: every partition at its high watermark."""

    def __init__(self, *args, **kwargs) -> None:
        self.high: dict[tuple[str, int], int] = {}

    def highwater(self, tp):
        return self.high.get(tp)

    def topic_id(self, topic):
        return None

    def known_topic_id(self, topic):
        return None

    def close(self, *args) -> None:
        pass


class _Store:
    database, cluster = "privaudit", None

    def __init__(self) -> None:
        self.inserted: list[str] = []

    def insert(self, table, columns_data, column_names, *, token=None):
        self.inserted.append(table)


class _Bulk:
    partitions = PARTITIONS

    def __init__(self, others_said: bool) -> None:
        self.others_said = others_said  # every partition's owner said it is caught up
        self.scans: list[bool] = []

    def all_caught_up(self, idle_s: float, fresh_s: float) -> bool:
        return self.others_said

    def run_once(self, final: bool = False) -> int:
        self.scans.append(final)
        return 0


@pytest.fixture()
def member(monkeypatch):
    monkeypatch.setattr(runner_module, "make_consumer", _Client)
    monkeypatch.setattr(runner_module, "make_producer", _Client)
    made = []

    def make(owned: range, *, others_said: bool, behind: int = 0, process_owns_all: bool = True) -> AuditConsumer:
        store, bulk = _Store(), _Bulk(others_said)
        m = AuditConsumer(ConsumerConfig(bootstrap="unused", gc_threshold=None), store, load_policy(), bulk=bulk)  # type: ignore[arg-type]
        m.partitions = {(TOPIC, p): Partition((TOPIC, p), Checker(m.policy), 100, deque()) for p in owned}
        m.consumer.high = {tp: 100 + behind for tp in m.partitions}
        m.totals.last_record_at = time.monotonic() - 60  # idle for a minute
        m.covered = lambda: process_owns_all
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def test_a_member_caught_up_on_part_of_the_partitions_waits_for_the_others_word(member):
    # Its process owns every partition, but another member of it may still be loading older records.
    m = member(range(3), others_said=False, process_owns_all=True)
    m._when_idle()
    assert m.bulk.scans == []
    assert "caught_up" in m.sink.store.inserted  # it says so itself, for the others' scans


def test_a_member_caught_up_on_every_partition_scans_to_the_end(member):
    m = member(range(PARTITIONS), others_said=False)
    m._when_idle()
    assert m.bulk.scans == [True]


def test_a_member_scans_to_the_end_when_every_owner_said_it_is_caught_up(member):
    m = member(range(3), others_said=True)
    m._when_idle()
    assert m.bulk.scans == [True]


def test_a_member_behind_its_high_watermarks_neither_says_nor_scans_on_its_own(member):
    m = member(range(PARTITIONS), others_said=False, behind=5)
    m._when_idle()
    assert m.bulk.scans == [] and m.sink.store.inserted == []


# -- publishing while the broker refuses ----------------------------------------------------------


class _Producer(_Client):
    """A producer whose first ``failures`` flushes fail as a broker that is away."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes]] = []
        self.failures = 0

    def send(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value))

    def flush(self, timeout_s):
        if self.failures:
            self.failures -= 1
            raise BrokerError("flush: KafkaTimeoutError: Timeout after waiting for 30 secs (injected)")


def _batch_to_publish() -> PartitionBatch:
    b = PartitionBatch(TOPIC, 0, 10, 11)
    b.dead.append(DeadLetter(Record(TOPIC, 0, 10, b"k", b"garbage", 0), "decode", "unknown framing"))
    b.published.append((b"PA-003|app|", b'{"rule": "PA-003"}'))
    return b


def test_dead_letters_and_violations_are_sent_again_until_the_broker_takes_them(monkeypatch):
    monkeypatch.setattr(runner_module, "make_consumer", _Client)
    monkeypatch.setattr(runner_module, "make_producer", _Producer)
    m = AuditConsumer(ConsumerConfig(bootstrap="unused", gc_threshold=None), _Store(), load_policy())  # type: ignore[arg-type]
    try:
        m.producer.failures = 2  # type: ignore[attr-defined]
        m.sink.publish([_batch_to_publish()])
        sent = [("privaudit.dlq", b"garbage"), ("privaudit.violations", b'{"rule": "PA-003"}')]
        assert m.producer.sent == sent * 3  # type: ignore[attr-defined]  # at least once: all again each time
        assert m.metrics.registry.get_sample_value("privaudit_publish_retries_total") == 2
    finally:
        m.close()


def test_stopping_ends_the_wait_for_the_broker_with_its_error(monkeypatch):
    monkeypatch.setattr(runner_module, "make_consumer", _Client)
    monkeypatch.setattr(runner_module, "make_producer", _Producer)
    m = AuditConsumer(ConsumerConfig(bootstrap="unused", gc_threshold=None), _Store(), load_policy())  # type: ignore[arg-type]
    try:
        m.producer.failures = 10**6  # type: ignore[attr-defined]
        m.sink.stop.set()
        with pytest.raises(BrokerError, match="stopping: what was not committed is read again"):
            m.sink.publish([_batch_to_publish()])
    finally:
        m.close()


# -- settling a batch across a rebalance ------------------------------------------------------------


class _Committing(_Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.commits: list[dict] = []
        self.refuse = False

    def begin(self, tp):
        return 10

    def commit(self, offsets):
        if self.refuse:
            raise CommitRefused("commit: CommitFailedError: the consumer was kicked out of the group (injected)")
        self.commits.append(offsets)


class _Journal(_Store):
    def query(self, sql, parameters=None, *, readonly=False):
        return [], []  # no planned ranges


@pytest.fixture()
def settling(monkeypatch):
    monkeypatch.setattr(runner_module, "make_consumer", _Committing)
    monkeypatch.setattr(runner_module, "make_producer", _Client)
    m = AuditConsumer(ConsumerConfig(bootstrap="unused", gc_threshold=None), _Journal(), load_policy())  # type: ignore[arg-type]
    m._assigned_now = {(TOPIC, 0), (TOPIC, 1)}
    m._start_assigned()
    loaded: Future[None] = Future()
    loaded.set_result(None)
    batches = [PartitionBatch(TOPIC, 0, 10, 14), PartitionBatch(TOPIC, 1, 10, 12)]
    owners = {(TOPIC, p): m.partitions[(TOPIC, p)] for p in (0, 1)}
    m._inflight = InFlight(loaded, batches, [], time.perf_counter(), owners)
    yield m
    m.close()


def test_a_batch_is_committed_and_counted_only_for_partitions_kept_since_it_was_handed_over(settling):
    m = settling
    m._revoked({(TOPIC, 0)})  # a rebalance takes partition 0 away and gives it back
    m._assigned_now = {(TOPIC, 0)}
    m._start_assigned()
    m.settle()
    # partition 0 starts again from its committed offset and replays the range from the journal
    assert m.consumer.commits == [{(TOPIC, 1): 13}]
    assert m.totals.records == 3


def test_a_commit_refused_because_the_group_moved_on_leaves_the_range_to_the_replay(settling, caplog):
    m = settling
    m.consumer.refuse = True
    with caplog.at_level("WARNING", logger="privaudit.consumer"):
        m.settle()  # no error: the next poll rejoins, and the journal says what to replay
    assert m.totals.records == 0 and m._inflight is None
    assert "next owner replays these ranges from the journal" in caplog.text


@pytest.mark.parametrize("rewinds", [True, False])
def test_records_of_a_partition_from_before_its_assignment_are_dropped(settling, rewinds):
    m = settling
    m.consumer.rewinds_on_begin = rewinds
    held = [Record(TOPIC, 0, 15, None, b"", 0), Record(TOPIC, 1, 13, None, b"", 0)]  # an earlier poll's
    m._revoked({(TOPIC, 0)})
    m._assigned_now = {(TOPIC, 0)}  # given back in the same rebalance
    polled = [Record(TOPIC, 0, 16, None, b"", 0), Record(TOPIC, 1, 14, None, b"", 0)]
    kept = m._started(list(held), list(polled))
    assert (TOPIC, 0) in m.partitions  # started: read again from the committed offset
    # what was held of partition 0 came from its previous assignment; what the poll returned of it
    # too when the client was moved (kafka-python's seek), not when the assignment starts there
    assert kept == ([held[1], polled[1]] if rewinds else [held[1], *polled])
