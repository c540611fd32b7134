"""Exactly-once in effect: how the consumer writes to ClickHouse.

For every contiguous range of one partition (a :class:`PartitionBatch`):

1. **plan**: the range ``(topic, partition, first, last)`` is written to the ``batches`` journal;
2. **load**: events, violations and state rows are inserted, each with the token
   ``audit/<topic>/<partition>/<first>-<last>/<table>``; the tables keep a deduplication window, so
   inserting the same range twice stores it once;
3. **publish** dead letters and violations to Kafka, **commit** the offset ``last + 1``.

A consumer killed anywhere in 1-3 restarts from the committed offset, finds the planned range in the
journal, and replays *exactly that range* (the runner cuts its records at the journal's boundaries):
same rows, same tokens, so ClickHouse keeps one copy. A range that was never planned was never
loaded. Kafka topics downstream (DLQ, violations) are at least once; their records carry the source
offset so a reader can tell a repeat.
"""

from __future__ import annotations

from datetime import datetime

from privaudit.bus.clients import TP
from privaudit.checker import CheckerState
from privaudit.checker.state import Grant
from privaudit.policy import to_millis
from privaudit.store import Store, as_utc
from privaudit.store.ddl import DEAD_LETTER_COLUMN_NAMES

from .batch import PartitionBatch

STREAM = "audit"


class Sink:
    def __init__(self, store: Store) -> None:
        self.store = store

    def plan(self, batches: list[PartitionBatch], stream: str = STREAM) -> None:
        self.store.insert(
            "batches",
            [[stream] * len(batches), [b.topic for b in batches], [b.partition for b in batches],
             [b.first_offset for b in batches], [b.last_offset for b in batches]],
            ["stream", "kafka_topic", "kafka_partition", "first_offset", "last_offset"],
        )

    def load(self, batch: PartitionBatch) -> None:
        for table, columns in (("events", batch.events), ("violations", batch.violations), ("subject_state", batch.state)):
            names = list(columns)
            self.store.insert(table, [columns[n] for n in names], names, token=batch.token(table))
        if batch.dead:
            rows = [(d.record.topic, d.record.partition, d.record.offset, d.kind, d.reason) for d in batch.dead]
            self.store.insert("dead_letters", [list(c) for c in zip(*rows)], DEAD_LETTER_COLUMN_NAMES,
                              token=batch.token("dead_letters"))

    def progress(self, batches: list[PartitionBatch]) -> None:
        rows = [b for b in batches if b.max_occurred_at is not None]
        if not rows:
            return
        self.store.insert(
            "progress",
            [[b.topic for b in rows], [b.partition for b in rows], [b.last_offset + 1 for b in rows],
             [b.max_occurred_at for b in rows], [max(b.high_watermark, b.last_offset + 1) for b in rows]],
            ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at", "high_watermark"],
        )

    def attest(self, positions: dict[TP, tuple[int, int]], idle_since: datetime, consumer: str) -> None:
        """Say that these partitions are loaded up to ``next_offset``, which was their end
        (``high_watermark``) when last fetched, and that no record came since ``idle_since``."""
        tps = sorted(positions)
        self.store.insert(
            "caught_up",
            [[t for t, _ in tps], [p for _, p in tps], [positions[tp][0] for tp in tps], [positions[tp][1] for tp in tps],
             [idle_since] * len(tps), [consumer] * len(tps)],
            ["kafka_topic", "kafka_partition", "next_offset", "high_watermark", "idle_since", "consumer"],
        )

    # -- after a restart or an assignment -------------------------------------------------

    def planned_ranges(self, topic: str, partition: int, committed: int) -> list[tuple[int, int]]:
        """Ranges planned at or after the committed offset: replay them exactly, in order."""
        _, rows = self.store.query(
            f"SELECT DISTINCT first_offset, last_offset FROM {self.store.database}.batches "
            "WHERE stream = {s:String} AND kafka_topic = {t:String} AND kafka_partition = {p:UInt16} "
            "AND first_offset >= {c:UInt64} ORDER BY first_offset",
            {"s": STREAM, "t": topic, "p": partition, "c": committed},
        )
        ranges: list[tuple[int, int]] = []
        for first, last in rows:
            if ranges and first <= ranges[-1][1]:
                continue  # a range planned twice (the plan itself was retried): keep the first
            ranges.append((int(first), int(last)))
        return ranges

    def restore_state(self, topic: str, partition: int, before_offset: int, *, subjects: set[str] | None = None,
                      into: CheckerState | None = None) -> CheckerState:
        """The checker state of one partition as of ``before_offset`` (stream order kept): all of
        it, or only that of ``subjects``, added to ``into``."""
        state = into if into is not None else CheckerState()
        where = "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt16} AND kafka_offset < {o:UInt64}"
        params: dict = {"t": topic, "p": partition, "o": before_offset}
        if subjects is not None:
            if not subjects:
                return state
            where += " AND subject_id IN {s:Array(String)}"
            params["s"] = sorted(subjects)
        _, rows = self.store.query(
            "SELECT subject_id, occurred_at, kind, consent_id, scope, target, granted, purposes, data_items, change "
            f"FROM {self.store.database}.subject_state {where} ORDER BY kafka_offset",
            params,
        )
        for subject, at, kind, consent_id, scope, target, granted, purposes, items, change in rows:
            ms = to_millis(as_utc(at))
            if kind == "consent":
                state.record_consent(subject, scope, target, ms, Grant(bool(granted), frozenset(purposes), frozenset(items), consent_id))
            else:
                state.record_membership(subject, ms, change)
        return state
