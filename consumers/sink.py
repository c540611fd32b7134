"""Exactly-once in effect: how the consumer writes a batch, on its loader thread.

For the ranges one polled batch produced (a :class:`PartitionBatch` per contiguous range of one
partition, usually one per partition the consumer owns), :meth:`Sink.write` does, in order:

1. **plan**: each range ``(topic, partition, first, last)`` is written to the ``batches`` journal;
2. **load**: events, violations and state rows of all the new ranges are inserted, *one insert
   per table*, with the token ``audit/<topic>/<partition>/<first>-<last>[+<topic>/<partition>/...]/<table>``
   built from every range in it; the tables keep a deduplication window, so inserting the same
   group twice stores it once. A range replayed from the journal is **repaired** instead (below);
   Each range's chain head (:mod:`privaudit.evidence`) is signed and inserted in ``ledger`` after
   its rows, so a ledger row says its rows were inserted before it;
3. **publish** dead letters, violations and the new chain heads to Kafka, flushed;
4. **progress**: each partition's loaded offset and latest event time, for the bulk stage.

The runner then **commits** the offsets ``last + 1`` when it settles the batch.

One insert per table rather than per range and table: each insert costs milliseconds in the engine
whatever its size and leaves a part to merge (docs/benchmarks.md, "one insert per table").

A consumer killed anywhere in 1-4 restarts from the committed offset, finds the planned ranges in
the journal, and replays *exactly those ranges* (the runner cuts its records at the journal's
boundaries). A range that was never planned was never loaded. A replayed range may have been
loaded in full, in part (an insert spanning two months writes two parts, and the tables are
loaded one by one) or not at all, and after a restart or rebalance the partitions of its group may
belong to different consumers, so it is not replayed as a group: :meth:`Sink.repair` reads which
of its rows each table holds and inserts the others. Kafka topics downstream (DLQ, violations) are
at least once; their records carry the source offset so a reader can tell a repeat.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from privaudit.bus import TP, Message, Producer, publish
from privaudit.canonical import content_sql
from privaudit.checker import CheckerState
from privaudit.checker.state import Grant
from privaudit.evidence import Chain, Signer, statement
from privaudit.policy import from_millis, to_millis
from privaudit.settings import TOPIC_DLQ, TOPIC_LEDGER, TOPIC_VIOLATIONS
from privaudit.store import Statements, as_utc, ddl
from privaudit.store.ddl import DEAD_LETTER_COLUMN_NAMES, EMITTER_SEQ_COLUMN_NAMES, LEDGER_COLUMN_NAMES, position

from .batch import PartitionBatch
from .seen import DEFAULT_WINDOW, Seen

STREAM = "audit"
EPOCH = from_millis(0)


class Sink:
    """Writes batches to the store and their dead letters and violations to Kafka. Without a
    producer nothing is published (for tools that only load)."""

    def __init__(self, store: Statements, producer: Producer | None = None, *, stop: threading.Event | None = None,
                 on_publish_retry: Callable[[], None] | None = None, name: str = "consumer",
                 signer: Signer | None = None) -> None:
        self.store = store
        self.producer = producer
        self.name = name
        self.signer = signer  # None: ledger rows unsigned (tools and tests; `verify` reports them)
        self.stop = stop or threading.Event()  # ends a wait for the broker (the batch is then not committed)
        self._on_publish_retry = on_publish_retry

    def write(self, batches: list[PartitionBatch]) -> None:
        """Plan, load (or repair what a replayed range lacks), publish, record progress."""
        self.plan(batches)
        fresh = [b for b in batches if not b.replayed]
        if fresh:
            self.load(fresh)
        for batch in batches:
            if batch.replayed:
                self.repair(batch)
        self.publish(batches)
        self.progress(batches)

    def plan(self, batches: list[PartitionBatch], stream: str = STREAM) -> None:
        self.store.insert(
            "batches",
            [[stream] * len(batches), [b.topic for b in batches], [b.partition for b in batches],
             [b.first_offset for b in batches], [b.last_offset for b in batches], [b.incarnation for b in batches]],
            ["stream", "kafka_topic", "kafka_partition", "first_offset", "last_offset", "kafka_incarnation"],
        )

    def load(self, batches: list[PartitionBatch]) -> None:
        """The rows of ``batches`` (never loaded before), one insert per table, with the group's token
        (a range's offsets name it within one life of its topic: the life is in the token from the
        second on, so a topic whose offsets start again is never taken for what was loaded before)."""
        group = "+".join(f"{_life(b.topic, b.incarnation)}/{b.partition}/{b.first_offset}-{b.last_offset}"
                         for b in batches)
        for table, columns in _tables(batches):
            self.store.insert(table, list(columns.values()), list(columns), token=f"{STREAM}/{group}/{table}")
        if any(b.ledger is not None for b in batches):
            self.store.insert("ledger", *self._ledger_rows(batches), token=f"{STREAM}/{group}/ledger")

    def _ledger_rows(self, batches: list[PartitionBatch]) -> tuple[list[list[Any]], list[str]]:
        rows = []
        for b in batches:
            entry = b.ledger
            if entry is None:
                continue
            low, high = entry.min_occurred_at or EPOCH, entry.max_occurred_at or EPOCH
            signed = statement(b.topic, b.partition, b.incarnation, entry.first_offset, b.last_offset, entry.prev_head,
                               entry.head, entry.counts, low, high)
            signer = self.signer
            rows.append((b.topic, b.partition, b.incarnation, entry.first_offset, b.last_offset, entry.prev_head,
                         entry.head, *entry.counts, low, high, signer.key_id if signer else "",
                         signer.sign(signed) if signer else bytes(64)))
        columns = [list(c) for c in zip(*rows, strict=True)] or [[] for _ in LEDGER_COLUMN_NAMES]
        return columns, list(LEDGER_COLUMN_NAMES)

    def repair(self, batch: PartitionBatch) -> int:
        """Load a replayed range: the rows of each table that it does not hold yet (by source
        offset, and rule for violations), whatever part of the range landed before; the rows
        inserted (the usage view is fed the whole range again, which it counts once). Without a
        token, so a repair repeated after a crash half-way inserts what is still missing (the
        engine still drops a block that is the same data again)."""
        inserted = 0
        for table, columns in _tables([batch]):
            if table == "emitter_seqs":  # keyed by its runs: a run inserted again merges into itself
                self.store.insert(table, list(columns.values()), list(columns))
                continue
            keys = ("kafka_offset", "rule") if table == "violations" else ("kafka_offset",)
            where = ("kafka_topic = {t:String} AND kafka_partition = {p:UInt16} AND kafka_incarnation = {i:UInt32} "
                     "AND kafka_offset BETWEEN {a:UInt64} AND {b:UInt64}")
            params = {"t": batch.topic, "p": batch.partition, "i": batch.incarnation, "a": batch.first_offset,
                      "b": batch.last_offset}
            if "occurred_at" in columns and columns["occurred_at"]:  # the sorting key's time: fewer granules read
                where += " AND occurred_at BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}"
                params.update(lo=min(columns["occurred_at"]), hi=max(columns["occurred_at"]))
            _, rows = self.store.query(f"SELECT {', '.join(keys)} FROM {self.store.database}.{table} WHERE {where}",
                                       params)
            held = Counter(tuple(r) for r in rows)
            missing = []
            for i, key in enumerate(zip(*(columns[k] for k in keys), strict=True)):
                if held[key]:
                    held[key] -= 1
                else:
                    missing.append(i)
            if missing:
                self.store.insert(table, [[c[i] for i in missing] for c in columns.values()], list(columns))
                inserted += len(missing)
            if table == "events":
                # The usage view is fed in the same insert as ``events``, but a kill can land one
                # and not the other: feed it the range again from ``events``. Its states count
                # distinct ids and subjects, so rows it already had change nothing. The same for
                # the per-field hashes (their rows are keyed by the source position).
                target = ddl.Target(self.store.database, cluster=self.store.cluster)
                self.store.command(ddl.backfill(target, ddl.USAGE_DAILY_MV, where), params)
                self.store.command(ddl.backfill(target, ddl.EVENT_FIELDS_MV, where), params)
        if batch.ledger is not None:
            _, rows = self.store.query(
                f"SELECT count() FROM {self.store.database}.ledger WHERE kafka_topic = {{t:String}} "
                "AND kafka_partition = {p:UInt16} AND kafka_incarnation = {i:UInt32} AND first_offset = {a:UInt64}",
                {"t": batch.topic, "p": batch.partition, "i": batch.incarnation, "a": batch.ledger.first_offset})
            if not rows[0][0]:
                self.store.insert("ledger", *self._ledger_rows([batch]))
        return inserted

    def publish(self, batches: list[PartitionBatch]) -> None:
        """Dead letters and violations to Kafka, flushed; sent again while the broker refuses them
        (:func:`privaudit.bus.publish`), until it takes them or the consumer is stopped."""
        if self.producer is None:
            return
        messages: list[Message] = [(TOPIC_DLQ, d.value(), d.record.key, d.headers()) for b in batches for d in b.dead]
        messages += [(TOPIC_VIOLATIONS, value, key, None) for b in batches for key, value in b.published]
        messages += [(TOPIC_LEDGER, value, key, None) for key, value in self._heads(batches)]
        publish(self.producer, messages, stop=self.stop, on_retry=self._on_publish_retry,
                what=f"{self.name}: publishing {len(messages)} dead letter(s) and violation(s)")

    def _heads(self, batches: list[PartitionBatch]) -> list[tuple[bytes, bytes]]:
        """Each range's new head as published to ``privaudit.ledger`` (keyed by its partition)."""
        data, names = self._ledger_rows(batches)
        out = []
        for row in zip(*data, strict=True):
            head = dict(zip(names, row, strict=True))
            for name in ("prev_head", "head", "signature"):
                head[name] = head[name].hex()
            for name in ("min_occurred_at", "max_occurred_at"):
                head[name] = head[name].isoformat(timespec="milliseconds")
            key = f"{head['kafka_topic']}/{head['kafka_incarnation']}/{head['kafka_partition']}".encode()
            out.append((key, json.dumps(head).encode()))
        return out

    def progress(self, batches: list[PartitionBatch]) -> None:
        """Each range's partition loaded up to its end, in its life, with its latest event time (a
        range of dead letters only: the epoch, which changes no watermark)."""
        if not batches:
            return
        self.store.insert(
            "progress",
            [[b.topic for b in batches], [b.partition for b in batches], [b.last_offset + 1 for b in batches],
             [b.max_occurred_at or EPOCH for b in batches],
             [max(b.high_watermark, b.last_offset + 1) for b in batches], [b.incarnation for b in batches]],
            ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at", "high_watermark", "kafka_incarnation"],
        )

    def attest(self, positions: dict[TP, tuple[int, int, int]], idle_since: datetime, consumer: str) -> None:
        """Say that these partitions are loaded up to ``next_offset``, which was their end
        (``high_watermark``) when last fetched, and that no record came since ``idle_since``:
        ``positions[tp] = (next_offset, high_watermark, incarnation)``."""
        tps = sorted(positions)
        self.store.insert(
            "caught_up",
            [[t for t, _ in tps], [p for _, p in tps], [positions[tp][0] for tp in tps],
             [positions[tp][1] for tp in tps], [idle_since] * len(tps), [consumer] * len(tps),
             [positions[tp][2] for tp in tps]],
            ["kafka_topic", "kafka_partition", "next_offset", "high_watermark", "idle_since", "consumer",
             "kafka_incarnation"],
        )

    # -- the lives of a topic -------------------------------------------------------------

    def incarnations(self, topic: str) -> list[tuple[int, str]]:
        """The topic's lives recorded, in order, as ``(number, topic id)``."""
        _, rows = self.store.query(
            f"SELECT incarnation, topic_id FROM {self.store.database}.incarnations FINAL "
            "WHERE kafka_topic = {t:String} ORDER BY incarnation", {"t": topic})
        return [(int(n), str(i)) for n, i in rows]

    def record_incarnation(self, topic: str, number: int, topic_id: str, reason: str) -> None:
        """Record life ``number`` of ``topic`` (again, to add the topic id it did not have)."""
        self.store.insert("incarnations", [[topic], [number], [topic_id], [reason]],
                          ["kafka_topic", "incarnation", "topic_id", "reason"])

    def partition_life(self, topic: str, partition: int) -> tuple[int, int] | None:
        """The life the partition was last loaded in, and how far: ``(incarnation, next offset)``;
        None when nothing of it was ever loaded."""
        _, rows = self.store.query(
            "SELECT max(kafka_incarnation), argMax(next_offset, (kafka_incarnation, next_offset)), count() "
            f"FROM {self.store.database}.progress WHERE kafka_topic = {{t:String}} AND kafka_partition = {{p:UInt16}}",
            {"t": topic, "p": partition})
        return (int(rows[0][0]), int(rows[0][1])) if rows and rows[0][2] else None

    # -- after a restart or an assignment -------------------------------------------------

    def restore_seen(self, topic: str, partition: int, incarnation: int, start: int,
                     window: int = DEFAULT_WINDOW) -> Seen:
        """What the partition remembered before ``start`` (:mod:`.seen`): the chain's head from the
        ledger row that ends right before it, and the event ids stored in the window before it."""
        db = self.store.database
        params = {"t": topic, "p": partition, "i": incarnation, "s": start, "w": max(0, start - window)}
        where = ("kafka_topic = {t:String} AND kafka_partition = {p:UInt16} AND kafka_incarnation = {i:UInt32}")
        _, heads = self.store.query(
            f"SELECT head FROM {db}.ledger FINAL WHERE {where} AND last_offset + 1 = {{s:UInt64}} LIMIT 1", params)
        seen = Seen(window, Chain(bytes(heads[0][0]), start) if heads else None)
        if start == 0 or window <= 0:
            return seen
        _, rows = self.store.query(
            f"SELECT lower(toString(event_id)), SHA256({content_sql()}), kafka_offset FROM {db}.events "
            f"WHERE {where} AND kafka_offset >= {{w:UInt64}} AND kafka_offset < {{s:UInt64}} ORDER BY kafka_offset",
            params)
        for event_id, digest, offset in rows:
            seen.remember(event_id, bytes(digest), int(offset))
        return seen

    def planned_ranges(self, topic: str, partition: int, committed: int, incarnation: int = 0
                       ) -> list[tuple[int, int]]:
        """Ranges planned at or after the committed offset in this life of the topic: replay them
        exactly, in order."""
        _, rows = self.store.query(
            f"SELECT DISTINCT first_offset, last_offset FROM {self.store.database}.batches "
            "WHERE stream = {s:String} AND kafka_topic = {t:String} AND kafka_partition = {p:UInt16} "
            "AND kafka_incarnation = {i:UInt32} AND first_offset >= {c:UInt64} ORDER BY first_offset",
            {"s": STREAM, "t": topic, "p": partition, "i": incarnation, "c": committed},
        )
        ranges: list[tuple[int, int]] = []
        for first, last in rows:
            if ranges and first <= ranges[-1][1]:
                continue  # a range planned twice (the plan itself was retried): keep the first
            ranges.append((int(first), int(last)))
        return ranges

    def restore_state(self, topic: str, partition: int, before_offset: int, incarnation: int = 0) -> CheckerState:
        """The whole checker state of one partition as of ``before_offset`` of life ``incarnation``
        (the earlier lives' changes all came before; stream order kept)."""
        state = CheckerState()
        _, rows = self.store.query(
            f"SELECT {_STATE_READ} FROM {self.store.database}.subject_state "
            "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt16} "
            "AND (kafka_incarnation < {i:UInt32} OR (kafka_incarnation = {i:UInt32} AND kafka_offset < {o:UInt64})) "
            "ORDER BY kafka_incarnation, kafka_offset",
            {"t": topic, "p": partition, "i": incarnation, "o": before_offset},
        )
        for row in rows:
            _restore(state, row)
        return state

    def restore_subjects(self, topic: str, wanted: dict[int, tuple[int, int, set[str]]],
                         into: dict[int, CheckerState]) -> None:
        """For several partitions at once (one query): ``wanted[partition] = (incarnation,
        before_offset, subjects)``, the state of those subjects as of that offset of that life,
        added to ``into[partition]``."""
        subjects = sorted({s for _, _, names in wanted.values() for s in names})
        if not subjects:
            return
        _, rows = self.store.query(
            f"SELECT kafka_partition, kafka_incarnation, kafka_offset, {_STATE_READ} "
            f"FROM {self.store.database}.subject_state "
            "WHERE kafka_topic = {t:String} AND kafka_partition IN {p:Array(UInt16)} "
            "AND subject_id IN {s:Array(String)} "
            "ORDER BY kafka_partition, kafka_incarnation, kafka_offset",
            {"t": topic, "p": sorted(wanted), "s": subjects},
        )
        for partition, life, offset, *row in rows:
            incarnation, before, names = wanted[partition]
            if (life < incarnation or (life == incarnation and offset < before)) and row[0] in names:
                _restore(into[partition], row)


_STATE_READ = "subject_id, occurred_at, kind, consent_id, scope, target, granted, purposes, data_items, change"


def _restore(state: CheckerState, row: Any) -> None:
    """One ``subject_state`` row (the columns of ``_STATE_READ``) into ``state``, in stream order."""
    subject, at, kind, consent_id, scope, target, granted, purposes, items, change = row
    ms = to_millis(as_utc(at))
    if kind == "consent":
        grant = Grant(bool(granted), frozenset(purposes), frozenset(items), consent_id)
        state.record_consent(subject, scope, target, ms, grant)
    else:
        state.record_membership(subject, ms, change)


def _tables(batches: list[PartitionBatch]) -> Iterator[tuple[str, dict[str, list[Any]]]]:
    """Each table's rows from ``batches``, as columns, for the tables that get any."""
    for table, attr in (("events", "events"), ("violations", "violations"), ("subject_state", "state")):
        parts = [getattr(b, attr) for b in batches]
        if any(part and next(iter(part.values())) for part in parts):
            yield table, {name: [v for part in parts for v in part[name]] for name in parts[0]}
    for table in ("repeats", "rewrites"):
        parts = [getattr(b, table) for b in batches]
        if any(part["event_id"] for part in parts):
            yield table, {name: [v for part in parts for v in part[name]] for name in parts[0]}
    sequences = [row for b in batches for row in b.sequences]
    if sequences:
        yield "emitter_seqs", dict(zip(EMITTER_SEQ_COLUMN_NAMES, (list(c) for c in zip(*sequences, strict=True)),
                                       strict=True))
    dead = [d for b in batches for d in b.dead]
    if dead:
        rows = [(d.record.topic, d.record.partition, d.record.offset, d.kind, d.reason, d.incarnation,
                 position(d.incarnation, d.record.partition, d.record.offset)) for d in dead]
        columns = (list(c) for c in zip(*rows, strict=True))
        yield "dead_letters", dict(zip(DEAD_LETTER_COLUMN_NAMES, columns, strict=True))


def _life(topic: str, incarnation: int) -> str:
    """A topic in one of its lives, as tokens name it (the first life as before lives were counted)."""
    return topic if incarnation == 0 else f"{topic}#{incarnation}"
