"""The bulk-access stage: PA-012, the one rule keyed by actor rather than by subject.

Events are keyed by subject, so one actor's accesses are spread over every partition and no single
consumer sees them all. This stage runs PA-012 over the ``events`` table instead, where every
consumer's rows meet, and only over event time that is *complete*:

- **watermark**: each consumer records, per partition, the latest ``occurred_at`` it has loaded
  (``progress``). Within a partition events arrive in time order (one producer's events for a
  subject are ordered, and the simulator's whole stream is), so every event up to the smallest of
  those per-partition times is loaded. Until every partition has reported, the stage waits. When
  every partition is caught up and idle (known in the process that owns them all, or said by each
  owner in ``caught_up``: :meth:`all_caught_up`), and at the end of a finite run, everything loaded
  is complete (``final=True``).
- **scan**: the accesses in ``(lo, hi]`` are read in ``(occurred_at, event_id)`` order and fed to
  the checker's own PA-012 (:meth:`Checker.bulk_verdict`). The stage keeps that checker between
  scans, so each scan reads only what is new; its first scan (and one after a failed scan) reads
  ``(lo - window, lo]`` before, to fill the actors' windows, and keeps no verdict from it. For a
  stream whose events are strictly ordered in time per actor (as ``simulate`` writes), this is the
  order ``privaudit check`` sees them in, so the verdicts are the same. (Re-reading the window on
  every scan, as the stage first did, reads an hour of accesses every second: millions of rows when
  events are stamped in real time at 5,000 a second.)
- **exactly once**: the range is journaled before its verdicts are inserted with the token
  ``bulk/<topic>/<lo>-<hi>/violations``, and marked done after; a crash replays the same range.

Exactly one bulk stage must run per deployment: ``privaudit run`` hosts it; with separate
``privaudit consume`` processes, give ``--bulk-stage`` to one of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from privaudit.bus import Producer, publish
from privaudit.checker import Checker, Violation
from privaudit.policy import Policy, from_millis, to_millis
from privaudit.settings import TOPIC_EVENTS, TOPIC_VIOLATIONS
from privaudit.store import Statements, as_utc
from privaudit.store.ddl import VIOLATION_COLUMN_NAMES, position

from .batch import add_violation

PLANNED, DONE = "bulk", "bulk-done"


class BulkStage:
    def __init__(self, store: Statements, policy: Policy, producer: Producer | None, *, partitions: int,
                 topic: str = TOPIC_EVENTS, stop: threading.Event | None = None,
                 on_publish_retry: Callable[[], None] | None = None) -> None:
        self.store = store
        self.policy = policy
        self.producer = producer
        self.partitions = partitions
        self.topic = topic
        self.found = 0
        self.read = 0  # accesses read from ``events``, over all scans
        self._stop = stop or threading.Event()  # ends a wait for the broker (its verdicts are then published again)
        self._on_publish_retry = on_publish_retry
        self._lock = threading.Lock()  # consumer threads of one process share one stage
        # The checker fed every access up to ``_fed_to`` (epoch ms), kept for the next scan.
        self._checker: Checker | None = None
        self._fed_to = -1

    def watermark(self, final: bool) -> int | None:
        """Epoch ms up to which all events are loaded, or None while a partition has not reported."""
        _, rows = self.store.query(
            f"SELECT kafka_partition, max(max_occurred_at) FROM {self.store.database}.progress "
            "WHERE kafka_topic = {t:String} GROUP BY kafka_partition",
            {"t": self.topic},
        )
        if not rows:
            return None
        latest = [to_millis(as_utc(at)) for _, at in rows]
        if final:
            return max(latest)
        return min(latest) if len(rows) >= self.partitions else None

    def all_caught_up(self, idle_s: float, fresh_s: float) -> bool:
        """Every partition's owner, in whatever process, said within ``fresh_s`` that it is loaded
        to its end and has had no record for ``idle_s`` (``caught_up``), and nothing was loaded
        there since. A member that died stops renewing its word, so its partitions stop counting.
        Two plain queries rather than a join, which a cluster's Distributed tables would refuse."""
        db, params = self.store.database, {"t": self.topic}
        _, said = self.store.query(
            "SELECT kafka_partition, kafka_incarnation, next_offset, high_watermark, "
            "dateDiff('millisecond', idle_since, now64(3)), dateDiff('millisecond', updated_at, now64(3)) "
            f"FROM {db}.caught_up FINAL WHERE kafka_topic = {{t:String}}", params,
        )
        # loaded up to where, in the partition's latest life (offsets start again in a new one)
        _, rows = self.store.query(
            "SELECT kafka_partition, max(kafka_incarnation), argMax(next_offset, (kafka_incarnation, next_offset)) "
            f"FROM {db}.progress WHERE kafka_topic = {{t:String}} GROUP BY kafka_partition", params,
        )
        loaded = {int(p): (int(life), int(n)) for p, life, n in rows}
        idle_ms, fresh_ms = idle_s * 1000, fresh_s * 1000
        ready = set()
        for p, life, offset, high, idle_for, said_ago in said:
            last_life, last_offset = loaded.get(int(p), (int(life), 0))
            if life > last_life:  # attested in a new life that nothing was loaded in yet
                last_offset = 0
            if (life >= last_life and offset >= last_offset and offset >= high and idle_for >= idle_ms
                    and said_ago <= fresh_ms):
                ready.add(int(p))
        return len(ready) >= self.partitions

    def _journal(self, stream: str) -> list[tuple[int, int]]:
        _, rows = self.store.query(
            f"SELECT first_offset, last_offset FROM {self.store.database}.batches "
            "WHERE stream = {s:String} AND kafka_topic = {t:String} ORDER BY last_offset",
            {"s": stream, "t": self.topic},
        )
        return [(int(a), int(b)) for a, b in rows]

    def run_once(self, final: bool = False) -> int:
        """Scan what became complete since the last scan; the number of PA-012 verdicts found."""
        with self._lock:
            return self._run_once(final)

    def _run_once(self, final: bool) -> int:
        done = self._journal(DONE)
        lo = done[-1][1] if done else 0
        pending = [r for r in self._journal(PLANNED) if r[0] == lo and r not in done]
        if pending:
            hi = pending[0][1]  # a scan planned before a crash: replay exactly that range
        else:
            mark = self.watermark(final)
            if mark is None or mark <= lo:
                return 0
            hi = mark
            self._mark(PLANNED, lo, hi)
        found = self._scan(lo, hi)
        self._mark(DONE, lo, hi)
        self.found += found
        return found

    def _mark(self, stream: str, lo: int, hi: int) -> None:
        self.store.insert(
            "batches", [[stream], [self.topic], [0], [lo], [hi]],
            ["stream", "kafka_topic", "kafka_partition", "first_offset", "last_offset"],
        )

    def _scan(self, lo: int, hi: int) -> int:
        checker, self._checker = self._checker, None  # not kept if this scan fails half-way
        if checker is None or self._fed_to != lo:
            checker = Checker(self.policy)
            self._feed(checker, self._accesses(max(0, lo - self.policy.max_window_ms), lo), lo)
        cols: dict[str, list[Any]] = {name: [] for name in VIOLATION_COLUMN_NAMES}
        published: list[tuple[bytes, bytes]] = []
        for event_id, ms, actor, subject, _action, _count, service, partition, offset, incarnation, out in self._feed(
                checker, self._accesses(lo, hi), lo):
            add_violation(
                cols, published, out[0], event_id=event_id, occurred_at=from_millis(ms), event_type="access",
                service=service, subject_id=subject, actor_id=actor, counterparty=None,
                record=(self.topic, partition, offset, incarnation, position(incarnation, partition, offset)),
            )
        names = list(cols)
        self.store.insert("violations", [cols[n] for n in names], names,
                          token=f"bulk/{self.topic}/{lo}-{hi}/violations")
        if self.producer is not None:
            publish(self.producer, [(TOPIC_VIOLATIONS, value, key, None) for key, value in published], stop=self._stop,
                    what=f"the bulk stage: publishing {len(published)} violation(s)", on_retry=self._on_publish_retry)
        self._checker, self._fed_to = checker, hi
        return len(published)

    def _accesses(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        """The accesses in ``(lo, hi]`` (epoch ms), in the order the checker takes them."""
        _, rows = self.store.query(
            "SELECT toString(event_id), toUnixTimestamp64Milli(occurred_at), actor_id, subject_id, action, "
            "record_count, service, kafka_partition, kafka_offset, kafka_incarnation "
            f"FROM {self.store.database}.events FINAL "
            "WHERE type = 'access' AND occurred_at > {a:DateTime64(3, 'UTC')} "
            "AND occurred_at <= {b:DateTime64(3, 'UTC')} "
            "ORDER BY occurred_at, event_id",
            {"a": from_millis(lo), "b": from_millis(hi)},
        )
        self.read += len(rows)
        return rows

    def _feed(self, checker: Checker, rows: list[tuple[Any, ...]], after: int) -> list[tuple[Any, ...]]:
        """Feed ``rows`` to ``checker``'s PA-012; those after ``after`` with a verdict, the verdicts added."""
        found = []
        version_at = self.policy.version_at
        for row in rows:
            ms = row[1]
            version = version_at(ms)
            if version is None:
                continue
            out: list[Violation] = []
            checker.bulk_verdict(out, version, row[2], row[3], row[4], row[5], ms)
            if out and ms > after:
                found.append((*row, out))
        return found
