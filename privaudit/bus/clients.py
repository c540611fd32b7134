"""The small interface the pipeline has of Kafka, which two clients implement: kafka-python
(:mod:`.kafka_python`, the default) and confluent-kafka (:mod:`.confluent`, which reads many times
faster; docs/benchmarks.md); :mod:`.factory` makes either. The consumer and producer expose only
what the pipeline uses; broker errors become :class:`~privaudit.errors.BrokerError`.

Lag uses the high watermark carried by fetch responses, not ListOffsets: the Tansu 0.6 broker used
locally answers ListOffsets(latest) with the last record batch's base offset + 1 (measured: 41 for
50 records in batches of 10), while its fetch responses carry the right value (50).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from privaudit.backoff import with_backoff
from privaudit.errors import BrokerError

log = logging.getLogger("privaudit.bus")

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
    headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] | None = ()


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
    # The broker's id of the topic (a UUID, KIP-516): a topic deleted and created again, or a
    # broker back with empty storage, gives it a new one. None when the broker gives none.
    def topic_id(self, topic: str) -> str | None: ...
    # The same from the client's latest metadata, without asking (None when it holds none): checked
    # at every poll, it tells a new life before records of it are taken for the old one's.
    def known_topic_id(self, topic: str) -> str | None: ...
    def close(self) -> None: ...


class Producer(Protocol):
    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Headers | None = None) -> None: ...
    def flush(self, timeout_s: float) -> None: ...
    def close(self, timeout_s: float = 5.0) -> None: ...


Listener = Callable[[set[TP]], None]


#: How long one attempt to publish waits for the broker's acknowledgements: a broker that went
#: away is said within this, then waited for with backoff (:func:`publish`).
PUBLISH_FLUSH_S = 10.0

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
        producer.flush(PUBLISH_FLUSH_S)

    with_backoff(send_all, retry_on=BrokerError, stop=stop, what=what, on_retry=on_retry)


def broker_error(what: str, exc: BaseException) -> BrokerError:
    return BrokerError(f"{what}: {type(exc).__name__}: {exc}")


def close_quietly(producer: Any, timeout_s: float) -> None:
    """Close a kafka-python producer whose unacknowledged records need not be delivered (spooled,
    or to be sent again). kafka-python's ``close``
    flushes first and raises when that times out (the broker is away), before it would force its
    sender closed, and its ``__del__`` then tries again and prints the same error. So on that error
    the sender (kafka-python's own, private) is forced closed, which fails what it held, and the
    producer closed again."""
    try:
        producer.close(timeout=timeout_s)
        return
    except Exception as exc:
        log.debug("closing the producer: %s", exc)
    sender = getattr(producer, "_sender", None)
    if sender is None or not hasattr(sender, "force_close"):
        return
    sender.force_close()
    sender.join(5.0)
    try:
        producer.close(timeout=0)
    except Exception as exc:
        log.debug("closing the producer again: %s", exc)
