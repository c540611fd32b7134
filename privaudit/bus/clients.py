"""The small interface the pipeline has of Kafka, which two clients implement: kafka-python
(:mod:`.kafka_python`, the default) and confluent-kafka (:mod:`.confluent`, which reads many times
faster; docs/benchmarks.md); :mod:`.factory` makes either. The consumer and producer expose only
what the pipeline uses; broker errors become :class:`~privaudit.errors.BrokerError`.

Lag uses the high watermark carried by fetch responses, not ListOffsets: the Tansu 0.6 broker used
locally answers ListOffsets(latest) with the last record batch's base offset + 1 (measured: 41 for
50 records in batches of 10), while its fetch responses carry the right value (50).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from privaudit.backoff import with_backoff
from privaudit.errors import BrokerError

ClientName = Literal["kafka-python", "confluent"]
TP = tuple[str, int]
Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone (what a log-compaction delete writes), never an event
    timestamp_ms: int


class Consumer(Protocol):
    # Up to ``max_records``, returned as soon as any are there (waiting at most ``timeout_s`` for
    # the first); the caller gathers polls into a batch (``linger_s``).
    def poll(self, timeout_s: float, max_records: int) -> list[Record]: ...
    def commit(self, offsets: dict[TP, int]) -> None: ...  # next offset to read, per partition
    def seek(self, tp: TP, offset: int) -> None: ...
    def assignment(self) -> set[TP]: ...
    def committed(self, tp: TP) -> int | None: ...
    # Once a partition is assigned: the offset it is read from (its committed offset, or 0), with
    # the client positioned there, so that what the caller expects and what it is given agree even
    # when the previous owner's last commit lands during the handover.
    def begin(self, tp: TP) -> int: ...
    # True when begin() moves the client (a seek), so that records of the partition it returned
    # before begin() may come from where it was before and are delivered again from the new position.
    rewinds_on_begin: bool
    def highwater(self, tp: TP) -> int | None: ...  # from fetch responses; None before the first
    def close(self) -> None: ...


class Producer(Protocol):
    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Headers | None = None) -> None: ...
    def flush(self, timeout_s: float) -> None: ...
    def close(self, timeout_s: float = 5.0) -> None: ...


Listener = Callable[[set[TP]], None]


#: One record to publish: (topic, value, key, headers).
Message = tuple[str, bytes | None, bytes | None, Headers | None]


def publish(producer: Producer, messages: Sequence[Message], *, stop: threading.Event, what: str,
            on_retry: Callable[[], None] | None = None) -> None:
    """Send ``messages`` and flush. While the broker refuses or times out, all are sent again with
    backoff (:mod:`privaudit.backoff`) until it takes them or ``stop`` is set: at least once, so a
    record delivered before a failure may arrive twice (each carries its source position to tell)."""
    if not messages:
        return

    def send_all() -> None:
        for topic, value, key, headers in messages:
            producer.send(topic, value, key=key, headers=headers)
        producer.flush(30)

    with_backoff(send_all, retry_on=BrokerError, stop=stop, what=what, on_retry=on_retry)


def broker_error(what: str, exc: BaseException) -> BrokerError:
    return BrokerError(f"{what}: {type(exc).__name__}: {exc}")
