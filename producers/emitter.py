"""``AuditEmitter``: what a service embeds to report every processing of personal data.

    emitter = AuditEmitter("kafka:9092", service="support-desk", spool_dir="/var/spool/privaudit")
    emitter.access(subject_id=pseudonymize(member_phone), actor_id="cs-kim", actor_type="STAFF",
                   action="VIEW", purpose="CUSTOMER_SUPPORT", data_items=["DEVICE_ID"],
                   source_ip=request_ip)
    ...
    emitter.close(timeout_s=10)

- **Validated at the call site**: a bad event raises :class:`~privaudit.errors.EventError` there, in
  the service's own tests, before anything is sent.
- **Framed and keyed**: the contract's Avro framing, keyed by ``subject_id`` so one subject's events
  stay in order in one partition; ``acks=all``, retries, one request in flight.
- **Never blocks, never loses**: a call never waits for the broker. If the broker is unreachable (or
  anything is already waiting in the spool, to keep order), the event is appended to the on-disk
  spool, fsynced; a background thread replays the spool in order when the broker is back, also after
  the service restarts, and once it reaches the spool's tail hands over to the direct path, so calls
  stop paying an fsync each even while the service keeps sending. A full spool raises
  :class:`SpoolFull` at the call site.
- **Unacknowledged events are spooled too**: an event handed to the producer is in memory until the
  broker acknowledges it. If the oldest such event waits longer than ``spool_unacked_after_s`` (the
  broker went away after the producer connected), the producer is dropped and every unacknowledged
  event is spooled, in the order of the calls; ``close()`` does the same with what its timeout
  left. So a crash of the service can lose at most the events of that last window (default 10 s);
  a normal shutdown loses none.
- **Thread-safe**; ``flush()`` and ``close()`` take timeouts and never raise for an absent broker.
  Delivery failures are counted in :meth:`stats` and handed to ``on_error``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from privaudit.bus.clients import close_quietly
from privaudit.errors import EventError
from privaudit.schemas import MODELS, Codec, Event
from privaudit.schemas.identifiers import may_hold_rrn
from privaudit.schemas.models import describe, mask_event
from privaudit.settings import TOPIC_EVENTS

from .sequence import Sequence
from .spool import Headers, Spool, SpoolFull

log = logging.getLogger("privaudit.emitter")

ProducerFactory = Callable[[], Any]

#: Spooled records sent per round of the replay.
REPLAY_BATCH = 500


class AuditEmitter:
    def __init__(
        self,
        bootstrap: str,
        *,
        service: str,
        spool_dir: str | Path,
        topic: str = TOPIC_EVENTS,
        codec: Codec | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        retry_interval_s: float = 1.0,
        spool_unacked_after_s: float = 10.0,
        on_error: Callable[[BaseException], None] | None = None,
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self.service = service
        self.topic = topic
        self.codec = codec or Codec()
        self.spool = Spool(spool_dir, spool_max_bytes)
        self.sequence = Sequence(Path(spool_dir))  # after the spool: its lock makes the directory ours
        self._bootstrap = bootstrap
        self._factory = producer_factory or self._kafka_producer
        self._producer: Any = None
        self._on_error = on_error
        self._retry_s = retry_interval_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._replaying = threading.Lock()  # held while the thread touches the spool; close() takes it
        # events handed to the producer and not yet acknowledged, in the order of the calls:
        # call number -> (key, value, headers, when sent); spooled if the broker does not answer
        self._unacked: dict[int, tuple[bytes, bytes, Headers, float]] = {}
        self._calls = itertools.count()
        self._spool_unacked_after_s = spool_unacked_after_s
        # True once the replay handed the spool's tail to the producer: calls go direct although the
        # spool's cursor waits for those records' acks; cleared whenever the producer is dropped
        self._handed_over = False
        self._stats = {"sent": 0, "spooled": 0, "replayed": 0, "failed": 0}
        self._thread = threading.Thread(target=self._replay_loop, name="privaudit-emitter", daemon=True)
        self._thread.start()

    # -- one call per event type ----------------------------------------------------------

    def access(self, **fields: Any) -> Event:
        return self.emit("access", **fields)

    def share(self, **fields: Any) -> Event:
        return self.emit("share", **fields)

    def transfer(self, **fields: Any) -> Event:
        return self.emit("transfer", **fields)

    def consent(self, **fields: Any) -> Event:
        return self.emit("consent", **fields)

    def membership(self, **fields: Any) -> Event:
        return self.emit("membership", **fields)

    def emit(self, event_type: str, **fields: Any) -> Event:
        """Validate, frame and send (or spool) one event; ``event_id``, ``occurred_at`` and
        ``service`` are filled in when not given. Returns the validated event."""
        fields.setdefault("event_id", str(uuid.uuid4()))
        fields.setdefault("occurred_at", datetime.now(UTC))
        fields.setdefault("service", self.service)
        try:
            event = MODELS[event_type].model_validate(fields)
        except KeyError:
            raise EventError(f"unknown event type {event_type!r}") from None
        except ValidationError as exc:
            raise EventError(f"{event_type}: {describe(exc)}") from exc
        return self.send_event(event)

    def send_event(self, event: Event) -> Event:
        """Send an already validated event; returned as sent. A resident registration number in a
        free-text field is masked first (:func:`~privaudit.schemas.models.mask_event`): neither
        Kafka nor the spool on this machine ever holds it, and the consumer still reports it as
        PA-015 (it recognises the mask)."""
        value = self.codec.encode(event)
        if may_hold_rrn(value):
            event = mask_event(event)
            value = self.codec.encode(event)
        self._send(event.subject_id.encode("utf-8"), value)
        return event

    # -- sending --------------------------------------------------------------------------

    def _send(self, key: bytes, value: bytes) -> None:
        with self._lock:
            headers = self.sequence.take()  # in call order: numbered under the lock that orders calls
            producer = self._producer
            if producer is None or not (self._handed_over or self.spool.empty):  # broker away, or older events wait
                self.spool.append(self.topic, key, value, headers)
                self._stats["spooled"] += 1
                self._wake.set()
                return
            try:
                future = producer.send(self.topic, key=key, value=value, headers=list(headers))
            except Exception as exc:  # buffer full / metadata unavailable: the broker is away
                log.warning("broker unavailable (%s); spooling", exc)
                self._drop_producer()
                self.spool.append(self.topic, key, value, headers)
                self._stats["spooled"] += 1
                self._wake.set()
                return
            call = next(self._calls)
            self._unacked[call] = (key, value, headers, time.monotonic())
        future.add_callback(self._delivered, call).add_errback(self._undelivered, call)

    def _delivered(self, call: int, _metadata: Any) -> None:
        with self._lock:
            if self._unacked.pop(call, None) is not None:  # else: already spooled as unacknowledged
                self._stats["sent"] += 1

    def _undelivered(self, call: int, exc: BaseException) -> None:
        """Retries were exhausted: keep the event in the spool rather than lose it, and with it every
        other unacknowledged one (they wait on the same broker), in call order."""
        with self._lock:
            if call not in self._unacked:  # already spooled as unacknowledged
                return
            self._stats["failed"] += 1
            self._drop_producer()
        if self._on_error is not None:
            self._on_error(exc)
        self._wake.set()

    def _spool_unacked(self, older_than_s: float) -> int:
        """If the oldest unacknowledged event was sent more than ``older_than_s`` ago, the broker is
        taken for away: every unacknowledged event is spooled. The number spooled."""
        with self._lock:
            if not self._unacked or time.monotonic() - next(iter(self._unacked.values()))[3] < older_than_s:
                return 0
            n = len(self._unacked)
            self._drop_producer()
        if older_than_s:
            log.warning("%d event(s) not acknowledged by the broker within %.0f s: spooled", n, older_than_s)
        else:
            log.warning("closing with %d event(s) not acknowledged by the broker: spooled for the next start", n)
        self._wake.set()
        return n

    def _drop_producer(self) -> None:
        """(Holding the lock.) The broker is taken for away. Every unacknowledged event goes to the
        spool first, in call order, with one fsync; later calls spool behind them, so the order
        holds. An ack that comes after all is ignored, and that event is sent twice (at least once).
        (A full spool leaves them in memory, said loudly: the old producer may still deliver them.)"""
        if self._unacked:
            records = [(key, value, headers) for key, value, headers, _ in self._unacked.values()]
            try:
                self.spool.extend(self.topic, records)
            except SpoolFull as full:
                log.error("%s: %d unacknowledged event(s) are held in memory only", full, len(records))
            else:
                self._unacked.clear()
                self._stats["spooled"] += len(records)
        producer, self._producer = self._producer, None
        self._handed_over = False  # what the spool holds goes first again, through the replay
        if producer is not None:
            threading.Thread(target=close_quietly, args=(producer, 0), daemon=True).start()

    def _kafka_producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            retries=5,
            max_in_flight_requests_per_connection=1,
            linger_ms=5,
            max_block_ms=200,  # a call waits at most this long for metadata before we spool
            request_timeout_ms=10_000,
            delivery_timeout_ms=30_000,
            reconnect_backoff_max_ms=2_000,
        )

    # -- the background thread: connect, replay the spool in order ------------------------

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            self._spool_unacked(self._spool_unacked_after_s)
            try:
                if self._producer is None:
                    producer = self._factory()  # may block for seconds while the broker is away
                    with self._lock:
                        if self._stop.is_set():
                            close_quietly(producer, 0)
                            return
                        self._producer = producer
                with self._replaying:
                    if self._stop.is_set():
                        return
                    if not self.spool.empty:
                        self._replay_batch()
                        continue
            except Exception as exc:  # the broker is still away: try again later
                log.debug("emitter replay: %s", exc)
                with self._lock:
                    self._drop_producer()
            self._wake.wait(self._retry_s)
            self._wake.clear()

    def _replay_batch(self) -> None:
        batch = self.spool.pending(REPLAY_BATCH)
        if not batch:
            return
        producer = self._producer
        if len(batch) < REPLAY_BATCH:
            # The tail. While the service keeps calling, new events would land behind it forever (each
            # with an fsync), so: with calls held, send the rest of the spool, then let calls go
            # direct. The producer keeps the order of its sends; the cursor moves once they are acked.
            with self._lock:
                if self._producer is not producer:
                    return
                batch = self.spool.pending(2 * REPLAY_BATCH)
                futures = [producer.send(r.topic, key=r.key, value=r.value, headers=list(r.headers)) for r in batch]
                self._handed_over = len(batch) < 2 * REPLAY_BATCH  # else: calls came faster, go round again
        else:
            futures = [producer.send(r.topic, key=r.key, value=r.value, headers=list(r.headers)) for r in batch]
        for future in futures:
            # raises if not acknowledged in the window: the cursor stays, the producer is dropped
            # (spooling what calls sent direct meanwhile), and the replay starts again
            future.get(timeout=self._spool_unacked_after_s)
        self.spool.ack(batch[-1].position)
        with self._lock:
            self._stats["replayed"] += len(batch)

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every event is acknowledged or durably spooled and the spool drained.
        True when nothing is left waiting; False when events remain in the spool (safe on disk)."""
        deadline = time.monotonic() + timeout_s
        producer = self._producer
        if producer is not None:
            try:
                producer.flush(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:
                log.warning("flush: %s", exc)
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                if self.spool.empty and not self._unacked:
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout_s: float = 10.0) -> bool:
        """Flush for up to ``timeout_s``, then stop. Events still unacknowledged are spooled (sent on
        the next start, perhaps a second time); True when nothing was left for the next start."""
        done = self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, timeout_s))
        with self._replaying:  # the thread, even if still alive, no longer touches the spool
            left = self._spool_unacked(0.0)
            with self._lock:
                producer, self._producer = self._producer, None
            if producer is not None:
                close_quietly(producer, timeout_s if done else 0)
            with self._lock:
                self.spool.close()
                self.sequence.close()
        return done and not left

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats, spool_bytes=len(self.spool), inflight=len(self._unacked))
