"""The confluent-kafka implementation of :mod:`privaudit.bus.clients` (``--kafka-client confluent``).

An optional extra (``pip install privaudit[confluent]``): librdkafka reads about 30x faster than
kafka-python on the same broker here.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from privaudit.errors import BrokerError, CommitRefused

from .clients import TP, Headers, Listener, Record, broker_error

try:
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicCollection, TopicPartition
    from confluent_kafka import Consumer as _Consumer
    from confluent_kafka import Producer as _Producer
    from confluent_kafka.admin import AdminClient
except ImportError as exc:  # pragma: no cover - depends on the install
    raise BrokerError("the confluent client needs confluent-kafka: pip install 'privaudit[confluent]'") from exc

#: librdkafka's codes for a commit that comes after the group moved on.
_REFUSED = frozenset({KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                      KafkaError.FENCED_INSTANCE_ID, KafkaError._ASSIGNMENT_LOST})

#: librdkafka's own log lines (a broker away: one per reconnection attempt) go to Python's logging,
#: quiet unless --log-level DEBUG (privaudit.settings.configure_logging), not straight to stderr.
_LOG = logging.getLogger("confluent_kafka")


class ConfluentConsumer:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        on_assign: Listener,
        on_revoke: Listener,
        session_timeout_ms: int,
        client_id: str,
    ) -> None:
        self._starts: dict[TP, int] = {}  # where each partition assigned last was started
        self._down: str | None = None  # librdkafka said no broker is up (its error), not yet seen back
        self._bootstrap = bootstrap
        self._admin: Any = None  # made when a topic id is first asked for
        self._consumer = _Consumer(
            {
                "bootstrap.servers": bootstrap,
                "logger": _LOG,
                "error_cb": self._error,
                "group.id": group,
                "client.id": client_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": max(500, session_timeout_ms // 6),
            }
        )

        def assigned(consumer: Any, partitions: list[Any]) -> None:
            # Start where the committed offsets say *now*, and remember it (see begin()): seeking
            # later, outside this callback, fails in librdkafka ("Erroneous state").
            try:
                committed = consumer.committed(partitions, timeout=10)
            except KafkaException as exc:
                raise broker_error("committed offsets", exc) from exc
            consumer.assign([TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else OFFSET_BEGINNING)
                             for p in committed])
            self._starts.update({(p.topic, p.partition): max(p.offset, 0) for p in committed})
            on_assign({(p.topic, p.partition) for p in partitions})

        def revoked(consumer: Any, partitions: list[Any]) -> None:
            on_revoke({(p.topic, p.partition) for p in partitions})

        self._consumer.subscribe(topics, on_assign=assigned, on_revoke=revoked)

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        # librdkafka's consume(n, timeout) waits for n messages or the whole timeout, which a steady
        # load pays on every poll (docs/benchmarks.md, "The confluent client's polls"): wait for the
        # first message only, then take what is already fetched, as kafka-python's poll does.
        try:
            first = self._consumer.poll(timeout_s)
            if first is None:
                self._check_up()
                return []
            messages = [first]
            if max_records > 1:
                messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        except KafkaException as exc:
            raise broker_error("poll", exc) from exc
        out = []
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # the end of a partition: not an error
                    continue
                raise BrokerError(f"poll: {error}")
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            if topic is None or partition is None or offset is None:  # only error events lack them
                raise BrokerError(f"poll: a message without a topic, partition or offset: {m!r}")
            out.append(Record(topic, partition, offset, m.key(), m.value(), m.timestamp()[1], _headers(m.headers())))
        return out

    def _error(self, error: Any) -> None:
        """librdkafka's error callback (on a poll): note that every broker is down."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down = error.str()

    def _check_up(self) -> None:
        """While no broker is up librdkafka's polls return nothing, as if all were read, and it
        reconnects on its own: after it said so, ask for the cluster's metadata (one request) on
        each empty poll until one answers, and meanwhile raise, so that the caller waits with
        backoff and says once per wait what it waits for."""
        if self._down is None:
            return
        try:
            self._consumer.list_topics(timeout=1.0)
        except KafkaException as exc:
            raise BrokerError(f"no broker reachable at {self._bootstrap} ({self._down}; the client reconnects on its "
                              "own)") from exc
        self._down = None

    def commit(self, offsets: dict[TP, int]) -> None:
        if not offsets:
            return
        try:
            positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self._consumer.commit(offsets=positions, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() in _REFUSED:
                raise CommitRefused(f"commit: {error.str()}") from exc
            raise broker_error("commit", exc) from exc

    def seek(self, tp: TP, offset: int) -> None:
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            raise broker_error(f"seek {tp[0]}:{tp[1]} to {offset}", exc) from exc

    def assignment(self) -> set[TP]:
        return {(p.topic, p.partition) for p in self._consumer.assignment()}

    def committed(self, tp: TP) -> int | None:
        [p] = self._consumer.committed([TopicPartition(*tp)], timeout=10)
        return p.offset if p.offset >= 0 else None

    #: The assignment itself starts each partition at the offset begin() returns: nothing to drop.
    rewinds_on_begin = False

    def begin(self, tp: TP) -> int:
        started = self._starts.pop(tp, None)
        return started if started is not None else (self.committed(tp) or 0)

    def highwater(self, tp: TP) -> int | None:
        _, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
        return high if high >= 0 else None

    def topic_id(self, topic: str) -> str | None:
        if self._admin is None:
            admin: dict[str, Any] = {"bootstrap.servers": self._bootstrap, "logger": _LOG}
            self._admin = AdminClient(admin)
        try:
            described = self._admin.describe_topics(TopicCollection([topic]))[topic].result(10)
        except (KafkaException, TimeoutError) as exc:
            raise broker_error(f"describing topic {topic}", exc) from exc
        found = getattr(described, "topic_id", None)
        if found is None:
            return None
        msb, lsb = found.get_most_significant_bits() % (1 << 64), found.get_least_significant_bits() % (1 << 64)
        return str(uuid.UUID(int=(msb << 64) | lsb)) if msb or lsb else None

    def known_topic_id(self, topic: str) -> str | None:
        return None  # librdkafka does not expose the ids of its metadata: see life_check_s

    def close(self) -> None:
        self._consumer.close()


class ConfluentProducer:
    def __init__(self, bootstrap: str, **options: Any) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "logger": _LOG,
            "acks": "all",
            "retries": 5,
            "max.in.flight.requests.per.connection": 1,
            "linger.ms": 5,
        }
        config.update(options)
        self._producer: Any = _Producer(config)  # None once closed
        self.errors: list[str] = []

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Headers | None = None) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers or [], on_delivery=self._delivered)
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: serve callbacks, then retry
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise BrokerError(f"flush: {left} message(s) not delivered within {timeout_s}s")
        if self.errors:
            first, self.errors = self.errors[0], []
            raise BrokerError(f"delivery failed: {first}")

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued, then let librdkafka go: a handle left to the garbage collector
        stays connected, and logs its lost connection on stderr when the broker stops first
        (seen at the end of ``privaudit demo --kafka-client confluent``)."""
        producer = self._producer
        if producer is None:
            return
        producer.flush(timeout_s)
        self._producer = None  # the last reference: librdkafka's handle is destroyed here


def _headers(given: Any) -> list[tuple[str, bytes]]:
    """librdkafka's headers as kafka-python gives them: (name, bytes) pairs (a null value as b"")."""
    if not given:
        return []
    pairs = given.items() if isinstance(given, dict) else given
    return [(str(name), value if isinstance(value, bytes) else (value or "").encode()) for name, value in pairs]
