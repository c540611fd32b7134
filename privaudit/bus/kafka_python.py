"""The kafka-python implementation of :mod:`privaudit.bus.clients` (the default client)."""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from privaudit.errors import BrokerError, CommitRefused

from .clients import TP, Headers, Listener, Record, broker_error, close_quietly

_NO_TOPIC_ID = "00000000-0000-0000-0000-000000000000"  # what a broker without topic ids answers
_AWAY_S = 3.0  # no connection to any broker this long: the broker is taken for away

#: What kafka-python raises when a commit comes after the group moved on.
_REFUSED = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no type hints
    def __init__(self, on_assign: Listener, on_revoke: Listener) -> None:
        self.on_assign, self.on_revoke = on_assign, on_revoke

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.on_revoke({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.on_assign({(tp.topic, tp.partition) for tp in assigned})


class KafkaPythonConsumer:
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
        self._bootstrap = bootstrap
        self._admin: Any = None  # made when a topic id is first asked for
        self._connected_at = time.monotonic()  # when a broker was last seen connected
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                client_id=client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=max(500, session_timeout_ms // 6),
                max_poll_records=5000,
                fetch_max_bytes=16 * 1024 * 1024,
            )
            self._consumer.subscribe(topics, listener=_Rebalance(on_assign, on_revoke))
        except KafkaError as exc:
            raise broker_error(f"cannot join group {group} at {bootstrap}", exc) from exc

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        try:
            polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except KafkaError as exc:
            raise broker_error("poll", exc) from exc
        out = []
        for records in polled.values():
            for r in records:
                out.append(Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, r.headers))
        if not out:
            self._check_connected()
        return out

    def _check_connected(self) -> None:
        """While no broker can be reached kafka-python's polls return nothing, as if all were read,
        and it reconnects on its own: after ``_AWAY_S`` without a connection this says so, so that
        the caller waits with backoff and says once per wait what it waits for."""
        try:
            connections = self._consumer._client._manager._conns.values()  # kafka-python 3's own
            connected = any(c.connected for c in connections)
        except AttributeError:  # another kafka-python: no word on it, the polls go on
            return
        now = time.monotonic()
        if connected:
            self._connected_at = now
        elif now - self._connected_at > _AWAY_S:
            raise BrokerError(f"no broker reachable at {self._bootstrap} for {now - self._connected_at:.0f} s "
                              "(the client reconnects on its own)")

    def commit(self, offsets: dict[TP, int]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
        except _REFUSED as exc:
            raise CommitRefused(f"commit: {type(exc).__name__}: {exc}") from exc
        except KafkaError as exc:
            raise broker_error("commit", exc) from exc

    def seek(self, tp: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(*tp), offset)

    def assignment(self) -> set[TP]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def committed(self, tp: TP) -> int | None:
        offset = self._consumer.committed(TopicPartition(*tp))
        return None if offset is None else int(offset)

    #: begin() seeks: records of the partition returned before may come from where the client was.
    #: (Seen: a partition revoked and given back to the same member in one rebalance kept its fetch
    #: position, and the poll that assigned it returned records from there, past the range the
    #: member had to replay from the committed offset.)
    rewinds_on_begin = True

    def begin(self, tp: TP) -> int:
        # kafka-python looks the committed offset up on its own, possibly later than we do (seen:
        # a previous owner's last commit landed in between, the client read from 20 records
        # further than the consumer expected, and the partition never looked caught up): seek.
        partition = TopicPartition(*tp)
        offset = self._consumer.committed(partition) or 0
        self._consumer.seek(partition, offset)
        return offset

    def highwater(self, tp: TP) -> int | None:
        high = self._consumer.highwater(TopicPartition(*tp))
        return None if high is None else int(high)

    def topic_id(self, topic: str) -> str | None:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="privaudit-topic-ids")
            described = self._admin.describe_topics([topic])
        except KafkaError as exc:
            raise broker_error(f"describing topic {topic}", exc) from exc
        found = str(described[0].get("topic_id") or "") if described else ""
        return found if found and found != _NO_TOPIC_ID else None

    def known_topic_id(self, topic: str) -> str | None:
        found = self._consumer._client.cluster.topic_id(topic)  # kafka-python 3 keeps KIP-516 ids
        return str(found) if found is not None and str(found) != _NO_TOPIC_ID else None

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False)
        finally:
            if self._admin is not None:
                self._admin.close()


class KafkaPythonProducer:
    def __init__(self, bootstrap: str, **options: Any) -> None:
        config = {
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "retries": 5,
            "max_in_flight_requests_per_connection": 1,  # keep a subject's events in order on retry
            "linger_ms": 5,
        }
        config.update(options)
        self._config = config
        self._producer = self._connect()
        self.errors: list[BaseException] = []

    def _connect(self) -> Any:
        try:
            return KafkaProducer(**self._config)
        except KafkaError as exc:
            raise broker_error(f"cannot connect a producer to {self._config['bootstrap_servers']}", exc) from exc

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Headers | None = None) -> None:
        if self._producer is None:
            self._producer = self._connect()
        try:
            future = self._producer.send(topic, value=value, key=key, headers=headers or [])
        except KafkaError as exc:
            raise broker_error(f"send to {topic}", exc) from exc
        future.add_errback(self.errors.append)  # the list of this producer: see _drop

    def flush(self, timeout_s: float) -> None:
        if self._producer is None:
            return
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self._drop()
            raise broker_error("flush", exc) from exc
        if self.errors:
            first, self.errors = self.errors[0], []
            self._drop()
            raise broker_error("delivery failed", first)

    def _drop(self) -> None:
        """After a failure the caller sends again, through a new producer: a broker that came back
        empty knows neither this one's id nor its sequence numbers and refuses it for good
        (UnknownProducerId, then InitProducerId). What the old one still holds is dropped, not
        delivered later behind the new one's (at least once, in order)."""
        old, self._producer = self._producer, None
        self.errors = []  # what the old one's sends fail with, when it is closed, is not the new one's
        if old is not None:
            threading.Thread(target=close_quietly, args=(old, 0), daemon=True).start()

    def close(self, timeout_s: float = 5.0) -> None:
        if self._producer is not None:  # what it still holds was published at least once, or is sent again
            close_quietly(self._producer, timeout_s)
