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
- **Thread-safe**; ``flush()`` and ``close()`` take timeouts. Delivery failures are counted in
  :meth:`stats` and handed to ``on_error``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from privaudit.errors import EventError
from privaudit.schemas import MODELS, Codec, Event
from privaudit.schemas.models import describe
from privaudit.settings import TOPIC_EVENTS

from .spool import Spool

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
        on_error: Callable[[BaseException], None] | None = None,
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self.service = service
        self.topic = topic
        self.codec = codec or Codec()
        self.spool = Spool(spool_dir, spool_max_bytes)
        self._bootstrap = bootstrap
        self._factory = producer_factory or self._kafka_producer
        self._producer: Any = None
        self._on_error = on_error
        self._retry_s = retry_interval_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._replaying = threading.Lock()  # held while the thread touches the spool; close() takes it
        self._inflight = 0
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
        fields.setdefault("occurred_at", datetime.now(timezone.utc))
        fields.setdefault("service", self.service)
        try:
            event = MODELS[event_type].model_validate(fields)
        except KeyError:
            raise EventError(f"unknown event type {event_type!r}") from None
        except ValidationError as exc:
            raise EventError(f"{event_type}: {describe(exc)}") from exc
        self.send_event(event)
        return event

    def send_event(self, event: Event) -> None:
        """Send an already validated event."""
        self._send(event.subject_id.encode("utf-8"), self.codec.encode(event))

    # -- sending --------------------------------------------------------------------------

    def _send(self, key: bytes, value: bytes) -> None:
        with self._lock:
            producer = self._producer
            if producer is None or not (self._handed_over or self.spool.empty):  # broker away, or older events wait
                self.spool.append(self.topic, key, value)
                self._stats["spooled"] += 1
                self._wake.set()
                return
            try:
                future = producer.send(self.topic, key=key, value=value)
            except Exception as exc:  # buffer full / metadata unavailable: the broker is away
                log.warning("broker unavailable (%s); spooling", exc)
                self._drop_producer()
                self.spool.append(self.topic, key, value)
                self._stats["spooled"] += 1
                self._wake.set()
                return
            self._inflight += 1
        future.add_callback(self._delivered).add_errback(self._undelivered, key, value)

    def _delivered(self, _metadata: Any) -> None:
        with self._lock:
            self._inflight -= 1
            self._stats["sent"] += 1

    def _undelivered(self, key: bytes, value: bytes, exc: BaseException) -> None:
        """Retries were exhausted: keep the event in the spool rather than lose it."""
        with self._lock:
            self._inflight -= 1
            self._stats["failed"] += 1
            self.spool.append(self.topic, key, value)
            self._stats["spooled"] += 1
            self._drop_producer()
        if self._on_error is not None:
            self._on_error(exc)
        self._wake.set()

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        self._handed_over = False  # what the spool holds goes first again, through the replay
        if producer is not None:
            threading.Thread(target=producer.close, kwargs={"timeout": 0}, daemon=True).start()

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
            try:
                if self._producer is None:
                    producer = self._factory()  # may block for seconds while the broker is away
                    with self._lock:
                        if self._stop.is_set():
                            producer.close(timeout=0)
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
                futures = [producer.send(r.topic, key=r.key, value=r.value) for r in batch]
                self._handed_over = len(batch) < 2 * REPLAY_BATCH  # else: calls came faster, go round again
        else:
            futures = [producer.send(r.topic, key=r.key, value=r.value) for r in batch]
        for future in futures:
            future.get(timeout=30)  # raises if not acknowledged: the cursor stays, we retry
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
                if self.spool.empty and self._inflight == 0:
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout_s: float = 10.0) -> bool:
        done = self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, timeout_s))
        with self._replaying:  # the thread, even if still alive, no longer touches the spool
            with self._lock:
                producer, self._producer = self._producer, None
            if producer is not None:
                producer.close(timeout=timeout_s)
            self.spool.close()
        return done

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats, spool_bytes=len(self.spool), inflight=self._inflight)
