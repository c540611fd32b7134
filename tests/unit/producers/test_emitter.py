"""The emitter's logic around its producer: spooling while the broker is away, the replay, and the
handover back to the direct path. The producer here is a stand-in that keeps what it was sent, in
order, and fails on cue; ``test_group_and_spool.py`` runs the emitter against the real broker."""

from __future__ import annotations

import threading
import time

import pytest

from privaudit.errors import EventError
from privaudit.producers import AuditEmitter
from privaudit.schemas.headers import parse


class _Future:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.acked_at = time.monotonic() + 0.005  # a request's round trip (linger, acks=all)

    def add_callback(self, fn, *args):
        if self.error is None:
            fn(*args, None)
        return self

    def add_errback(self, fn, *args):
        if self.error is not None:
            fn(*args, self.error)
        return self

    def get(self, timeout=None):
        time.sleep(max(0.0, self.acked_at - time.monotonic()))  # calls come in meanwhile
        if self.error is not None:
            raise self.error
        return None


class _Unanswered:
    """A send the broker never answers (it went away after the producer connected)."""

    def add_callback(self, fn, *args):
        return self

    def add_errback(self, fn, *args):
        return self

    def get(self, timeout=None):
        time.sleep(timeout or 0)
        raise TimeoutError("no answer")


class _Broker:
    """Producers for a broker that is ``up`` or not; what they delivered, in the order sent."""

    def __init__(self) -> None:
        self.up = False
        self.silent = False  # connected producers get no answer
        self.fail_next = 0  # sends that fail (retries exhausted) from now on
        self.delivered: list[bytes] = []
        self.seqs: list[int] = []  # the privaudit.seq header of each delivered record
        self.lock = threading.Lock()

    def producer(self) -> _Producer:
        if not self.up:
            raise ConnectionError("no broker")
        return _Producer(self)


class _Producer:
    def __init__(self, broker: _Broker) -> None:
        self.broker = broker

    def send(self, topic, key=None, value=None, headers=None):
        with self.broker.lock:
            if self.broker.silent:
                return _Unanswered()
            if self.broker.fail_next:
                self.broker.fail_next -= 1
                return _Future(TimeoutError("delivery timed out"))
            self.broker.delivered.append(value)
            self.broker.seqs.append(int(dict(headers or [])["privaudit.seq"]))
        return _Future()

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass


def _emitter(tmp_path, broker: _Broker, **options) -> AuditEmitter:
    emitter = AuditEmitter("unused:9092", service="app", spool_dir=tmp_path / "spool", retry_interval_s=0.01,
                           producer_factory=broker.producer, **options)
    emitter.codec.encode = lambda event: event.event_id.encode()  # type: ignore[method-assign]
    return emitter


def _call(emitter: AuditEmitter, n: int, *, every_s: float = 0.0) -> list[bytes]:
    ids = []
    for _ in range(n):
        event = emitter.access(subject_id="member-1", actor_id="cs-kim", actor_type="STAFF", action="VIEW",
                               purpose="CUSTOMER_SUPPORT", data_items=["DEVICE_ID"])
        ids.append(event.event_id.encode())
        if every_s:
            time.sleep(every_s)
    return ids


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.005)


def test_after_an_outage_calls_go_direct_again_while_the_service_keeps_calling(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker)
    ids = _call(emitter, 1200)  # the broker is away: all spooled
    assert emitter.stats()["spooled"] == 1200 and broker.delivered == []
    broker.up = True
    ids += _call(emitter, 1500, every_s=0.001)  # a service that does not pause for the replay
    assert emitter.close(timeout_s=10)
    stats = emitter.stats()
    assert stats["sent"] > 0, "calls kept going to the spool after the broker was back"
    assert stats["sent"] + stats["replayed"] == len(ids)
    assert broker.delivered == ids  # each once, in the order of the calls


def test_a_handover_whose_delivery_fails_is_replayed_and_nothing_is_lost(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker)
    ids = _call(emitter, 300)
    broker.fail_next, broker.up = 50, True  # the first sends after the broker is back fail
    ids += _call(emitter, 500, every_s=0.001)
    assert emitter.close(timeout_s=10)
    assert set(broker.delivered) == set(ids)  # at least once: a failed send is spooled and sent again
    assert emitter.stats()["failed"] + emitter.stats()["replayed"] >= 300


def test_a_bad_event_raises_at_the_call_site_and_nothing_is_sent(tmp_path):
    broker = _Broker()
    broker.up = True
    emitter = _emitter(tmp_path, broker)
    with pytest.raises(EventError, match="data_items"):
        emitter.access(subject_id="member-1", actor_id="cs-kim", actor_type="STAFF", action="VIEW",
                       purpose="CUSTOMER_SUPPORT", data_items=[])
    assert emitter.close(timeout_s=5) and broker.delivered == [] and emitter.stats()["spooled"] == 0


def test_threads_calling_across_an_outage_each_keep_their_order_and_lose_nothing(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker)
    sent: dict[int, list[bytes]] = {}

    def service_thread(n: int) -> None:
        sent[n] = _call(emitter, 400, every_s=0.0005)

    threads = [threading.Thread(target=service_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    broker.up = True  # mid-run: the replay catches up and hands over while all four keep calling
    for thread in threads:
        thread.join()
    assert emitter.close(timeout_s=10)
    assert sorted(broker.delivered) == sorted(i for ids in sent.values() for i in ids)  # each once
    position = {event_id: at for at, event_id in enumerate(broker.delivered)}
    for ids in sent.values():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)  # each thread's order kept
    assert emitter.stats()["sent"] > 0 and emitter.stats()["spooled"] > 0


def _connected(emitter: AuditEmitter, broker: _Broker) -> list[bytes]:
    broker.up = True
    ids = _call(emitter, 1)
    _wait(lambda: emitter.stats()["spooled"] == emitter.stats()["replayed"] and emitter.flush(0.01))
    return ids


def test_events_the_broker_does_not_acknowledge_are_spooled_in_call_order_after_the_window(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker, spool_unacked_after_s=0.3)
    ids = _connected(emitter, broker)
    broker.silent, broker.up = True, False  # gone after the producer connected: sends taken, never answered
    ids += _call(emitter, 200)
    assert emitter.stats()["inflight"] == 200  # in memory for now
    _wait(lambda: emitter.stats()["inflight"] == 0, timeout=5)
    assert emitter.stats()["spooled"] >= 200
    ids += _call(emitter, 50)  # later calls queue behind them
    broker.silent, broker.up = False, True
    assert emitter.close(timeout_s=10)
    assert broker.delivered == ids  # all, in call order


def test_close_spools_what_the_broker_did_not_acknowledge_and_the_next_start_sends_it(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker)  # the 10 s window does not come into it
    ids = _connected(emitter, broker)
    broker.silent, broker.up = True, False
    ids += _call(emitter, 300)
    started = time.monotonic()
    assert not emitter.close(timeout_s=0.5)  # no exception, and it says something is left
    assert time.monotonic() - started < 3
    assert emitter.stats()["inflight"] == 0 and emitter.stats()["spool_bytes"] > 0

    broker.silent, broker.up = False, True
    restarted = _emitter(tmp_path, broker)  # the service starts again on its spool
    assert restarted.close(timeout_s=10)
    assert broker.delivered == ids


# -- sequence numbers (evidence) -----------------------------------------------------------------

def test_every_record_carries_the_emitter_and_its_number_in_call_order_through_outages(tmp_path):
    broker = _Broker()
    emitter = _emitter(tmp_path, broker)
    _call(emitter, 200)  # spooled: the numbers travel in the spool
    broker.up = True
    _call(emitter, 300, every_s=0.0005)
    assert emitter.close(timeout_s=10)
    assert broker.seqs == list(range(1, 501))


def test_the_numbers_go_on_after_a_restart_and_the_emitter_keeps_its_id(tmp_path):
    broker = _Broker()
    broker.up = True
    first = _emitter(tmp_path, broker)
    _call(first, 5)
    ident = first.sequence.emitter
    assert first.close(timeout_s=10)
    again = _emitter(tmp_path, broker)
    _call(again, 3)
    assert again.sequence.emitter == ident and again.close(timeout_s=10)
    assert broker.seqs == [1, 2, 3, 4, 5, 6, 7, 8]
    other = AuditEmitter("unused:9092", service="app", spool_dir=tmp_path / "other", producer_factory=broker.producer)
    assert other.sequence.emitter != ident and other.sequence.next == 1
    other.close(timeout_s=1)


def test_headers_that_are_not_ours_read_as_unsequenced():
    assert parse([("privaudit.emitter", b"e-1"), ("privaudit.seq", b"17")]) == ("e-1", 17)
    for headers in ([], None, [("privaudit.seq", b"1")], [("privaudit.emitter", b"e"), ("privaudit.seq", b"-1")],
                    [("privaudit.emitter", b"e"), ("privaudit.seq", b"0")],
                    [("privaudit.emitter", b"e"), ("privaudit.seq", b"9" * 40)],
                    [("privaudit.emitter", b"e"), ("privaudit.seq", b"\xff")]):
        assert parse(headers) is None
